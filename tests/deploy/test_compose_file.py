"""The compose file (infra/compose.yml): valid, rendered, and the properties it promises.

What runs: check-jsonschema validates the file against the Compose Specification's JSON schema
(its vendored `vendor.compose-spec`); podman-compose renders it (`config`) with an env file of
dummy secrets, and refuses to render it when a secret is missing. The rendered services are
then read for what the file promises: a healthcheck on every service but the one-shot jobs,
a condition on every dependency, every fraudpipe role after the setup job, secrets only from
the env file, two scorer replicas, the scoring API on loopback with the scorer's dependencies
and settings and its keys from the env file, a Kafka listener advertised by its service name
for the other containers, Prometheus finding the scorer replicas by DNS and the API by name.
Two of the scripts the containers run are executed here, outside any container, and their
output compared with what the local stack writes itself: the registry's users file and
MLflow's auth configuration.

What does NOT run: the official images (postgres, apache/kafka, apicurio/apicurio-registry,
ghcr.io/mlflow/mlflow, prefecthq/prefect, prom/prometheus) cannot be pulled here (no container
registry is reachable), so the compose file is never started: no image is built from it, no
container starts, no healthcheck is ever executed, no service reaches another, and none of
the setup job's commands, PostgreSQL's init script or the Airflow and Prometheus entrypoint
scripts runs against these services. Docker Compose itself is not installed here: only its
schema and podman-compose read the file, so Docker's own reading of it is untested.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from fraudpipe.config import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "infra" / "compose.yml"
COMPOSE_DIR = REPO / "infra" / "compose"
BIN = Path(sys.executable).parent
#: podman-compose validates and renders in about a second; this only stops a hang.
TIMEOUT_S = 120

#: Services run to completion that others wait for; every other service runs and is probed.
ONE_SHOT = {"setup", "registry-users", "pushgateway-web"}
#: The images the file pulls; none is reachable from here.
OFFICIAL_IMAGES = {
    "postgres:15",
    "apache/kafka:4.1.1",
    "apicurio/apicurio-registry:3.3.3",
    "prefecthq/prefect:3.9.1-python3.11",
    "prom/prometheus:v3.5.0",
    "prom/pushgateway:v1.11.1",
}
FRAUDPIPE_IMAGE = "fraudpipe:local"
#: Environment variables whose value is a credential, whatever service reads them.
SECRET_NAME = re.compile(r"PASSWORD|SECRET|AUTH_STRING|API_KEYS")

Service = dict[str, Any]


def _secret_settings() -> list[str]:
    """Every setting that holds a secret, as its FRAUDPIPE_* variable."""
    return [
        f"FRAUDPIPE_{name.upper()}"
        for name, field in Settings.model_fields.items()
        if "SecretStr" in str(field.annotation)
    ]


@pytest.fixture(scope="module")
def dummy_secrets() -> dict[str, str]:
    """A value for every secret setting, each unmistakable wherever it ends up."""
    token = uuid.uuid4().hex[:8]
    return {name: f"dummy{token}{name.lower().replace('_', '')}" for name in _secret_settings()}


def _podman_compose_config(env_file: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    # Only what podman needs from this environment: the FRAUDPIPE_* variables `make test`
    # exports must not reach the interpolation, which is the env file's alone.
    env = {"PATH": os.environ["PATH"], "HOME": str(cwd), "LANG": "C.UTF-8"}
    return subprocess.run(
        [str(BIN / "podman-compose"), "-f", str(COMPOSE), "--env-file", str(env_file), "config"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


@pytest.fixture(scope="module")
def podman_compose(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A scratch directory to run podman-compose in; skips when podman is not installed."""
    if shutil.which("podman") is None:
        pytest.skip(
            "podman is not installed (infra/local/bootstrap.sh installs it): podman-compose "
            "cannot render infra/compose.yml"
        )
    yield tmp_path_factory.mktemp("compose")


