"""Prometheus' Pushgateway, from Debian's `prometheus-pushgateway` package: where batch jobs
leave their metrics for Prometheus to scrape.

A batch job (the daily DAG's drift task) ends before any scrape could reach it, so it pushes
its gauges here and Prometheus scrapes them with ``honor_labels`` (`stack.prometheus`). It
listens on loopback behind a login (``FRAUDPIPE_PUSHGATEWAY_USER`` and ``_PASSWORD``): its web
configuration holds only the password's bcrypt hash, in a file of mode 600. Pushed groups are
kept across restarts in ``<stack_dir>/pushgateway/metrics.data``.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import bcrypt
import httpx
import yaml

from fraudpipe.errors import StackError
from fraudpipe.private_files import write_private
from fraudpipe.stack.base import Service, http_ok


class PushgatewayService(Service):
    name = "pushgateway"

    @property
    def url(self) -> str:
        return f"http://{self.settings.pushgateway_host}:{self.settings.pushgateway_port}"

    @property
    def _auth(self) -> tuple[str, str]:
        s = self.settings
        return s.pushgateway_user, s.pushgateway_password.get_secret_value()

    def is_up(self) -> bool:
        return http_ok(f"{self.url}/-/ready", auth=self._auth)

    def version(self) -> str | None:
        try:
            body = httpx.get(f"{self.url}/api/v1/status", auth=self._auth, timeout=2).json()
        except (httpx.HTTPError, ValueError):
            return None
        version = body.get("data", {}).get("build_information", {}).get("version")
        return str(version) if version else None

    def web_config(self, password_hash: str) -> dict[str, Any]:
        return {"basic_auth_users": {self.settings.pushgateway_user: password_hash}}

    def configuration(self) -> str:
        user, password = self._auth
        return (
            f"{self.settings.pushgateway_host}:{self.settings.pushgateway_port} {user} {password}"
        )

    def install(self) -> None:
        if shutil.which("prometheus-pushgateway") is None:
            raise StackError(
                self.name,
                "the `prometheus-pushgateway` binary is missing: run `bash "
                "infra/local/bootstrap.sh` (Debian's prometheus-pushgateway package)",
            )
        hashed = bcrypt.hashpw(self._auth[1].encode(), bcrypt.gensalt()).decode()
        write_private(self.home / "web.yml", yaml.safe_dump(self.web_config(hashed)))

    def launch(self) -> subprocess.Popen[bytes]:
        s = self.settings
        return self.spawn(
            [
                "prometheus-pushgateway",
                f"--web.listen-address={s.pushgateway_host}:{s.pushgateway_port}",
                f"--web.config.file={self.home / 'web.yml'}",
                f"--persistence.file={self.home / 'metrics.data'}",
                "--persistence.interval=1m",
            ]
        )
