"""The architecture holds, and its checks would catch each way it was broken before.

`lint-imports` (run by `make lint`) checks the contracts in `pyproject.toml`. Its
`acyclic_siblings` contract cannot see a cycle through a package's own `__init__` (a package
that re-exports a module which imports the package back), so module-level cycles are checked
here with grimp, the graph library import-linter is built on. The mutation tests copy the
package, add one import that re-creates a problem the tree once had, and expect the linter to
name the broken contract: a check that cannot fail would prove nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


# Every module's direct imports, each followed back: a chain back to the module is a cycle.
_FIND_CYCLES = """
import grimp
graph = grimp.build_graph("fraudpipe", cache_dir=None)
for module in sorted(graph.modules):
    for imported in sorted(graph.find_modules_directly_imported_by(module)):
        chain = graph.find_shortest_chain(importer=imported, imported=module)
        if chain is not None:
            print(" -> ".join((module, *chain)))
"""


def module_cycles(src: Path) -> list[str]:
    """Import cycles between modules of the `fraudpipe` package found under `src`."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    result = subprocess.run(
        [sys.executable, "-c", _FIND_CYCLES], env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.splitlines()


def test_no_module_imports_another_that_imports_it_back() -> None:
    assert module_cycles(ROOT / "src") == []


def test_a_package_that_re_exports_a_module_importing_it_back_is_a_cycle(tree: Path) -> None:
    chunked = tree / "src/fraudpipe/ingest/chunked.py"
    original = chunked.read_text()
    chunked.write_text(f"from fraudpipe.ingest import IngestReport  # noqa\n{original}")
    try:
        found = module_cycles(tree / "src")
    finally:
        chunked.write_text(original)
    assert (
        "fraudpipe.ingest -> fraudpipe.ingest.run -> fraudpipe.ingest.chunked -> fraudpipe.ingest"
        in found
    )


# (file under the copied tree, the import added to it, the contract that must break)
MUTATIONS = [
    ("src/fraudpipe/scoring/score.py", "import psycopg", "PostgreSQL is spoken only"),
    ("src/fraudpipe/orchestration/pipeline.py", "import sqlalchemy", "PostgreSQL is spoken only"),
    ("src/fraudpipe/ingest/day.py", "import confluent_kafka", "Kafka is spoken only"),
    ("src/fraudpipe/scoring/score.py", "import fastavro", "Avro is encoded and decoded only"),
    ("src/fraudpipe/scoring/metrics.py", "import mlflow", "MLflow is spoken only"),
    ("src/fraudpipe/ingest/reports.py", "import rich", "The core never imports"),
    ("src/fraudpipe/dashboard/charts.py", "import streamlit", "The core never imports"),
    (
        "src/fraudpipe/adapters/postgres/prediction_sink.py",
        "import fraudpipe.scoring.score",
        "Layers",
    ),
    ("src/fraudpipe/adapters/postgres/migrate.py", "import fraudpipe.stack.postgres", "Layers"),
    ("src/fraudpipe/adapters/kafka/dlq.py", "import fraudpipe.adapters.avro.serde", "Adapters do"),
    ("src/fraudpipe/ingest/day.py", "import fraudpipe.ingest.chunked", "No import cycle"),
    ("src/fraudpipe/scoring/pipeline.py", "import fraudpipe.scoring.service", "No import cycle"),
    ("dashboard/loaders.py", "import sqlalchemy", "The Streamlit app reads only"),
    ("dashboard/loaders.py", "import fraudpipe.adapters.postgres.connect", "Streamlit app"),
    ("src/fraudpipe/model/training.py", "import flows.ingest", "Nothing in the package imports"),
]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of what `lint-imports` reads: the package, the wiring folders, pyproject.toml."""
    copy = tmp_path_factory.mktemp("tree")
    for part in ("src/fraudpipe", "consumers", "flows", "dags", "dashboard"):
        shutil.copytree(ROOT / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True
    )


def test_the_copied_tree_keeps_every_contract(tree: Path) -> None:
    result = lint(tree)
    assert result.returncode == 0, result.stdout[-3000:]


@pytest.mark.parametrize(("path", "line", "contract"), MUTATIONS)
def test_each_known_problem_breaks_a_contract(
    tree: Path, path: str, line: str, contract: str
) -> None:
    target = tree / path
    original = target.read_text()
    target.write_text(f"{line}  # noqa\n{original}")
    try:
        result = lint(tree)
    finally:
        target.write_text(original)
    assert result.returncode == 1, result.stdout[-3000:]
    broken = result.stdout.split("Broken contracts")[-1]
    assert contract in broken, broken[-3000:]
