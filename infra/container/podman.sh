#!/usr/bin/env bash
# podman with the flags these machines need, in one place: runc (crun fails with cgroups in
# hybrid mode) and open-file and process limits lowered below podman's defaults, which exceed
# what the VM allows. Usage: infra/container/podman.sh <podman arguments...>
set -euo pipefail
limits=(--ulimit nofile=4096:4096 --ulimit nproc=4096:4096)
case "${1:-}" in
  run | create | build)
    command=$1
    shift
    exec podman --runtime runc "$command" "${limits[@]}" "$@"
    ;;
  *) exec podman --runtime runc "$@" ;;
esac