@pytest.fixture(scope="module")
def rendered(podman_compose: Path, dummy_secrets: dict[str, str]) -> dict[str, Any]:
    env_file = podman_compose / "dummy.env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in dummy_secrets.items()))
    result = _podman_compose_config(env_file, podman_compose)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert isinstance(config, dict), result.stdout
    return config


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    """The file as written (its YAML anchors merged), before any tool normalizes it."""
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _environment(service: Service) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _depends_on(service: Service) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on") or {}
    return {name: {} for name in deps} if isinstance(deps, list) else dict(deps)


def _container_env(rendered: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    for name, service in rendered["services"].items():
        for key, value in _environment(service).items():
            yield name, key, value


# -- the file is valid ------------------------------------------------------------------------


def test_valid_against_the_compose_specification() -> None:
    result = subprocess.run(
        [
            str(BIN / "check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_renders_with_every_service(rendered: dict[str, Any]) -> None:
    assert set(rendered["services"]) == {
        "postgres",
        "kafka",
        "registry-users",
        "registry",
        "mlflow",
        "prefect",
        "setup",
        "scorer",
        "api",
        "dashboard",
        "prefect-worker",
        "airflow-api-server",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "prometheus",
        "pushgateway-web",
        "pushgateway",
    }


def test_a_missing_secret_stops_the_rendering(
    podman_compose: Path, dummy_secrets: dict[str, str]
) -> None:
    missing = "FRAUDPIPE_KAFKA_SCORER_PASSWORD"
    env_file = podman_compose / "incomplete.env"
    env_file.write_text(
        "".join(f"{name}={value}\n" for name, value in dummy_secrets.items() if name != missing)
    )
    result = _podman_compose_config(env_file, podman_compose)
    assert result.returncode != 0
    assert f"required variable {missing} is missing" in result.stdout + result.stderr


# -- images -----------------------------------------------------------------------------------


def test_images(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    fraudpipe_roles = {
        name for name, service in services.items() if service.get("image") == FRAUDPIPE_IMAGE
    }
    assert fraudpipe_roles == {
        "setup",
        "scorer",
        "api",
        "dashboard",
        "prefect-worker",
        "airflow-api-server",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "pushgateway-web",
    }
    for name in fraudpipe_roles:
        build = services[name]["build"]
        assert Path(build["context"]) == REPO, name
        assert build["dockerfile"] == "Containerfile", name
        assert any(arg.startswith("BASE_IMAGE=") for arg in build["args"]), name
        # The image's entrypoint is `fraudpipe`; each role says what it runs.
        assert services[name].get("entrypoint"), name
    mlflow = services["mlflow"]["build"]
    assert (
        Path(mlflow["context"]) / mlflow["dockerfile"]
    ) == COMPOSE_DIR / "mlflow" / "Containerfile"
    others = {s["image"] for n, s in services.items() if n not in fraudpipe_roles | {"mlflow"}}
    assert others == OFFICIAL_IMAGES


def test_mlflow_image_installs_at_build_time_only(rendered: dict[str, Any]) -> None:
    containerfile = (COMPOSE_DIR / "mlflow" / "Containerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=ghcr\.io/mlflow/mlflow:v3\.17\.\d+$", containerfile, re.M)
    assert re.search(r"^RUN pip install .*psycopg\[binary\]", containerfile, re.M | re.S)
    started = " ".join(rendered["services"]["mlflow"]["command"])
    entrypoint = (COMPOSE_DIR / "mlflow" / "entrypoint.sh").read_text()
    assert "pip" not in started
    assert "pip " not in entrypoint


# -- health and order -------------------------------------------------------------------------


def test_every_service_but_the_one_shot_jobs_has_a_healthcheck(rendered: dict[str, Any]) -> None:
    for name, service in rendered["services"].items():
        check = service.get("healthcheck")
        if name in ONE_SHOT:
            assert check is None, name
            assert service.get("restart") == "no", name
            assert not service.get("ports"), name
            continue
        assert check, f"{name} has no healthcheck"
        assert not check.get("disable"), name
        test = check["test"]
        assert test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, (name, test)


def test_every_dependency_waits_on_a_condition(
    raw: dict[str, Any], rendered: dict[str, Any]
) -> None:
    # As written: podman-compose adds `service_started` to a bare dependency when it renders.
    for config in (raw, rendered):
        services = config["services"]
        for name, service in services.items():
            for dependency, spec in _depends_on(service).items():
                condition = spec.get("condition")
                if dependency in ONE_SHOT:
                    assert condition == "service_completed_successfully", (name, dependency)
                else:
                    assert condition == "service_healthy", (name, dependency)
                    assert services[dependency].get("healthcheck"), dependency


def test_one_shot_jobs_are_waited_for(rendered: dict[str, Any]) -> None:
    waited = {
        dependency
        for service in rendered["services"].values()
        for dependency, spec in _depends_on(service).items()
        if spec.get("condition") == "service_completed_successfully"
    }
    assert waited == ONE_SHOT


def test_every_fraudpipe_role_starts_after_setup(rendered: dict[str, Any]) -> None:
    services = rendered["services"]

    def upstream(name: str) -> set[str]:
        found: set[str] = set()
        todo = list(_depends_on(services[name]))
        while todo:
            dependency = todo.pop()
            if dependency not in found:
                found.add(dependency)
                todo.extend(_depends_on(services[dependency]))
        return found

    for name, service in services.items():
        if service.get("image") == FRAUDPIPE_IMAGE and name != "setup":
            assert "setup" in upstream(name), name
    assert {"postgres", "kafka", "registry", "mlflow", "prefect"} <= upstream("setup")


def test_setup_runs_existing_commands(rendered: dict[str, Any]) -> None:
    from typer.testing import CliRunner

    from fraudpipe.cli import app

    script = " ".join(rendered["services"]["setup"]["command"])
    commands = [c.strip() for c in re.findall(r"fraudpipe ((?:[a-z-]+ ?)+)", script)]
    assert commands == [
        "stack provision",
        "db upgrade",
        "topics ensure",
        "contracts register",
        "deployments apply",
        "airflow migrate",
    ]
    for command in commands:
        result = CliRunner().invoke(app, [*command.split(), "--help"])
        assert result.exit_code == 0, f"`fraudpipe {command}`: {result.output}"


# -- secrets ----------------------------------------------------------------------------------


def test_secrets_come_from_the_env_file_only(
    rendered: dict[str, Any], dummy_secrets: dict[str, str]
) -> None:
    dummies = set(dummy_secrets.values())
    used: set[str] = set()
    for service, key, value in _container_env(rendered):
        in_value = {dummy for dummy in dummies if dummy in value}
        used |= in_value
        where = f"{service}: {key}"
        if SECRET_NAME.search(key):
            assert in_value, f"{where} is a secret written in the compose file"
        for password in re.findall(r'password="([^"]*)"', value):
            assert password in dummies, where
        for password in re.findall(r"://[^:/@\s]+:([^@\s]+)@", value):
            assert password in dummies, where
    # Every secret of the env file reaches a container.
    assert used == dummies, {k for k, v in dummy_secrets.items() if v not in used}


def test_no_secret_written_in_the_file() -> None:
    text = COMPOSE.read_text()
    # Every password and secret is a required variable (`:?`), never defaulted.
    for name in _secret_settings():
        for operator in re.findall(rf"\$\{{{name}([^}}]*)\}}", text):
            assert operator.startswith(":?"), f"{name} must be required, not defaulted"
    # With the variables taken out, what is left of a credential is empty: no literal.
    bare = re.sub(r"\$?\$\{[^}]*\}", "", text)
    for line in bare.splitlines():
        key, colon, value = line.strip().partition(":")
        if colon and SECRET_NAME.search(key):
            assert not re.search(r"\w", value), line
    assert set(re.findall(r'password="([^"]*)"', bare)) <= {""}
    assert set(re.findall(r"://[^:/@\s]*:([^@\s]*)@", bare)) <= {""}


def test_defaults_are_the_settings_defaults() -> None:
    defaults = re.findall(r"\$\{FRAUDPIPE_([A-Z0-9_]+):-([^}]*)\}", COMPOSE.read_text())
    assert defaults
    for name, value in defaults:
        default = Settings.model_fields[name.lower()].default
        assert value == (str(default).lower() if isinstance(default, bool) else str(default)), name


# -- scorers, the API, Kafka, Prometheus ------------------------------------------------------


def test_scorer_has_replicas(rendered: dict[str, Any]) -> None:
    scorer = rendered["services"]["scorer"]
    # `mode: replicated` as well: podman-compose starts `replicas` only with it.
    assert scorer["deploy"] == {"mode": "replicated", "replicas": 2}
    # Replicas cannot share a container name or a host port.
    assert "container_name" not in scorer
    assert not scorer.get("ports")
    env = _environment(scorer)
    assert env["FRAUDPIPE_METRICS_HOST"] == "0.0.0.0"
    assert f":{env['FRAUDPIPE_METRICS_PORT']}/readyz" in scorer["healthcheck"]["test"][-1]


def test_the_api_serves_on_loopback_as_a_scorer_would_with_its_keys(
    rendered: dict[str, Any], dummy_secrets: dict[str, str]
) -> None:
    services = rendered["services"]
    api, scorer = services["api"], services["scorer"]
    assert [*api["entrypoint"], *api["command"]] == [
        "fraudpipe",
        "--json-logs",
        "serve",
        "--host",
        "0.0.0.0",
    ]
    env = _environment(api)
    port = int(env["FRAUDPIPE_API_PORT"])
    assert port == Settings.model_fields["api_port"].default
    # Published on the host's loopback only, at the port the settings' default points to.
    assert api["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert env["FRAUDPIPE_API_WORKERS"] == str(Settings.model_fields["api_workers"].default)
    assert env["FRAUDPIPE_API_KEYS"] == dummy_secrets["FRAUDPIPE_API_KEYS"]
    assert api["healthcheck"]["test"][-1] == f"http://127.0.0.1:{port}/readyz"
    # It needs what the scorer needs, and reads the same settings (its principals included).
    assert _depends_on(api) == _depends_on(scorer)
    scorer_env = {
        key: value
        for key, value in _environment(scorer).items()
        if not key.startswith("FRAUDPIPE_METRICS_")
    }
    assert scorer_env.items() <= env.items()
    assert api["restart"] == "unless-stopped"
    # SIGTERM: uvicorn answers the requests in flight (10 s at most) before it exits.
    assert api["stop_grace_period"] == "30s"


def test_without_api_keys_the_file_does_not_render(
    podman_compose: Path, dummy_secrets: dict[str, str]
) -> None:
    env_file = podman_compose / "keyless.env"
    env_file.write_text(
        "".join(f"{k}={v}\n" for k, v in dummy_secrets.items() if k != "FRAUDPIPE_API_KEYS")
    )
    result = _podman_compose_config(env_file, podman_compose)
    assert result.returncode != 0
    assert "required variable FRAUDPIPE_API_KEYS is missing" in result.stdout + result.stderr


def _listeners(value: str) -> dict[str, tuple[str, int]]:
    found: dict[str, tuple[str, int]] = {}
    for listener in value.split(","):
        name, _, address = listener.partition("://")
        host, _, port = address.rpartition(":")
        found[name] = (host, int(port))
    return found


def test_kafka_advertises_a_listener_the_other_containers_reach(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    kafka = _environment(services["kafka"])
    listeners = _listeners(kafka["KAFKA_LISTENERS"])
    advertised = _listeners(kafka["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(p.split(":") for p in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    by_address = {f"{host}:{port}": name for name, (host, port) in advertised.items()}
    # Every listener authenticates, as the local stack's do.
    assert set(protocols.values()) == {"SASL_PLAINTEXT"}
    assert kafka["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    for name, service in services.items():
        env = _environment(service)
        for variable in (
            "FRAUDPIPE_KAFKA_BOOTSTRAP_SERVERS",
            "FRAUDPIPE_KAFKA_ADMIN_BOOTSTRAP_SERVERS",
        ):
            if variable not in env:
                continue
            listener = by_address.get(env[variable])
            assert listener, f"{name}: {variable}={env[variable]} is no advertised listener"
            host, port = advertised[listener]
            assert host == "kafka", (name, variable)
            assert listeners[listener][1] == port, (name, variable)
    assert "FRAUDPIPE_KAFKA_BOOTSTRAP_SERVERS" in _environment(services["scorer"])
    # And the host's, where the settings' defaults point.
    defaults = Settings.model_fields
    for setting in ("kafka_bootstrap_servers", "kafka_admin_bootstrap_servers"):
        listener = by_address[str(defaults[setting].default)]
        host_port = advertised[listener][1]
        assert f"127.0.0.1:{host_port}:{listeners[listener][1]}" in services["kafka"]["ports"]


def test_prometheus_scrapes_the_scorer_replicas_and_prefect(rendered: dict[str, Any]) -> None:
    config = yaml.safe_load((COMPOSE_DIR / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    scorer_port = int(_environment(rendered["services"]["scorer"])["FRAUDPIPE_METRICS_PORT"])
    # The alert rules select the scorers by this job name.
    assert 'job="fraudpipe-scorer"' in (REPO / "infra/prometheus/rules/fraudpipe.yml").read_text()
    assert jobs["fraudpipe-scorer"]["dns_sd_configs"] == [
        {"names": ["scorer"], "type": "A", "port": scorer_port, "refresh_interval": "10s"}
    ]
    assert jobs["prefect"]["metrics_path"] == "/api/metrics"
    assert jobs["prefect"]["static_configs"] == [{"targets": ["prefect:4200"]}]
    prometheus = rendered["services"]["prometheus"]
    assert "./prometheus/rules:/etc/prometheus/rules:ro" in prometheus["volumes"]
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]


def test_prometheus_scrapes_the_api(rendered: dict[str, Any]) -> None:
    from fraudpipe.stack.prometheus import API_JOB

    config = yaml.safe_load((COMPOSE_DIR / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    port = int(_environment(rendered["services"]["api"])["FRAUDPIPE_API_PORT"])
    # The local stack's job name, which the alert rules select.
    assert f'job="{API_JOB}"' in (REPO / "infra/prometheus/rules/fraudpipe.yml").read_text()
    assert jobs[API_JOB] == {"job_name": API_JOB, "static_configs": [{"targets": [f"api:{port}"]}]}


def test_state_lives_in_named_volumes(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    assert {"pgdata", "kafka-data", "mlflow-artifacts", "prometheus-data"} <= set(
        rendered["volumes"]
    )
    expected = {
        "postgres": "pgdata:/var/lib/postgresql/data",
        "kafka": "kafka-data:/var/lib/kafka/data",
        "mlflow": "mlflow-artifacts:/mlflow/artifacts",
        "prometheus": "prometheus-data:/prometheus",
    }
    for name, mount in expected.items():
        assert mount in services[name]["volumes"], name
    # Bind mounts are the compose file's own scripts and configuration, read-only.
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("."):
                assert str(volume).endswith(":ro"), (name, volume)
                assert (COMPOSE.parent / source).exists(), (name, volume)


# -- the scripts the containers run, against the local stack's own code -----------------------


def _settings_with(**values: str) -> Settings:
    """Settings of defaults and the given values; secrets wrapped as the settings wrap them."""
    fields = Settings.model_fields
    data: dict[str, Any] = {name: f.default for name, f in fields.items() if not f.is_required()}
    for name, value in values.items():
        data[name] = SecretStr(value) if "SecretStr" in str(fields[name].annotation) else value
    return Settings.model_construct(**data)


def test_registry_users_file_is_the_local_stacks(tmp_path: Path) -> None:
    from fraudpipe.stack.registry import RegistryService

    secrets = {
        f"registry_{role}_password": f"{role}-pass word-$'\"{uuid.uuid4().hex[:6]}"
        for role in ("admin", "writer", "reader")
    }
    settings = _settings_with(**secrets)
    env = {f"FRAUDPIPE_{k.upper()}": v for k, v in secrets.items()}
    for role in ("admin", "writer", "reader"):
        env[f"FRAUDPIPE_REGISTRY_{role.upper()}_USER"] = str(
            getattr(settings, f"registry_{role}_user")
        )
    target = tmp_path / "users.properties"
    subprocess.run(
        ["sh", str(COMPOSE_DIR / "registry-users.sh"), str(target)],
        env={"PATH": os.environ["PATH"], **env},
        check=True,
        timeout=TIMEOUT_S,
    )
    assert target.read_text() == RegistryService(settings).users_properties()
    assert not target.with_name("users.properties.partial").exists()


def test_mlflow_auth_configuration_is_the_local_stacks(tmp_path: Path) -> None:
    from fraudpipe.stack.mlflow_server import MlflowService

    settings = _settings_with(pg_host="postgres")
    written = tmp_path / "basic_auth.ini"
    env = {
        "PATH": os.environ["PATH"],
        "MLFLOW_AUTH_CONFIG_PATH": str(written),
        "FRAUDPIPE_PG_HOST": settings.pg_host,
        "FRAUDPIPE_PG_PORT": str(settings.pg_port),
        "FRAUDPIPE_PG_SERVICES_USER": settings.pg_services_user,
        "FRAUDPIPE_MLFLOW_AUTH_DATABASE": settings.mlflow_auth_database,
        "FRAUDPIPE_MLFLOW_ADMIN_USER": settings.mlflow_admin_user,
    }
    # The entrypoint writes the file, then becomes its arguments: here, a no-op.
    subprocess.run(
        ["sh", str(COMPOSE_DIR / "mlflow" / "entrypoint.sh"), "true"],
        env=env,
        check=True,
        timeout=TIMEOUT_S,
    )
    assert written.read_text() == MlflowService(settings).auth_config()
    assert written.stat().st_mode & 0o077 == 0


def test_pushgateway_web_configuration_holds_the_local_stacks_login(tmp_path: Path) -> None:
    import bcrypt

    from fraudpipe.stack.pushgateway import PushgatewayService

    password = f"push word-$'\"{uuid.uuid4().hex[:6]}"
    settings = _settings_with(pushgateway_password=password)
    target = tmp_path / "web.yml"
    env = {
        "PATH": os.environ["PATH"],
        "FRAUDPIPE_PUSHGATEWAY_USER": settings.pushgateway_user,
        "FRAUDPIPE_PUSHGATEWAY_PASSWORD": password,
    }
    subprocess.run(
        [sys.executable, str(COMPOSE_DIR / "pushgateway-web.py"), str(target)],
        env=env,
        check=True,
        timeout=TIMEOUT_S,
    )
    written = yaml.safe_load(target.read_text())
    hashed = written["basic_auth_users"][settings.pushgateway_user]
    assert password not in target.read_text()
    assert bcrypt.checkpw(password.encode(), hashed.encode())
    # The same shape as the local stack's, whose hash is salted anew each time.
    assert written.keys() == PushgatewayService(settings).web_config(hashed).keys()
