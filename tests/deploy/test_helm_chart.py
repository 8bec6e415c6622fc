"""The Helm chart (infra/helm/fraudpipe): lint, render, validate, and the properties it promises.

What runs: `infra/local/install_helm.sh` builds helm (v4, from the Go module proxy, into
`.stack/tools/bin/`; minutes from a cold Go cache, nothing once built); `helm lint --strict`
and `helm template` run on the chart with its default values and with
`ci/keda-and-secret-values.yaml` (KEDA on, the chart creating the Secret); every rendered
manifest is validated by kubernetes-validate against the chart's oldest supported Kubernetes
(1.27) and the newest it ships schemas for, in strict mode; KEDA's `ScaledObject` and
`TriggerAuthentication`, CRDs it has no schema for, get a JSON schema of the fields the chart
sets. Then the manifests are read for what the chart promises: no more scorers than partitions,
a PodDisruptionBudget, probes on `/healthz` and `/readyz`, the migration as a hook, passwords
only through `secretKeyRef`, a termination grace beyond the micro-batch bound, and only
`FRAUDPIPE_*` variables `src/fraudpipe/config.py` knows; and for the scoring API (`fraudpipe
serve`): a Deployment, Service and PodDisruptionBudget that select its pods alone, its probes,
the scorer's settings, its keys from the Secret, a grace that outlasts its graceful shutdown.

What does NOT run: no Kubernetes cluster is involved, so nothing is installed, no image is built
or pulled, no pod starts, no probe is ever called, no hook runs, KEDA and Prefect never see
these objects, and the official Airflow chart is neither fetched nor rendered
(`airflow-values.yaml` is only read for its variable names).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from pydantic import SecretStr

from fraudpipe.cli.db import app as db_app
from fraudpipe.config import Settings

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "infra" / "helm" / "fraudpipe"
CI_VALUES = CHART / "ci" / "keda-and-secret-values.yaml"
AIRFLOW_VALUES = CHART / "airflow-values.yaml"
INSTALL_HELM = REPO / "infra" / "local" / "install_helm.sh"
RELEASE = "fraudpipe"
#: A cold build measured about 4 minutes on 2 cores; this only stops a hung download.
BUILD_TIMEOUT_S = 1800
#: The chart's kubeVersion floor, and the newest schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.27.0", str(kubernetes_validate.latest_version()))
VALUE_SETS = {"defaults": (), "keda-and-secret": (CI_VALUES,)}

Manifest = dict[str, Any]


def _installed_helm() -> Path:
    stack_dir = Path(os.environ.get("FRAUDPIPE_STACK_DIR", ".stack"))
    return (stack_dir if stack_dir.is_absolute() else REPO / stack_dir) / "tools" / "bin" / "helm"


pytestmark = pytest.mark.skipif(
    shutil.which("go") is None and not _installed_helm().exists(),
    reason="needs Go to build helm (infra/local/install_helm.sh), or helm already built there",
)


@dataclass(frozen=True)
class Helm:
    """The helm binary, with its config, cache and data kept out of the user's home."""

    binary: Path
    env: dict[str, str]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.binary), *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
            check=False,
        )

    def template(
        self, *values: Path, sets: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess[str]:
        args = ["template", RELEASE, str(CHART), "--namespace", "fraud"]
        for path in values:
            args += ["--values", str(path)]
        for assignment in sets:
            args += ["--set", assignment]
        return self.run(*args)


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    done = subprocess.run(
        ["bash", str(INSTALL_HELM)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    binary = Path(done.stdout.strip().splitlines()[-1])
    home = tmp_path_factory.mktemp("helm-home")
    env = {
        **os.environ,
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    return Helm(binary, env)


@pytest.fixture(scope="session")
def rendered(helm: Helm) -> dict[str, list[Manifest]]:
    """Each value set's manifests, as `helm template` renders them (hooks included)."""
    out: dict[str, list[Manifest]] = {}
    for name, values in VALUE_SETS.items():
        done = helm.template(*values)
        assert done.returncode == 0, done.stderr
        out[name] = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    return out


# --- facts of the settings the chart must agree with -------------------------------------


def _env_name(field: str) -> str:
    return f"FRAUDPIPE_{field.upper()}"


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ())


SETTINGS_ENV = {_env_name(name) for name in Settings.model_fields}
SECRET_ENV = {_env_name(n) for n, f in Settings.model_fields.items() if _is_secret(f.annotation)}
REQUIRED_SECRET_ENV = {
    _env_name(n)
    for n, f in Settings.model_fields.items()
    if _is_secret(f.annotation) and f.is_required()
}


# --- reading manifests -------------------------------------------------------------------


def _of_kind(docs: list[Manifest], kind: str) -> list[Manifest]:
    return [doc for doc in docs if doc["kind"] == kind]


def _named(docs: list[Manifest], kind: str, name: str) -> Manifest:
    found = [doc for doc in _of_kind(docs, kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def _pod_spec(workload: Manifest) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def _containers(pod: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from pod.get("initContainers", [])
    yield from pod["containers"]


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def _secret_name(docs: list[Manifest]) -> str:
    """The chart's own Secret when it made one, else the default values' existingSecret."""
    secrets = _of_kind(docs, "Secret")
    if secrets:
        return str(secrets[0]["metadata"]["name"])
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    return str(defaults["secrets"]["existingSecret"])


def _base_job_template(docs: list[Manifest]) -> dict[str, Any]:
    config_map = _named(docs, "ConfigMap", f"{RELEASE}-prefect-worker")
    template: dict[str, Any] = json.loads(config_map["data"]["base-job-template.json"])
    return template


def _flow_run_pod(docs: list[Manifest]) -> dict[str, Any]:
    manifest = _base_job_template(docs)["job_configuration"]["job_manifest"]
    return _pod_spec(manifest)


def _pods(docs: list[Manifest]) -> dict[str, dict[str, Any]]:
    """Every pod spec the chart defines, by workload name, the flow-run Jobs' included."""
    pods = {
        doc["metadata"]["name"]: _pod_spec(doc)
        for doc in docs
        if doc["kind"] in ("Deployment", "Job")
    }
    pods["flow-run"] = _flow_run_pod(docs)
    return pods


def _fraudpipe_pods(docs: list[Manifest]) -> dict[str, dict[str, Any]]:
    """The pods that run fraudpipe's own code (all but the Prefect worker's)."""
    return {name: pod for name, pod in _pods(docs).items() if "prefect-worker" not in name}


# --- lint and validation -----------------------------------------------------------------


def test_install_script_skips_an_installed_helm(helm: Helm) -> None:
    before = helm.binary.stat().st_mtime_ns
    done = subprocess.run(
        ["bash", str(INSTALL_HELM)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == helm.binary
    assert helm.binary.stat().st_mtime_ns == before


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_lint_strict(helm: Helm, value_set: str) -> None:
    args = ["lint", "--strict", str(CHART)]
    for path in VALUE_SETS[value_set]:
        args += ["--values", str(path)]
    done = helm.run(*args)
    assert done.returncode == 0, done.stdout + done.stderr


def test_kubernetes_version_floor(helm: Helm) -> None:
    floor = helm.run("template", RELEASE, str(CHART), "--kube-version", KUBERNETES_VERSIONS[0])
    assert floor.returncode == 0, floor.stderr
    older = helm.run("template", RELEASE, str(CHART), "--kube-version", "1.26.9")
    assert older.returncode != 0
    assert "kubeVersion" in older.stderr


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_manifests_validate(
    rendered: dict[str, list[Manifest]], value_set: str, version: str
) -> None:
    for doc in rendered[value_set]:
        if doc["apiVersion"].startswith("keda.sh/"):
            continue  # a CRD: test_keda_objects_match_their_crds checks these
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            pytest.fail(f"{doc['kind']} {doc['metadata']['name']} at {path}: {error.message}")


#: The fields of keda.sh/v1alpha1 the chart sets, as KEDA's CRDs type them (trigger metadata
#: is a map of strings there: a number would be refused by the API server).
SCALED_OBJECT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}},
                },
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "additionalProperties": False,
                        "properties": {
                            "type": {"const": "kafka"},
                            "metadata": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                                "required": [
                                    "bootstrapServers",
                                    "consumerGroup",
                                    "topic",
                                    "lagThreshold",
                                ],
                            },
                            "authenticationRef": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {"name": {"type": "string"}},
                            },
                        },
                    },
                },
            },
        },
    },
}

