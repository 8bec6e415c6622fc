#!/usr/bin/env bash
# Makes a fresh machine ready to run fraudpipe without Docker: system packages (PostgreSQL server,
# a JDK and Maven for Kafka and the registry), uv, the locked Python environment, and a .env with
# generated secrets. Idempotent: every step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/../.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || command -v postgres >/dev/null || missing+=(postgresql)
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
# Headless browser for the dashboard's browser test (tests/e2e/test_dashboard_browser.py).
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]} from Debian's packages"
  # Debian would create and start a cluster on 5432; the stack runs its own data directory.
  as_root mkdir -p /etc/postgresql-common
  echo "create_main_cluster = false" | as_root tee /etc/postgresql-common/createcluster.conf >/dev/null
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! python3 -m uv --version >/dev/null 2>&1; then
  echo "bootstrap: installing uv"
  python3 -m pip install -q "uv>=0.5"
fi
python3 -m uv sync --frozen --quiet
bash infra/local/write-env.sh .env
