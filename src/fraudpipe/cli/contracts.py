"""`fraudpipe contracts`: the Avro contracts (`contracts/*.avsc`) in the Schema Registry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fraudpipe.cli.output import console, domain_errors
from fraudpipe.config import get_settings

app = typer.Typer(help="Avro contracts (contracts/*.avsc) in the Schema Registry.")

ContractsDirOption = Annotated[
    Path | None,
    typer.Option("--dir", help="Folder of the .avsc files (default: the repository's contracts/)."),
]


@app.command("register")
@domain_errors
def contracts_register_cmd(directory: ContractsDirOption = None) -> None:
    """Register each contract under `<topic>-value` and set the subject's compatibility."""
    from fraudpipe.adapters.avro import CONTRACTS_DIR, registry_client
    from fraudpipe.adapters.avro.registration import register_contracts

    settings = get_settings()
    with registry_client(settings, "writer") as client:
        results = register_contracts(client, settings, directory=directory or CONTRACTS_DIR)
    for r in results:
        what = "registered as" if r.registered else "unchanged,"
        level = f"{r.compatibility} (set now)" if r.compatibility_changed else r.compatibility
        console.print(
            f"{r.contract.value}: {r.subject} {what} version {r.version} (schema id "
            f"{r.schema_id}); compatibility {level}"
        )
    added = sum(r.registered for r in results)
    console.print(
        f"{added} new version(s) registered"
        if added
        else "nothing new registered: the registry already holds every local contract"
    )


@app.command("check")
@domain_errors
def contracts_check_cmd(directory: ContractsDirOption = None) -> None:
    """Compare local .avsc files with the registry; exit 1 if a change would be refused."""
    from fraudpipe.adapters.avro import CONTRACTS_DIR, registry_client
    from fraudpipe.adapters.avro.registration import check_contracts
    from fraudpipe.errors import ContractsCheckFailedError

    settings = get_settings()
    # Apicurio answers a compatibility test (a POST) to the developer role only, as a write.
    with registry_client(settings, "writer") as client:
        results = check_contracts(client, settings, directory=directory or CONTRACTS_DIR)
    for r in results:
        mark = "[red]✗[/]" if r.problems else "[green]✓[/]"
        where = (
            f" (latest version {r.latest_version}, compatibility {r.compatibility})"
            if r.latest_version
            else ""
        )
        console.print(f"{mark} {r.contract.value}: {r.subject} {r.status.value}{where}")
        for problem in r.problems:
            console.print(f"    - {problem}", highlight=False)
    failed = [r for r in results if not r.ok]
    if failed:
        raise ContractsCheckFailedError([r.subject for r in failed])
