#!/usr/bin/env bash
# Installs the vegeta load generator bench/api.py drives into $FRAUDPIPE_STACK_DIR/tools/bin/vegeta
# (.stack/tools/bin/vegeta by default), beside helm, and prints its path.
#
# vegeta offers load open-loop at a constant rate (a request leaves on schedule whether or not
# earlier ones have been answered), so a slow answer cannot hold back the requests behind it and
# hide itself from the percentiles (coordinated omission), as a closed-loop tool like wrk does.
# It is built from source with `go install`, the Go module proxy being the one place it can
# come from on every machine this runs on; an installed binary of the pinned version makes this
# a no-op.
#
#   VEGETA_VERSION  the github.com/tsenart/vegeta/v12 module version to build (default below)
#   GOMODCACHE, GOCACHE, GOPROXY  honoured as usual
set -euo pipefail

VEGETA_VERSION="${VEGETA_VERSION:-v12.13.0}"
MODULE="github.com/tsenart/vegeta/v12"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STACK_DIR="${FRAUDPIPE_STACK_DIR:-.stack}"
# A relative stack dir is relative to the repository root, as the settings' default is.
case "$STACK_DIR" in
  /*) ;;
  *) STACK_DIR="$ROOT/$STACK_DIR" ;;
esac
BIN_DIR="$STACK_DIR/tools/bin"
VEGETA="$BIN_DIR/vegeta"
mkdir -p "$BIN_DIR"
# One build at a time: two benches started together wait here for the first one's build.
exec 9>"$BIN_DIR/.vegeta.lock"
flock 9
# The module version the binary was built from, written after each build: `vegeta -version`
# reports only what the build's ldflags said, which `go install` does not set.
STAMP="$BIN_DIR/vegeta.version"

installed_version() {
  if [[ -f "$STAMP" ]]; then
    cat "$STAMP"
  elif command -v go >/dev/null; then
    # A binary put there by hand: its build info names the module version.
    go version -m "$VEGETA" 2>/dev/null | awk -v mod="$MODULE" '$1 == "mod" && $2 == mod { print $3 }'
  fi
}

if [[ -x "$VEGETA" ]] && [[ "$(installed_version)" == "$VEGETA_VERSION" ]]; then
  [[ -f "$STAMP" ]] || echo "$VEGETA_VERSION" >"$STAMP"
  echo "$VEGETA"
  exit 0
fi

if ! command -v go >/dev/null; then
  echo "install_vegeta: needs a Go toolchain on PATH to build vegeta $VEGETA_VERSION" >&2
  exit 1
fi

# Build into a scratch directory and move the result into place, so an interrupted build never
# leaves a half-written binary where the next run would take it for the installed one.
SCRATCH="$(mktemp -d "$BIN_DIR/.vegeta-build.XXXXXX")"
trap 'rm -rf "$SCRATCH"' EXIT
echo "install_vegeta: building $MODULE@$VEGETA_VERSION (a minute or so from a cold Go cache)" >&2
# CGO_ENABLED=0: a static binary that needs no C compiler on the build machine.
CGO_ENABLED=0 GOBIN="$SCRATCH" GOFLAGS="${GOFLAGS:-} -trimpath" \
  go install "$MODULE@$VEGETA_VERSION"
mv -f "$SCRATCH/vegeta" "$VEGETA"
echo "$VEGETA_VERSION" >"$STAMP"
echo "$VEGETA"
