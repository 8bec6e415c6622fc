#!/usr/bin/env bash
# Builds the fraudpipe image (Containerfile) with podman: `make image`, and the container test.
#
# No container registry is reachable here, so the official Python base cannot be pulled: unless
# BASE_IMAGE names another, the base is made locally, once, from Debian's own packages
# (mmdebstrap: Debian 12 with python3, python3-venv and the CA certificates). The machine's CA
# bundle is mounted for the build's downloads, never copied into the image, and uv's cache is
# shared with the build so the locked wheels already on the machine are not fetched again.
#
# Usage: infra/container/build.sh [TAG]   (TAG: localhost/fraudpipe:dev)
set -euo pipefail
cd "$(dirname "$0")/../.."
tag=${1:-localhost/fraudpipe:dev}
podman=infra/container/podman.sh
# One build at a time: `make test` starts one in the background, and the image's test waits
# here for it, then finds every layer cached.
mkdir -p .stack/run
exec 9>.stack/run/image-build.lock
flock 9
base=${BASE_IMAGE:-localhost/fraudpipe-python:3.11-bookworm}

if [ -z "${BASE_IMAGE:-}" ] && ! $podman image exists "$base"; then
  echo "build: making $base from Debian's packages"
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  mmdebstrap --quiet --variant=minbase --include=ca-certificates,python3,python3-venv \
    bookworm "$root/base.tar"
  $podman import --quiet "$root/base.tar" "$base" >/dev/null
fi

# uv's cache, as uv reports it (it honours UV_CACHE_DIR): `$UV` under `uv run`, whose python3
# has no uv module; bootstrap's `python3 -m uv` otherwise.
if [ -n "${UV:-}" ]; then
  uv_cache=$("$UV" cache dir)
else
  uv_cache=$(python3 -m uv cache dir)
fi
mkdir -p "$uv_cache"
echo "build: $tag on $base"
$podman build --quiet --format docker \
  --volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro \
  --volume "$uv_cache:/root/.cache/uv" \
  --build-arg BASE_IMAGE="$base" \
  --tag "$tag" --file Containerfile .
