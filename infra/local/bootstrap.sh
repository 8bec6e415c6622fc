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
# Building and running the fraudpipe image (tests/e2e/test_container_image.py): podman with runc,
# and mmdebstrap for a Debian base, since no container registry is reachable.
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || missing+=(runc)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]} from Debian's packages"
  # Debian would create and start a cluster on 5432; the stack runs its own data directory.
  as_root mkdir -p /etc/postgresql-common
  echo "create_main_cluster = false" | as_root tee /etc/postgresql-common/createcluster.conf >/dev/null
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Prometheus, promtool (the alert rules' tests) and the Pushgateway (the batch jobs' metrics).
# Debian's packages would start their own servers on 9090 and 9091 at install: a policy-rc.d
# that refuses service starts (the usual one in container images) keeps them from doing so;
# ours run from the stack.
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null \
    || ! command -v prometheus-pushgateway >/dev/null; then
  echo "bootstrap: installing prometheus and its pushgateway from Debian's packages"
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod +x /usr/sbin/policy-rc.d
    own_policy=1
  fi
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
    prometheus prometheus-pushgateway >/dev/null
  [ "$own_policy" -eq 0 ] || as_root rm -f /usr/sbin/policy-rc.d
fi

if ! python3 -m uv --version >/dev/null 2>&1; then
  echo "bootstrap: installing uv"
  python3 -m pip install -q "uv>=0.5"
fi
# Compiled once here: uv installs sources only, and where PYTHONDONTWRITEBYTECODE is set (it is
# on this machine kind) every process compiles what it imports again. `import sklearn` took 7.3 s
# without, 2.4 s with; a two-worker `fraudpipe serve` was ready in 55 s without, 21 s with.
python3 -m uv sync --frozen --quiet --compile-bytecode
bash infra/local/write-env.sh .env