_REF: dict[str, Any] = {
    "type": "object",
    "required": ["parameter", "name"],
    "properties": {
        "parameter": {"type": "string"},
        "name": {"type": "string"},
        "key": {"type": "string"},
        "containerName": {"type": "string"},
    },
    "additionalProperties": False,
}
TRIGGER_AUTHENTICATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "TriggerAuthentication"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "secretTargetRef": {
                    "type": "array",
                    "items": {**_REF, "required": ["parameter", "name", "key"]},
                },
                "env": {"type": "array", "items": _REF},
            },
        },
    },
}


def test_keda_objects_match_their_crds(rendered: dict[str, list[Manifest]]) -> None:
    docs = rendered["keda-and-secret"]
    schemas = {
        "ScaledObject": SCALED_OBJECT_SCHEMA,
        "TriggerAuthentication": TRIGGER_AUTHENTICATION_SCHEMA,
    }
    for kind, schema in schemas.items():
        (doc,) = _of_kind(docs, kind)
        jsonschema.validate(doc, schema)
    assert not [d for d in rendered["defaults"] if d["apiVersion"].startswith("keda.sh/")]


# --- what the chart promises -------------------------------------------------------------


def _render_error(helm: Helm, *sets: str) -> str:
    done = helm.template(sets=sets)
    assert done.returncode != 0, f"rendered with {sets}"
    return done.stderr


