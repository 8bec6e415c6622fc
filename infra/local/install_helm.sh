#!/usr/bin/env bash
# Installs the helm binary the chart's test uses (tests/deploy/test_helm_chart.py) into
# $FRAUDPIPE_STACK_DIR/tools/bin/helm (.stack/tools/bin/helm by default), and prints its path.
#
# Helm is built from source with `go install`, because the Go module proxy is the one place
# helm can come from on every machine this runs on (no release download site is reachable from
# all of them). Building it needs a Go toolchain and takes minutes from a cold Go cache; an
# already installed binary of the pinned version makes this a no-op.
#
#   HELM_VERSION  the helm.sh/helm/v4 module version to build (default below)
#   GOMODCACHE, GOCACHE, GOPROXY  honoured as usual (CI may cache the first two)
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v4.3.2}"
MODULE="helm.sh/helm/v4"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STACK_DIR="${FRAUDPIPE_STACK_DIR:-.stack}"
# A relative stack dir is relative to the repository root, as the settings' default is.
case "$STACK_DIR" in
  /*) ;;
  *) STACK_DIR="$ROOT/$STACK_DIR" ;;
esac
BIN_DIR="$STACK_DIR/tools/bin"
HELM="$BIN_DIR/helm"
mkdir -p "$BIN_DIR"
# One build at a time: `make test` starts one in the background, and the chart's test waits
# here for it rather than starting a second.
exec 9>"$BIN_DIR/.helm.lock"
flock 9
# The module version the binary was built from, written after each build: `helm version`
# reports only what the build's ldflags said, which `go install` does not set ("v4.3").
STAMP="$BIN_DIR/helm.version"

installed_version() {
  if [[ -f "$STAMP" ]]; then
    cat "$STAMP"
  elif command -v go >/dev/null; then
    # A binary built before the stamp existed: its build info names the module version.
    go version -m "$HELM" 2>/dev/null | awk -v mod="$MODULE" '$1 == "mod" && $2 == mod { print $3 }'
  fi
}

if [[ -x "$HELM" ]] && [[ "$(installed_version)" == "$HELM_VERSION" ]]; then
  [[ -f "$STAMP" ]] || echo "$HELM_VERSION" >"$STAMP"
  echo "$HELM"
  exit 0
fi

if ! command -v go >/dev/null; then
  echo "install_helm: needs a Go toolchain on PATH to build helm $HELM_VERSION" >&2
  exit 1
fi

# Build into a scratch directory and move the result into place, so an interrupted build never
# leaves a half-written binary where the next run would take it for the installed one.
SCRATCH="$(mktemp -d "$BIN_DIR/.helm-build.XXXXXX")"
trap 'rm -rf "$SCRATCH"' EXIT
echo "install_helm: building $MODULE/cmd/helm@$HELM_VERSION (minutes from a cold Go cache)" >&2
# CGO_ENABLED=0: a static binary that needs no C compiler on the build machine.
CGO_ENABLED=0 GOBIN="$SCRATCH" GOFLAGS="${GOFLAGS:-} -trimpath" \
  go install "$MODULE/cmd/helm@$HELM_VERSION"
mv -f "$SCRATCH/helm" "$HELM"
echo "$HELM_VERSION" >"$STAMP"
echo "$HELM"
