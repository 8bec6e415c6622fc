"""prefect.yaml declares exactly fraudpipe's deployments, in a form that runs them.

Flow names and signatures are read from the flow files' syntax trees (importing them would load
pandas, scikit-learn and MLflow), and checked against what the DAG tasks send.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from fraudpipe.config import Settings
from fraudpipe.orchestration.deployments import DEPLOYMENTS, declared_deployments
from fraudpipe.orchestration.pipeline import daily_target

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def declared() -> list[dict[str, Any]]:
    return declared_deployments(ROOT / "prefect.yaml")


@dataclass(frozen=True)
class FlowSignature:
    name: str
    parameters: frozenset[str]
    required: frozenset[str]


def read_flow(entrypoint: str) -> FlowSignature:
    """The `@flow(name=...)` and the parameters of the function an entrypoint names."""
    path, _, function = entrypoint.partition(":")
    tree = ast.parse((ROOT / path).read_text())
    (node,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function]
    (decorator,) = [
        d
        for d in node.decorator_list
        if isinstance(d, ast.Call) and isinstance(d.func, ast.Name) and d.func.id == "flow"
    ]
    (name,) = [k.value for k in decorator.keywords if k.arg == "name"]
    assert isinstance(name, ast.Constant)
    args = node.args.args + node.args.kwonlyargs
    positional_without_default = node.args.args[: len(node.args.args) - len(node.args.defaults)]
    kw_without_default = [
        a for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults, strict=True) if d is None
    ]
    return FlowSignature(
        name=str(name.value),
        parameters=frozenset(a.arg for a in args),
        required=frozenset(a.arg for a in positional_without_default + kw_without_default),
    )


@pytest.fixture(scope="module")
def flows(declared: list[dict[str, Any]]) -> dict[str, FlowSignature]:
    """Full deployment name (`<flow name>/<deployment name>`) → the flow's signature."""
    loaded = {}
    for entry in declared:
        flow = read_flow(entry["entrypoint"])
        loaded[f"{flow.name}/{entry['name']}"] = flow
    return loaded


def test_every_deployment_is_declared_once(flows: dict[str, FlowSignature]) -> None:
    assert sorted(flows) == sorted(DEPLOYMENTS)


def test_no_schedules_airflow_schedules(declared: list[dict[str, Any]]) -> None:
    for entry in declared:
        assert not entry.get("schedules"), entry["name"]
        assert not entry.get("schedule"), entry["name"]
        assert "cron" not in entry and "interval" not in entry and "rrule" not in entry


def test_work_pool_is_the_settings_variable(declared: list[dict[str, Any]]) -> None:
    # `fraudpipe deployments apply` exports FRAUDPIPE_PREFECT_WORK_POOL from the settings; the
    # settings read the very same variable, so the pool has one name everywhere.
    env_name = Settings.model_config["env_prefix"] + "prefect_work_pool"
    for entry in declared:
        assert entry["work_pool"]["name"] == "{{ $" + env_name.upper() + " }}"


def test_runs_start_in_the_checkout_root() -> None:
    # Without pull steps, `prefect deploy` makes each run start where it was applied from.
    document = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    assert not document.get("pull")
    assert all(not entry.get("pull") for entry in document["deployments"])


def test_entrypoints_exist(declared: list[dict[str, Any]]) -> None:
    for entry in declared:
        path, _, function = entry["entrypoint"].partition(":")
        assert (ROOT / path).is_file(), path
        assert f"def {function}(" in (ROOT / path).read_text()


@pytest.mark.parametrize(
    ("day", "source"),
    [
        (date(2025, 9, 20), "auto"),
        (date(2025, 9, 30), "auto"),
        (date(2025, 9, 30), "/data/cards.csv"),
    ],
)
def test_ingest_parameters_match_the_flow(
    flows: dict[str, FlowSignature], day: date, source: str
) -> None:
    from fraudpipe.orchestration.deployments import INGEST_DEPLOYMENT

    flow = flows[INGEST_DEPLOYMENT]
    sent = set(daily_target(day, source).ingest_parameters)
    assert sent <= flow.parameters
    assert flow.required <= sent


def test_publish_and_retrain_parameters_match_the_flows(flows: dict[str, FlowSignature]) -> None:
    from fraudpipe.orchestration.deployments import PUBLISH_DEPLOYMENT, RETRAIN_DEPLOYMENT

    publish = flows[PUBLISH_DEPLOYMENT]
    assert "batch_id" in publish.parameters
    assert publish.required <= {"batch_id"}
    retrain = flows[RETRAIN_DEPLOYMENT]
    assert {"model", "sample"} <= retrain.parameters
    assert not retrain.required


def test_dag_default_seed_is_ingestions_default() -> None:
    from fraudpipe.data.resolve import DEFAULT_SEED
    from fraudpipe.orchestration.pipeline import DEFAULT_SYNTHETIC_SEED

    assert DEFAULT_SYNTHETIC_SEED == DEFAULT_SEED


def test_labels_parameters_match_the_flow(flows: dict[str, FlowSignature]) -> None:
    from fraudpipe.orchestration.deployments import LABELS_DEPLOYMENT

    labels = flows[LABELS_DEPLOYMENT]
    assert labels.required == {"path"} == labels.parameters