def test_more_scorers_than_partitions_fail_to_render(helm: Helm) -> None:
    message = _render_error(helm, "scorer.replicas=7", "kafka.partitions=6")
    assert "scorer.replicas (7) is more than kafka.partitions (6)" in message
    message = _render_error(helm, "keda.enabled=true", "keda.maxReplicaCount=7")
    assert "keda.maxReplicaCount (7) is more than kafka.partitions (6)" in message
    assert helm.template(sets=("scorer.replicas=6",)).returncode == 0


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_scorer_replicas_and_disruption_budget(
    rendered: dict[str, list[Manifest]], value_set: str
) -> None:
    docs = rendered[value_set]
    scorer = _named(docs, "Deployment", f"{RELEASE}-scorer")
    budget = _named(docs, "PodDisruptionBudget", f"{RELEASE}-scorer")
    pod_labels = scorer["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert budget["spec"]["maxUnavailable"] == 1
    partitions = int(
        _env(_pod_spec(scorer)["containers"][0])["FRAUDPIPE_KAFKA_DEFAULT_PARTITIONS"]["value"]
    )
    scaled = _of_kind(docs, "ScaledObject")
    if scaled:
        assert "replicas" not in scorer["spec"]  # KEDA's HPA sets it
        assert scaled[0]["spec"]["scaleTargetRef"]["name"] == scorer["metadata"]["name"]
        assert scaled[0]["spec"]["maxReplicaCount"] <= partitions
        (trigger,) = scaled[0]["spec"]["triggers"]
        assert int(trigger["metadata"]["lagThreshold"]) > 0
    else:
        assert 1 <= scorer["spec"]["replicas"] <= partitions


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_scorer_probes_hit_its_health_endpoints(
    rendered: dict[str, list[Manifest]], value_set: str
) -> None:
    scorer = _named(rendered[value_set], "Deployment", f"{RELEASE}-scorer")
    (container,) = _pod_spec(scorer)["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    env = _env(container)
    assert env["FRAUDPIPE_METRICS_HOST"]["value"] == "0.0.0.0"
    assert int(env["FRAUDPIPE_METRICS_PORT"]["value"]) == ports["metrics"]
    assert container["args"][container["args"].index("--metrics-port") + 1] == str(ports["metrics"])
    for probe, path in (
        ("livenessProbe", "/healthz"),
        ("startupProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ):
        http = container[probe]["httpGet"]
        assert (http["path"], ports.get(http["port"], http["port"])) == (path, ports["metrics"])


def test_dashboard_probes_streamlit_health(rendered: dict[str, list[Manifest]]) -> None:
    dashboard = _named(rendered["defaults"], "Deployment", f"{RELEASE}-dashboard")
    (container,) = _pod_spec(dashboard)["containers"]
    assert container["command"] == ["fraudpipe", "dashboard"]
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"] == {"path": "/_stcore/health", "port": "http"}
    assert "secretKeyRef" in _env(container)["FRAUDPIPE_DASHBOARD_PASSWORD"]["valueFrom"]


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_migration_job_is_a_pre_install_and_pre_upgrade_hook(
    rendered: dict[str, list[Manifest]], value_set: str
) -> None:
    docs = rendered[value_set]
    job = _named(docs, "Job", f"{RELEASE}-db-migrate")
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    (container,) = _pod_spec(job)["containers"]
    assert container["command"] == ["fraudpipe", "db", "upgrade"]
    assert "upgrade" in {command.name for command in db_app.registered_commands}
    # A chart-made Secret must exist before the Job that reads it: a hook of a lower weight.
    for secret in _of_kind(docs, "Secret"):
        hooks = secret["metadata"]["annotations"]
        assert set(hooks["helm.sh/hook"].split(",")) >= {"pre-install", "pre-upgrade"}
        assert int(hooks["helm.sh/hook-weight"]) < int(annotations["helm.sh/hook-weight"])


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_passwords_reach_containers_only_through_secret_key_refs(
    rendered: dict[str, list[Manifest]], value_set: str
) -> None:
    docs = rendered[value_set]
    secret = _secret_name(docs)
    for pod_name, pod in _pods(docs).items():
        for container in _containers(pod):
            assert not container.get("envFrom"), (pod_name, container["name"])
            for name, entry in _env(container).items():
                where = (pod_name, container["name"], name)
                if name in SECRET_ENV:
                    assert "value" not in entry, where
                    ref = entry["valueFrom"]["secretKeyRef"]
                    assert (ref["name"], ref["key"]) == (secret, name), where
                elif re.search(r"PASSWORD|SECRET|AUTH_STRING|TOKEN", name):
                    # Only a reference to variables Kubernetes fills from the Secret.
                    value = entry.get("value", "")
                    assert re.fullmatch(r"(\$\([A-Z_]+\):?)+", value), where
    for pod_name, pod in _fraudpipe_pods(docs).items():
        for container in pod["containers"]:
            assert set(_env(container)) >= REQUIRED_SECRET_ENV, (pod_name, container["name"])


def test_passwords_in_plain_extra_env_fail_to_render(helm: Helm) -> None:
    leak = ("extraEnv[0].name=FRAUDPIPE_PG_APP_PASSWORD", "extraEnv[0].value=plain")
    assert "looks like a password" in _render_error(helm, *leak)
    keys = ("extraEnv[0].name=FRAUDPIPE_API_KEYS", "extraEnv[0].value=local=plain")
    assert "looks like a password" in _render_error(helm, *keys)


def test_secret_values_appear_only_in_the_secret(rendered: dict[str, list[Manifest]]) -> None:
    markers = yaml.safe_load(CI_VALUES.read_text())["secrets"]["values"]
    docs = rendered["keda-and-secret"]
    (secret,) = _of_kind(docs, "Secret")
    assert secret["stringData"] == markers
    for doc in docs:
        if doc["kind"] == "Secret":
            continue
        text = json.dumps(doc)
        leaked = [name for name, marker in markers.items() if marker in text]
        assert not leaked, (doc["kind"], doc["metadata"]["name"], leaked)


def test_chart_requires_exactly_the_settings_secrets(helm: Helm) -> None:
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    block = helpers.split('define "fraudpipe.requiredSecretEnv"', 1)[1].split("{{- end }}", 1)[0]
    assert set(re.findall(r"^- (FRAUDPIPE_\w+)$", block, re.MULTILINE)) == REQUIRED_SECRET_ENV
    sets = tuple(f"secrets.values.{name}=x" for name in sorted(REQUIRED_SECRET_ENV)[1:])
    message = _render_error(helm, "secrets.create=true", *sets)
    assert sorted(REQUIRED_SECRET_ENV)[0] in message


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_termination_grace_outlasts_a_micro_batch(
    rendered: dict[str, list[Manifest]], value_set: str
) -> None:
    scorer = _named(rendered[value_set], "Deployment", f"{RELEASE}-scorer")
    pod = _pod_spec(scorer)
    env = _env(pod["containers"][0])
    assert env["FRAUDPIPE_SCORER_EXACTLY_ONCE"]["value"] == "true"
    bound_ms = int(env["FRAUDPIPE_KAFKA_TRANSACTION_TIMEOUT_MS"]["value"])
    assert pod["terminationGracePeriodSeconds"] * 1000 > bound_ms


def test_termination_grace_within_the_bound_fails_to_render(helm: Helm) -> None:
    message = _render_error(helm, "scorer.terminationGracePeriodSeconds=10")
    assert "must exceed the micro-batch bound (10000 ms, kafka.transactionTimeoutMs)" in message
    # Without exactly-once a micro-batch is bounded by the delivery timeout (120 s).
    message = _render_error(helm, "kafka.exactlyOnce=false")
    assert "(120000 ms, kafka.deliveryTimeoutMs)" in message


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_fraudpipe_variable_is_a_setting(
    rendered: dict[str, list[Manifest]], value_set: str
) -> None:
    docs = rendered[value_set]
    for pod_name, pod in _pods(docs).items():
        for container in _containers(pod):
            unknown = {n for n in _env(container) if n.startswith("FRAUDPIPE_")} - SETTINGS_ENV
            assert not unknown, (pod_name, container["name"], unknown)
    for auth in _of_kind(docs, "TriggerAuthentication"):
        spec = auth["spec"]
        names = {ref["name"] for ref in spec.get("env", [])}
        names |= {ref["key"] for ref in spec["secretTargetRef"] if ref["parameter"] != "ca"}
        assert names <= SETTINGS_ENV, names


def test_airflow_values_name_real_settings() -> None:
    values = yaml.safe_load(AIRFLOW_VALUES.read_text())
    names = {entry["name"] for entry in values["env"]}
    assert names and names <= SETTINGS_ENV
    assert values["executor"] in ("LocalExecutor", "KubernetesExecutor")
    assert "secretRef" in values["extraEnvFrom"]


def test_prefect_worker_serves_a_kubernetes_pool(rendered: dict[str, list[Manifest]]) -> None:
    docs = rendered["defaults"]
    worker = _named(docs, "Deployment", f"{RELEASE}-prefect-worker")
    (container,) = _pod_spec(worker)["containers"]
    args = container["args"]
    command = [*container["command"], *args]
    assert command[:3] == ["prefect", "worker", "start"]
    pool = args[args.index("--pool") + 1]
    assert args[args.index("--type") + 1] == "kubernetes"
    assert args[args.index("--install-policy") + 1] == "never"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    pods = _fraudpipe_pods(docs)
    flow_run_env = _env(pods["flow-run"]["containers"][0])
    assert flow_run_env["FRAUDPIPE_PREFECT_WORK_POOL"]["value"] == pool
    assert "PREFECT_API_AUTH_STRING" not in flow_run_env  # the worker passes its own


def _fill(value: Any, placeholders: dict[str, Any]) -> Any:
    """Prefect's placeholders replaced with the kind of value a flow run gives them."""
    if isinstance(value, dict):
        return {key: _fill(item, placeholders) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, placeholders) for item in value]
    if isinstance(value, str) and (match := re.fullmatch(r"\{\{ (\w+) \}\}(.*)", value)):
        filled = placeholders[match.group(1)]
        return f"{filled}{match.group(2)}" if match.group(2) else filled
    return value


def test_base_job_template_passes_prefects_checks(rendered: dict[str, list[Manifest]]) -> None:
    # Imported here: Prefect's server schemas take seconds to import.
    from prefect.server.schemas.actions import validate_base_job_template

    template = _base_job_template(rendered["defaults"])
    validate_base_job_template(template)  # every placeholder is a declared variable
    variables = template["variables"]
    jsonschema.Draft7Validator.check_schema(variables)
    defaults = {
        name: spec["default"] for name, spec in variables["properties"].items() if "default" in spec
    }
    jsonschema.validate(defaults, variables)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_flow_run_job_template_validates(rendered: dict[str, list[Manifest]], version: str) -> None:
    template = _base_job_template(rendered["keda-and-secret"])
    variables = template["variables"]["properties"]
    placeholders = {
        "labels": {"prefect.io/flow-run-id": "0"},
        "namespace": variables["namespace"]["default"],
        "name": "fraud-ingest",
        "finished_job_ttl": variables["finished_job_ttl"]["default"],
        "service_account_name": variables["service_account_name"]["default"],
        "image": variables["image"]["default"],
        "image_pull_policy": variables["image_pull_policy"]["default"],
        "command": ["prefect", "flow-run", "execute"],
    }
    job = _fill(template["job_configuration"]["job_manifest"], placeholders)
    pod = _pod_spec(job)
    # Prefect's worker insists on these two in the pod spec, where Kubernetes knows neither.
    assert (pod.pop("parallelism"), pod.pop("completions")) == (1, 1)
    job["metadata"]["name"] = job["metadata"].pop("generateName") + "x"
    kubernetes_validate.validate(job, version, strict=True)


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_pods_run_as_non_root_on_read_only_filesystems(
    rendered: dict[str, list[Manifest]], value_set: str
) -> None:
    docs = rendered[value_set]
    for pod_name, pod in _pods(docs).items():
        assert pod["securityContext"]["runAsNonRoot"] is True, pod_name
        for container in _containers(pod):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, (pod_name, container["name"])
            assert context["allowPrivilegeEscalation"] is False, (pod_name, container["name"])
            assert "limits" in container["resources"], (pod_name, container["name"])


# --- the scoring API ---------------------------------------------------------------------


def _labels(workload: Manifest) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def _api_values(value_set: str) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())["api"]
    for path in VALUE_SETS[value_set]:
        values |= yaml.safe_load(path.read_text()).get("api", {})
    return values


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_api_service_and_disruption_budget_select_its_pods_alone(
    rendered: dict[str, list[Manifest]], value_set: str
) -> None:
    docs = rendered[value_set]
    name = f"{RELEASE}-api"
    api = _named(docs, "Deployment", name)
    service = _named(docs, "Service", name)
    budget = _named(docs, "PodDisruptionBudget", name)
    for selector in (service["spec"]["selector"], budget["spec"]["selector"]["matchLabels"]):
        assert selector.items() <= _labels(api).items()
        for other in ("scorer", "dashboard"):
            theirs = _labels(_named(docs, "Deployment", f"{RELEASE}-{other}"))
            assert not selector.items() <= theirs.items(), other
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    values = _api_values(value_set)
    assert api["spec"]["replicas"] == values["replicas"] >= 2
    # A rollout adds a ready pod before it takes one away.
    assert api["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    (container,) = _pod_spec(api)["containers"]
    (port,) = container["ports"]
    (exposed,) = service["spec"]["ports"]
    assert exposed["targetPort"] == port["name"] == "http"
    assert exposed["port"] == values["service"]["port"]
    assert int(_env(container)["FRAUDPIPE_API_WORKERS"]["value"]) == values["workers"]


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_api_runs_serve_with_the_scorers_settings_and_keys_from_the_secret(
    rendered: dict[str, list[Manifest]], value_set: str
) -> None:
    docs = rendered[value_set]
    (container,) = _pod_spec(_named(docs, "Deployment", f"{RELEASE}-api"))["containers"]
    assert container["command"] == ["fraudpipe", "--json-logs", "serve"]
    args = dict(zip(container["args"][::2], container["args"][1::2], strict=True))
    env = _env(container)
    port = container["ports"][0]["containerPort"]
    assert args == {
        "--host": "0.0.0.0",
        "--port": str(port),
        "--workers": env["FRAUDPIPE_API_WORKERS"]["value"],
    }
    assert env["FRAUDPIPE_API_HOST"]["value"] == "0.0.0.0"
    assert int(env["FRAUDPIPE_API_PORT"]["value"]) == port
    ref = env["FRAUDPIPE_API_KEYS"]["valueFrom"]["secretKeyRef"]
    assert (ref["name"], ref["key"]) == (_secret_name(docs), "FRAUDPIPE_API_KEYS")
    # Its principals and endpoints are the scorer's: it loads the champion as the scorer does,
    # and produces its decisions as the scorer principal.
    (scorer,) = _pod_spec(_named(docs, "Deployment", f"{RELEASE}-scorer"))["containers"]
    shared = {k: v for k, v in _env(scorer).items() if not k.startswith("FRAUDPIPE_METRICS_")}
    assert shared.items() <= env.items()
    assert {"FRAUDPIPE_TOPIC_DECISIONS", "FRAUDPIPE_API_RECORDER_GROUP"} <= set(env)
    # The same volumes: a scratch /tmp (where several workers keep their metrics), the Kafka CA.
    assert container["volumeMounts"] == scorer["volumeMounts"]


def test_serve_has_the_options_the_chart_passes() -> None:
    from typer.testing import CliRunner

    from fraudpipe.cli import app

    result = CliRunner().invoke(app, ["--json-logs", "serve", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--host", "--port", "--workers"):
        assert option in result.output


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_api_probes_hit_its_health_endpoints(
    rendered: dict[str, list[Manifest]], value_set: str
) -> None:
    api = _named(rendered[value_set], "Deployment", f"{RELEASE}-api")
    (container,) = _pod_spec(api)["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    for probe, path in (
        ("livenessProbe", "/healthz"),
        ("startupProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ):
        http = container[probe]["httpGet"]
        assert (http["path"], ports.get(http["port"], http["port"])) == (path, ports["http"])


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_api_grace_outlasts_the_shutdown_delay_and_uvicorns_drain(
    rendered: dict[str, list[Manifest]], value_set: str
) -> None:
    pod = _pod_spec(_named(rendered[value_set], "Deployment", f"{RELEASE}-api"))
    (container,) = pod["containers"]
    sleep, seconds = container["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep == "sleep" and int(seconds) > 0
    assert pod["terminationGracePeriodSeconds"] >= int(seconds) + 10


def test_api_grace_within_the_delay_fails_to_render(helm: Helm) -> None:
    message = _render_error(helm, "api.terminationGracePeriodSeconds=14")
    expected = "api.terminationGracePeriodSeconds (14) must exceed api.shutdownDelaySeconds (5)"
    assert expected in message
    assert helm.template(sets=("api.terminationGracePeriodSeconds=15",)).returncode == 0
    # No delay: no preStop hook at all.
    done = helm.template(sets=("api.shutdownDelaySeconds=0",))
    assert done.returncode == 0, done.stderr
    docs = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    (container,) = _pod_spec(_named(docs, "Deployment", f"{RELEASE}-api"))["containers"]
    assert "lifecycle" not in container


def test_api_can_be_left_out(helm: Helm) -> None:
    done = helm.template(sets=("api.enabled=false",))
    assert done.returncode == 0, done.stderr
    docs = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    assert not [d for d in docs if d["metadata"]["name"] == f"{RELEASE}-api"]


def test_a_chart_made_secret_needs_the_api_keys(helm: Helm) -> None:
    sets = (
        "secrets.create=true",
        *(f"secrets.values.{name}=x" for name in sorted(REQUIRED_SECRET_ENV)),
        "secrets.values.FRAUDPIPE_DASHBOARD_PASSWORD=x",
    )
    assert "secrets.values lacks: FRAUDPIPE_API_KEYS" in _render_error(helm, *sets)
    assert helm.template(sets=(*sets, "api.enabled=false")).returncode == 0
