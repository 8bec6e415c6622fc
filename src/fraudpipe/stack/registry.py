"""Schema Registry: Apicurio Registry 3.x, spoken to through its Confluent-compatible API.

Apicurio rather than Confluent's own registry because its distribution is on Maven Central
(we can fetch it with `mvn`, through the user's mirrors) and it keeps its state in PostgreSQL,
which the stack already runs. Producers and consumers only ever see the ccompat API at
`settings.schema_registry_url`, so swapping in a Confluent registry later is a URL change.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from fraudpipe.adapters.avro.serde import APICURIO_ROLES
from fraudpipe.errors import StackError
from fraudpipe.private_files import write_private
from fraudpipe.stack.base import Service, http_ok, port_open

#: Maven coordinates of the runnable distribution: a Quarkus fast-jar (`quarkus-run.jar`) from
#: 3.1 on, a legacy jar (`apicurio-registry-app-<v>-runner.jar` beside `lib/`) in 3.0.x.
ARTIFACT_GROUP = "io.apicurio"
ARTIFACT_ID = "apicurio-registry-app"
ARTIFACT_CLASSIFIER = "all"
#: Central publishes the `all` bundle as tar.gz for 3.3.x; zip is kept as a fallback for
#: releases that only ship that packaging.
ARCHIVE_TYPES = ("tar.gz", "zip")
#: ~160 MB; generous, but a stalled mirror must not hang `stack up` forever.
MVN_TIMEOUT_SECONDS = 900

#: Quarkus's management interface (health, metrics) is switched on at build time and cannot be
#: folded into the main port, so it gets its own port at a fixed offset from the API port.
MANAGEMENT_PORT_OFFSET = 1000

JVM_FLAGS = (
    "-Xms128m",
    "-Xmx512m",
    # PostgreSQL, Kafka, MLflow and Prefect share two cores: serial GC has the smallest
    # footprint and the registry's heap is tiny anyway.
    "-XX:+UseSerialGC",
    # A registry that ran out of heap is better dead (and restarted) than half-working.
    "-XX:+ExitOnOutOfMemoryError",
)

#: Marker written last by `install()`; its presence means the unpacked tree is complete.
MARKER_NAME = ".fraudpipe-installed.json"


class RegistryService(Service):
    """Apicurio Registry on `registry_host:registry_port`, storing schemas in PostgreSQL."""

    name = "registry"

    # -- paths and endpoints -----------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.settings.schema_registry_url

    @property
    def base_url(self) -> str:
        """Root of the registry's HTTP server (core API, ccompat API, UI config)."""
        return f"http://{self.settings.registry_host}:{self.settings.registry_port}"

    @property
    def management_port(self) -> int:
        return self.settings.registry_port + MANAGEMENT_PORT_OFFSET

    @property
    def health_url(self) -> str:
        """Readiness endpoint (includes a database check) on the management interface."""
        return f"http://{self.settings.registry_host}:{self.management_port}/health/ready"

    @property
    def dist_dir(self) -> Path:
        """Unpacked distribution of the configured version."""
        return self.home / self.settings.registry_version

    @property
    def marker(self) -> Path:
        return self.dist_dir / MARKER_NAME

    @property
    def runner_jar(self) -> Path:
        """The jar `java -jar` starts, as recorded by `install()`."""
        try:
            info = json.loads(self.marker.read_text())
        except (OSError, ValueError):
            return self.dist_dir / "quarkus-run.jar"
        return self.dist_dir / str(info.get("runner", "quarkus-run.jar"))

    # -- probes ------------------------------------------------------------------------------
    def is_up(self) -> bool:
        """True when the ccompat API lists subjects.

        The ccompat endpoint, not the management health port, is probed so that any
        Confluent-compatible registry already serving `schema_registry_url` counts as up.
        Quarkus opens its HTTP port only after storage is initialised, so a 2xx here also
        means the database is reachable.
        """
        target = urlsplit(self.url)
        host = target.hostname or self.settings.registry_host
        port = target.port or (443 if target.scheme == "https" else 80)
        if not port_open(host, port):
            return False
        return http_ok(f"{self.url.rstrip('/')}/subjects", auth=self._reader_auth)

    @property
    def _reader_auth(self) -> tuple[str, str]:
        user, password = self.settings.credentials("registry", "reader")
        return user, password.get_secret_value()

    def version(self) -> str | None:
        """Version from Apicurio's system info (v3 API, then v2), None if not Apicurio."""
        for api in ("v3", "v2"):
            try:
                resp = httpx.get(
                    f"{self.base_url}/apis/registry/{api}/system/info",
                    auth=self._reader_auth,
                    timeout=2.0,
                )
            except httpx.HTTPError:
                return None
            if not resp.is_success:
                continue
            try:
                found = resp.json().get("version")
            except (ValueError, AttributeError):
                continue
            if isinstance(found, str):
                return found
        return None

    # -- install -----------------------------------------------------------------------------
    def install(self) -> None:
        """Fetch the distribution with `mvn` and unpack it into `<stack_dir>/registry/<ver>/`.

        Idempotent: a complete install is recognised by its marker file, and a half-finished
        one (no marker) is removed and redone.

        Raises:
            StackError: the version is not a 3.x release, `mvn` is missing, or no packaging
                of the artifact could be fetched or unpacked.
        """
        if self.marker.exists() and self.runner_jar.exists():
            return
        version = self.settings.registry_version
        if not version.startswith("3."):
            # 2.x reads a different set of properties (REGISTRY_*, quarkus.datasource.*).
            raise StackError(
                self.name,
                f"registry_version {version!r} is not supported: launch() configures "
                "Apicurio Registry 3.x (set FRAUDPIPE_REGISTRY_VERSION to e.g. 3.3.3)",
            )
        if shutil.which("mvn") is None:
            raise StackError(
                self.name,
                "`mvn` not found on PATH: install Maven (apt-get install maven) to fetch "
                "Apicurio Registry from Maven Central",
            )
        self.home.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f".{version}-", dir=self.home) as tmp:
            staging = Path(tmp)
            archive = self._download(staging / "download")
            unpacked = staging / "unpacked"
            _unpack(archive, unpacked)
            runner = _find_runner(unpacked)
            if runner is None:
                raise StackError(self.name, f"{archive.name} holds no Quarkus runner jar")
            app_root = runner.parent
            java_min = _required_java(app_root, runner)
            archive_bytes = archive.stat().st_size
            if self.dist_dir.exists():
                shutil.rmtree(self.dist_dir)  # an earlier install died before its marker
            app_root.rename(self.dist_dir)
        info = {
            "artifact": f"{ARTIFACT_GROUP}:{ARTIFACT_ID}:{version}",
            "archive": archive.name,
            "archive_bytes": archive_bytes,
            "runner": runner.name,
            "java_min": java_min,
            "install_seconds": round(time.monotonic() - started, 1),
        }
        self.marker.write_text(json.dumps(info, indent=2) + "\n")

    def _download(self, dest: Path) -> Path:
        """Copy the `all` bundle into `dest` with `mvn`, trying each packaging in turn."""
        dest.mkdir(parents=True)
        version = self.settings.registry_version
        failures: list[str] = []
        for packaging in ARCHIVE_TYPES:
            artifact = f"{ARTIFACT_GROUP}:{ARTIFACT_ID}:{version}:{packaging}:{ARTIFACT_CLASSIFIER}"
            cmd = ["mvn", "-q", "-B", "dependency:copy", f"-Dartifact={artifact}"]
            try:
                result = subprocess.run(
                    [*cmd, f"-DoutputDirectory={dest}"],
                    capture_output=True,
                    text=True,
                    check=False,
                    timeout=MVN_TIMEOUT_SECONDS,
                )
            except subprocess.TimeoutExpired:
                failures.append(f"{packaging}: mvn gave no answer in {MVN_TIMEOUT_SECONDS}s")
                continue
            found = sorted(dest.glob(f"{ARTIFACT_ID}-{version}-{ARTIFACT_CLASSIFIER}.{packaging}"))
            if result.returncode == 0 and found:
                return found[0]
            failures.append(f"{packaging}: {_mvn_error(result.stdout + result.stderr)}")
        raise StackError(
            self.name, f"could not fetch {ARTIFACT_ID} {version} with mvn: " + "; ".join(failures)
        )

    # -- launch ------------------------------------------------------------------------------
    def launch(self) -> subprocess.Popen[bytes]:
        """Start the registry JVM with PostgreSQL storage and the ccompat API on our port.

        Raises:
            StackError: no installed distribution, or no Java new enough to run it.
        """
        if not self.marker.exists():
            raise StackError(self.name, f"not installed under {self.dist_dir}: run install()")
        info = json.loads(self.marker.read_text())
        java = find_java(int(info.get("java_min", 17)))
        self._write_users()
        return self.spawn(
            [str(java), *JVM_FLAGS, "-jar", str(self.runner_jar)],
            env=self.runtime_env(),
            cwd=self.home,
        )

    @property
    def users_file(self) -> Path:
        """Quarkus's embedded users: digests of the passwords, and each one's role."""
        return self.home / "users.properties"

    def users_properties(self) -> str:
        """The registry's users, with Quarkus's digest of each password, never the password.

        Quarkus stores ``hex(sha512("<user>:Quarkus:<password>"))`` (its default realm).
        """
        lines = [
            "quarkus.security.users.embedded.enabled=true",
            "quarkus.security.users.embedded.plain-text=false",
            "quarkus.security.users.embedded.algorithm=digest-sha-512",
        ]
        for role, apicurio_role in APICURIO_ROLES.items():
            user, password = self.settings.credentials("registry", role)
            digest = hashlib.sha512(
                f"{user}:Quarkus:{password.get_secret_value()}".encode()
            ).hexdigest()
            lines.append(f'quarkus.security.users.embedded.users."{user}"={digest}')
            lines.append(f'quarkus.security.users.embedded.roles."{user}"={apicurio_role}')
        return "\n".join(lines) + "\n"

    def _write_users(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        write_private(self.users_file, self.users_properties())

    def configuration(self) -> str:
        env = self.runtime_env()
        return self.users_properties() + "\n".join(f"{k}={env[k]}" for k in sorted(env))

    def runtime_env(self) -> dict[str, str]:
        """Registry configuration as environment variables.

        Environment rather than `-D` flags so that the database password never shows in `ps`.
        """
        s = self.settings
        return {
            "QUARKUS_HTTP_HOST": s.registry_host,
            "QUARKUS_HTTP_PORT": str(s.registry_port),
            "QUARKUS_MANAGEMENT_HOST": s.registry_host,
            "QUARKUS_MANAGEMENT_PORT": str(self.management_port),
            # Storage: PostgreSQL, schema created/upgraded by the registry itself on start.
            "APICURIO_STORAGE_KIND": "sql",
            "APICURIO_STORAGE_SQL_KIND": "postgresql",
            "APICURIO_DATASOURCE_URL": (
                f"jdbc:postgresql://{s.pg_host}:{s.pg_port}/{s.registry_database}"
            ),
            "APICURIO_DATASOURCE_USERNAME": s.pg_services_user,
            "APICURIO_DATASOURCE_PASSWORD": s.pg_services_password.get_secret_value(),
            "APICURIO_SQL_INIT": "true",
            # The default pool (20 idle, 100 max) would eat most of PostgreSQL's connection
            # budget, which MLflow, Prefect and Airflow share.
            "APICURIO_DATASOURCE_JDBC_INITIAL_SIZE": "2",
            "APICURIO_DATASOURCE_JDBC_MIN_SIZE": "2",
            "APICURIO_DATASOURCE_JDBC_MAX_SIZE": "10",
            # ccompat ids are content ids, as in Confluent's registry: one id per distinct
            # schema across subjects, which is what the 5-byte wire header carries.
            "APICURIO_CCOMPAT_LEGACY_ID_MODE_ENABLED": "false",
            # Look schemas up by canonical form, so a producer whose .avsc differs only in
            # whitespace or key order still finds the registered id.
            "APICURIO_CCOMPAT_USE_CANONICAL_HASH": "true",
            # Every request logs in with HTTP basic auth against the users file
            # (`_write_users`); what each may do comes from its Apicurio role. No OIDC server.
            "QUARKUS_OIDC_TENANT_ENABLED": "false",
            "QUARKUS_HTTP_AUTH_BASIC": "true",
            "QUARKUS_CONFIG_LOCATIONS": str(self.users_file),
            "APICURIO_AUTH_ROLE_BASED_AUTHORIZATION": "true",
            "APICURIO_AUTH_ROLE_SOURCE": "token",
            "APICURIO_AUTH_ANONYMOUS_READ_ACCESS_ENABLED": "false",
            "QUARKUS_OTEL_SDK_DISABLED": "true",
            # Health probes poll every half second; an access log would mostly record those.
            "QUARKUS_HTTP_ACCESS_LOG_ENABLED": "false",
            # The shipped pattern prints the zone offset inside the date ("2026-11+00-28").
            "QUARKUS_LOG_CONSOLE_FORMAT": "%d{yyyy-MM-dd HH:mm:ss,SSS} %-5p [%c{3.}] (%t) %s%e%n",
            "APICURIO_STORAGE_SNAPSHOT_LOCATION": str(self.home),
            "APICURIO_IMPORT_WORK_DIR": str(self.home),
        }


# -- helpers ---------------------------------------------------------------------------------
def _mvn_error(output: str) -> str:
    """The first informative `[ERROR]` line of a Maven run, for error messages."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", output)  # Maven colours its output even with -B
    for line in plain.splitlines():
        if line.startswith("[ERROR]") and (text := line.removeprefix("[ERROR]").strip()):
            return text[:300]
    return plain.strip()[-300:] or "no output"


def _unpack(archive: Path, dest: Path) -> None:
    """Extract a .tar.gz or .zip into `dest`, refusing members that escape it."""
    dest.mkdir(parents=True)
    try:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                # zipfile itself drops absolute paths and `..` parts (ruff cannot tell it from tar).
                zf.extractall(dest)  # noqa: S202
        else:
            with tarfile.open(archive, "r:gz") as tf:
                tf.extractall(dest, filter="data")
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
        raise StackError("registry", f"could not unpack {archive.name}: {exc}") from exc


def _find_runner(unpacked: Path) -> Path | None:
    """The runner jar nearest the archive root: `quarkus-run.jar`, else a `*-runner.jar`."""
    for pattern in ("quarkus-run.jar", "*-runner.jar"):
        jars = sorted(unpacked.rglob(pattern), key=lambda p: len(p.parts))
        if jars:
            return jars[0]
    return None


def _required_java(app_root: Path, runner: Path) -> int:
    """Oldest Java that runs this build: the newest class-file version among its own classes.

    The newest, not the first found, because Quarkus-generated classes are compiled for an
    older target than the application's (3.0.9 mixes Java 11 and Java 17 classes).
    """
    jars = sorted((app_root / "app").glob("*.jar")) or [runner]  # fast-jar, else legacy jar
    newest = 0
    for jar in jars:
        with zipfile.ZipFile(jar) as zf:
            for entry in zf.namelist():
                if entry.startswith("io/apicurio/") and entry.endswith(".class"):
                    with zf.open(entry) as cls:
                        header = cls.read(8)
                    # Bytes 6-7 are the major version; 52 is Java 8, so Java = major - 44.
                    newest = max(newest, int.from_bytes(header[6:8], "big") - 44)
    return newest or 17  # Quarkus 3's own floor


def java_major(java: Path) -> int | None:
    """Feature version (17, 21, 25, ...) of a `java` binary, None if it cannot be told."""
    release = java.resolve().parent.parent / "release"
    try:
        text = release.read_text()
    except OSError:
        text = ""
    found = re.search(r'^JAVA_VERSION="(\d+)', text, re.MULTILINE)
    if found is None:
        try:
            result = subprocess.run(
                [str(java), "-version"], capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        found = re.search(r'version "(\d+)', result.stderr)
    if found is None:
        return None
    return int(found.group(1))


def find_java(minimum: int) -> Path:
    """A `java` of at least `minimum`: $JAVA_HOME first, then PATH, then /usr/lib/jvm.

    Apicurio 3.3 is compiled for Java 21 while Debian 12's default JDK is 17, so the PATH
    `java` is often too old and a side-by-side JDK (e.g. Temurin) has to be found.

    Raises:
        StackError: no Java new enough is installed.
    """
    candidates: list[Path] = []
    if java_home := os.environ.get("JAVA_HOME"):
        candidates.append(Path(java_home) / "bin" / "java")
    if on_path := shutil.which("java"):
        candidates.append(Path(on_path))
    jvm_javas = Path("/usr/lib/jvm").glob("*/bin/java")
    candidates.extend(sorted(jvm_javas, key=lambda p: java_major(p) or 0, reverse=True))
    seen: dict[Path, int | None] = {}
    for java in candidates:
        real = java.resolve()
        if real in seen or not real.is_file():
            continue
        seen[real] = java_major(real)
        major = seen[real]
        if major is not None and major >= minimum:
            return real
    found = ", ".join(f"{p} ({v or '?'})" for p, v in seen.items()) or "none"
    raise StackError(
        "registry",
        f"Apicurio Registry needs Java {minimum}+; found {found}. Install a newer JDK "
        "(e.g. apt-get install openjdk-21-jre-headless where available) or set JAVA_HOME",
    )
