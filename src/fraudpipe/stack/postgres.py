"""Local PostgreSQL: Debian's server binaries, our own data directory and port.

We use the distribution's packaged server (installed by `infra/local/bootstrap.sh` when absent)
rather than a PyPI-shipped one because it is the same build people run in production, it gets
security updates through apt, and `psql`/`pg_dump` come with it.
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql

from fraudpipe.config import Settings
from fraudpipe.errors import StackError
from fraudpipe.stack.base import Service, port_open

#: PostgreSQL refuses to run as root; when we are root the server runs as this system user.
SERVER_OS_USER = "postgres"


def find_server_bindir() -> Path:
    """Directory holding `postgres` and `initdb`, newest Debian version first, then PATH."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda p: int(Path(p).parent.parent.name),
        reverse=True,
    )
    if candidates:
        return Path(candidates[0]).parent
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).resolve().parent
    raise StackError(
        "postgres",
        "no PostgreSQL server binaries found: run `bash infra/local/bootstrap.sh` "
        "(installs Debian's postgresql) or point FRAUDPIPE_PG_HOST/PORT at a running server",
    )


class PostgresService(Service):
    name = "postgres"
    # SIGINT is PostgreSQL's "fast shutdown": clients are disconnected, data is checkpointed.
    stop_signal = signal.SIGINT

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._run_as_other_user = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgresql://{self.settings.pg_host}:{self.settings.pg_port}"

    @property
    def server_root(self) -> Path:
        """Where data and socket live: under `.stack/` unless the server's OS user can't reach it.

        As root, the checkout may sit under a private directory (e.g. /root) that the
        `postgres` user cannot traverse; then the data goes to /var/lib/fraudpipe/<hash>.
        """
        if not self._run_as_other_user or self._server_user_can_enter(self.home.parent):
            return self.home
        digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:12]
        return Path("/var/lib/fraudpipe") / digest

    @property
    def data_dir(self) -> Path:
        return self.server_root / "data"

    def _server_user_can_enter(self, path: Path) -> bool:
        path.mkdir(parents=True, exist_ok=True)
        probe = subprocess.run(self._as_server_user(["test", "-x", str(path)]), check=False)
        return probe.returncode == 0

    def _superuser_conninfo(self, dbname: str = "postgres") -> str:
        return superuser_conninfo_for(self.settings, dbname)

    def is_up(self) -> bool:
        if not port_open(self.settings.pg_host, self.settings.pg_port):
            return False
        try:
            with psycopg.connect(self._superuser_conninfo()) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True

    def version(self) -> str | None:
        with psycopg.connect(self._superuser_conninfo()) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]).split(" ")[0] if row else None

    def _as_server_user(self, cmd: list[str]) -> list[str]:
        if not self._run_as_other_user:
            return cmd
        # setpriv execs in place (runuser would fork), so our pid file holds the postmaster.
        return [
            "setpriv",
            f"--reuid={SERVER_OS_USER}",
            f"--regid={SERVER_OS_USER}",
            "--init-groups",
            "--",
            *cmd,
        ]

    def _chown_to_server_user(self, path: Path) -> None:
        if self._run_as_other_user:
            entry = pwd.getpwnam(SERVER_OS_USER)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def install(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        bindir = find_server_bindir()
        self.server_root.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        self._chown_to_server_user(self.data_dir)
        pwfile = self.server_root / ".initdb-pw"
        pwfile.write_text(self.settings.pg_superuser_password.get_secret_value())
        pwfile.chmod(0o600)
        self._chown_to_server_user(pwfile)
        try:
            result = subprocess.run(
                self._as_server_user(
                    [
                        str(bindir / "initdb"),
                        "-D",
                        str(self.data_dir),
                        "-U",
                        self.settings.pg_superuser,
                        "--pwfile",
                        str(pwfile),
                        "--auth=scram-sha-256",
                        "--encoding=UTF8",
                        "--locale=C.UTF-8",
                    ]
                ),
                capture_output=True,
                text=True,
                check=False,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise StackError("postgres", f"initdb failed: {result.stderr.strip()}")

    def launch(self) -> subprocess.Popen[bytes]:
        bindir = find_server_bindir()
        socket_dir = self.server_root / "socket"
        socket_dir.mkdir(exist_ok=True)
        self._chown_to_server_user(socket_dir)
        s = self.settings
        return self.spawn(
            self._as_server_user(
                [
                    str(bindir / "postgres"),
                    "-D",
                    str(self.data_dir),
                    "-p",
                    str(s.pg_port),
                    "-k",
                    str(socket_dir),
                    "-c",
                    f"listen_addresses={s.pg_host}",
                    "-c",
                    "max_connections=200",
                    "-c",
                    "shared_buffers=256MB",
                    # A single local node with no replica or archive to feed: with minimal WAL,
                    # a batch's partition, created and filled in one transaction, is written
                    # once instead of twice (table + WAL); a crash still loses no commit.
                    "-c",
                    "wal_level=minimal",
                    "-c",
                    "max_wal_senders=0",
                    "-c",
                    "max_wal_size=2GB",
                ]
            )
        )

    def after_start(self) -> None:
        provision_databases(self.settings, self._superuser_conninfo())


def provision_databases(settings: Settings, superuser_conninfo: str) -> None:
    """Create the roles and databases fraudpipe and its services use; safe to repeat.

    Roles follow least privilege: the owner runs migrations, the app role only reads and
    writes rows, the reader only selects, the analyst reads alerts and adds labels, and the
    services role owns the databases of the registry, MLflow, Prefect and Airflow.
    """
    s = settings
    roles = {
        s.pg_owner_user: s.pg_owner_password,
        s.pg_app_user: s.pg_app_password,
        s.pg_reader_user: s.pg_reader_password,
        s.pg_analyst_user: s.pg_analyst_password,
        s.pg_services_user: s.pg_services_password,
    }
    with psycopg.connect(superuser_conninfo, autocommit=True) as conn:
        # Provisioners on other hosts (compose, a cluster's jobs) take turns too: two
        # concurrent `ALTER ROLE`s of one role fail with "tuple concurrently updated".
        # Released with the session.
        conn.execute("SELECT pg_advisory_lock(hashtext('fraudpipe: provision databases'))")
        for role, password in roles.items():
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(
                sql.SQL("{} ROLE {} LOGIN PASSWORD {}").format(
                    sql.SQL(verb), sql.Identifier(role), sql.Literal(password.get_secret_value())
                )
            )
        databases = {
            s.pg_database: s.pg_owner_user,
            s.mlflow_database: s.pg_services_user,
            s.mlflow_auth_database: s.pg_services_user,
            s.registry_database: s.pg_services_user,
            s.prefect_database: s.pg_services_user,
            s.airflow_database: s.pg_services_user,
        }
        for db, owner in databases.items():
            ensure_database(conn, db, owner)

    grant_app_privileges(settings, superuser_conninfo_for(settings, s.pg_database))


def superuser_conninfo_for(settings: Settings, dbname: str) -> str:
    return psycopg.conninfo.make_conninfo(
        host=settings.pg_host,
        port=settings.pg_port,
        user=settings.pg_superuser,
        password=settings.pg_superuser_password.get_secret_value(),
        dbname=dbname,
        connect_timeout=3,
    )


def ensure_database(conn: psycopg.Connection[tuple[object, ...]], db: str, owner: str) -> None:
    """Create `db` owned by `owner` unless it exists."""
    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone():
        return
    conn.execute(
        sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(db), sql.Identifier(owner))
    )


def grant_app_privileges(settings: Settings, conninfo: str) -> None:
    """Give the owner the public schema and the app/reader roles its use.

    What each role may do on each table is the schema's business, set by the owner after every
    migration (`fraudpipe.adapters.postgres.privileges`); here only sequences, which the app
    role's inserts draw ids from.
    """
    s = settings
    owner, app, reader, analyst = (
        sql.Identifier(r)
        for r in (s.pg_owner_user, s.pg_app_user, s.pg_reader_user, s.pg_analyst_user)
    )
    statements: list[sql.Composed | sql.SQL] = [
        sql.SQL("ALTER SCHEMA public OWNER TO {}").format(owner),
        sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC"),
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}, {}, {}").format(app, reader, analyst),
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public "
            "GRANT USAGE, SELECT ON SEQUENCES TO {}"
        ).format(owner, app),
        # Sequences that already exist (e.g. after a role was re-created).
        sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(app),
    ]
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for stmt in statements:
            conn.execute(stmt)
