"""Prometheus, from Debian's `prometheus` package, scraping the stack's scorers and the
Pushgateway with fraudpipe's rules (`infra/prometheus/rules/`).

The configuration is written from the settings at each start (`<stack_dir>/prometheus/`):
- job `fraudpipe-scorer` scrapes each supervised scorer's `/metrics`, found in the targets file
  the supervisor keeps (`stack.supervisor.targets_file`, file-based discovery), so it follows
  the scorers that run without a restart;
- job `fraudpipe_api` scrapes the scoring API's `/metrics` (no login), found in the targets file
  its supervisor keeps (`stack.api`): listed while the API is supervised, empty when it is not;
- job `prefect` scrapes the Prefect server's `/api/metrics`, behind its login (the password
  goes in a file of mode 600 beside the configuration, never in it);
- job `pushgateway` scrapes the Pushgateway (`stack.pushgateway`) with ``honor_labels``, so a
  batch job's pushed metrics keep their own labels; behind its login, password in a file;
- job `prometheus` scrapes itself.

Airflow 3 has no Prometheus endpoint (StatsD or OpenTelemetry push only), so it is not scraped;
its health is `stack status`'s. Data is kept 15 days under `<stack_dir>/prometheus/data`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import yaml

from fraudpipe.errors import StackError
from fraudpipe.private_files import write_private
from fraudpipe.project import project_root
from fraudpipe.stack.base import Service, http_ok
from fraudpipe.stack.supervisor import targets_file

#: The scorers' scrape job: the alert rules select it by this name.
SCORER_JOB = "fraudpipe-scorer"
#: The scoring API's scrape job (`fraudpipe serve`): the API's alert rules select it by name.
API_JOB = "fraudpipe_api"
#: The Pushgateway's scrape job: the batch jobs' metrics (drift) come from it.
PUSHGATEWAY_JOB = "pushgateway"
_SCRAPE_INTERVAL = "15s"
_RETENTION = "15d"


def rules_dir() -> str:
    return str(project_root() / "infra" / "prometheus" / "rules")


class PrometheusService(Service):
    name = "prometheus"

    @property
    def url(self) -> str:
        return f"http://{self.settings.prometheus_host}:{self.settings.prometheus_port}"

    def is_up(self) -> bool:
        return http_ok(f"{self.url}/-/ready")

    def version(self) -> str | None:
        try:
            body = httpx.get(f"{self.url}/api/v1/status/buildinfo", timeout=2).json()
        except (httpx.HTTPError, ValueError):
            return None
        return str(body.get("data", {}).get("version")) or None

    def config(self) -> dict[str, Any]:
        """prometheus.yml, as a mapping."""
        s = self.settings
        return {
            "global": {"scrape_interval": _SCRAPE_INTERVAL, "evaluation_interval": "15s"},
            "rule_files": [f"{rules_dir()}/*.yml"],
            "scrape_configs": [
                {
                    "job_name": SCORER_JOB,
                    "file_sd_configs": [
                        {"files": [str(targets_file(s))], "refresh_interval": "10s"}
                    ],
                },
                {
                    "job_name": API_JOB,
                    "file_sd_configs": [
                        {"files": [str(targets_file(s, "api"))], "refresh_interval": "10s"}
                    ],
                },
                {
                    "job_name": "prefect",
                    "metrics_path": "/api/metrics",
                    "basic_auth": {
                        "username": s.prefect_api_user,
                        "password_file": str(self._prefect_password_file),
                    },
                    "static_configs": [{"targets": [f"{s.prefect_host}:{s.prefect_port}"]}],
                },
                {
                    "job_name": PUSHGATEWAY_JOB,
                    "honor_labels": True,
                    "basic_auth": {
                        "username": s.pushgateway_user,
                        "password_file": str(self._pushgateway_password_file),
                    },
                    "static_configs": [{"targets": [f"{s.pushgateway_host}:{s.pushgateway_port}"]}],
                },
                {
                    "job_name": "prometheus",
                    "static_configs": [{"targets": [f"{s.prometheus_host}:{s.prometheus_port}"]}],
                },
            ],
        }

    @property
    def _prefect_password_file(self) -> Path:
        return self.home / "prefect.password"

    @property
    def _pushgateway_password_file(self) -> Path:
        return self.home / "pushgateway.password"

    def _secrets(self) -> dict[Path, str]:
        s = self.settings
        return {
            self._prefect_password_file: s.prefect_api_password.get_secret_value(),
            self._pushgateway_password_file: s.pushgateway_password.get_secret_value(),
        }

    def configuration(self) -> str:
        # The passwords are part of what a restart must pick up, though not of the file.
        secrets = "".join(self._secrets().values())
        return yaml.safe_dump(self.config(), sort_keys=True) + secrets

    def install(self) -> None:
        if shutil.which("prometheus") is None:
            raise StackError(
                self.name,
                "the `prometheus` binary is missing: run `bash infra/local/bootstrap.sh` "
                "(Debian's prometheus package)",
            )
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        for supervised in ("scorers", "api"):
            targets = targets_file(self.settings, supervised)
            if not targets.exists():  # no supervisor has run yet: nothing to scrape, said so
                targets.parent.mkdir(parents=True, exist_ok=True)
                targets.write_text("[]")
        for path, secret in self._secrets().items():
            write_private(path, secret)
        (self.home / "prometheus.yml").write_text(yaml.safe_dump(self.config(), sort_keys=True))

    def launch(self) -> subprocess.Popen[bytes]:
        s = self.settings
        return self.spawn(
            [
                "prometheus",
                f"--config.file={self.home / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.home / 'data'}",
                f"--storage.tsdb.retention.time={_RETENTION}",
                f"--web.listen-address={s.prometheus_host}:{s.prometheus_port}",
                # The console templates of Debian's package, for the classic UI pages.
                "--web.console.templates=/etc/prometheus/consoles",
                "--web.console.libraries=/etc/prometheus/console_libraries",
            ]
        )
