"""The stack launcher: `up` is a no-op when services answer; `down` leaves nothing of ours."""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from ports import free_port

from fraudpipe.config import Settings
from fraudpipe.errors import StackError
from fraudpipe.project import project_root
from fraudpipe.stack.base import port_open
from fraudpipe.stack.manager import provision, stack_up
from fraudpipe.stack.postgres import PostgresService

pytestmark = pytest.mark.integration


def test_second_stack_up_starts_nothing(stack: Settings) -> None:
    started: dict[str, bool] = {}
    statuses = stack_up(stack, on_service=lambda name, did_start: started.update({name: did_start}))
    assert started and not any(started.values()), started
    assert all(st.up for st in statuses), statuses


def test_provision_is_idempotent_and_names_a_service_that_does_not_answer(
    stack: Settings,
) -> None:
    steps: list[str] = []
    for _ in range(2):
        provision(stack, on_step=steps.append)
    assert steps == ["postgres", "kafka", "mlflow", "airflow admin login"] * 2
    silent = f"127.0.0.1:{free_port()}"
    away = stack.model_copy(
        update={"kafka_bootstrap_servers": silent, "kafka_admin_bootstrap_servers": silent}
    )
    with pytest.raises(StackError, match=f"kafka: does not answer at {silent}"):
        provision(away)


def test_provisioners_at_once_take_turns(stack: Settings) -> None:
    # `make test`'s workers each bring the stack up as they start: their provisioning of the
    # same roles met, and PostgreSQL failed one ("tuple concurrently updated").
    with ThreadPoolExecutor(3) as pool:
        for done in [pool.submit(provision, stack) for _ in range(3)]:
            done.result()


def test_isolated_service_up_twice_then_down(settings: Settings, tmp_path: Path) -> None:
    # A private PostgreSQL on its own port and directory, so the shared stack is untouched.
    tmp_path.chmod(0o755)
    private = settings.model_copy(update={"stack_dir": tmp_path / ".stack", "pg_port": free_port()})
    service = PostgresService(private)
    try:
        assert service.up() is True
        pid = service.managed_pid()
        assert pid is not None
        assert service.up() is False  # already answering: nothing started
        assert service.managed_pid() == pid
    finally:
        stopped = service.down()
        shutil.rmtree(service.server_root, ignore_errors=True)
    assert stopped is True
    assert service.managed_pid() is None
    assert not port_open(private.pg_host, private.pg_port)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def _secrets(settings: Settings) -> dict[str, str]:
    return {
        name: value.get_secret_value()
        for name, value in settings
        if hasattr(value, "get_secret_value") and value.get_secret_value()
    }


def test_no_secret_is_on_any_process_command_line(stack: Settings) -> None:
    """Command lines are readable by every user of the host (`ps`); secrets go elsewhere."""
    secrets = _secrets(stack)
    assert secrets, "the settings carry no secret to look for"
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # the process ended meanwhile
        found += [f"{name} in pid {proc.name}" for name, s in secrets.items() if s in cmdline]
    assert not found, found


def test_the_stack_directory_is_private(stack: Settings) -> None:
    mode = stack.stack_dir.stat().st_mode & 0o777
    # As root, PostgreSQL's own account may pass through (0710, group postgres); nobody else.
    assert mode in (0o700, 0o710), oct(mode)
    assert not mode & 0o007


def test_no_secret_is_in_any_log_of_the_running_stack(stack: Settings) -> None:
    """Every service's log (and the scorers'), as the running stack wrote it so far."""
    secrets = {name: value.encode() for name, value in _secrets(stack).items()}
    logs = sorted((stack.stack_dir / "logs").rglob("*.log"))
    assert any(log.name == "kafka.log" for log in logs), logs
    found = [
        f"{name} in {log}"
        for log in logs
        for name, secret in secrets.items()
        if secret in log.read_bytes()
    ]
    assert not found, found


def test_files_that_hold_credentials_are_readable_by_their_owner_alone(stack: Settings) -> None:
    holders = [
        project_root() / ".env",
        stack.stack_dir / "kafka" / "server.properties",
        stack.stack_dir / "registry" / "users.properties",
        stack.stack_dir / "mlflow" / "basic_auth.ini",
    ]
    modes = {str(path): oct(path.stat().st_mode & 0o777) for path in holders if path.exists()}
    assert set(modes) == {str(p) for p in holders}, modes
    assert set(modes.values()) == {"0o600"}, modes
