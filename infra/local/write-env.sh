#!/usr/bin/env bash
# Writes .env from .env.example on a fresh checkout, with a generated password for every secret
# left blank there. An existing .env is never touched.
set -euo pipefail
target=${1:-.env}
[ -e "$target" ] && exit 0
tmp=$(mktemp)
while IFS= read -r line; do
  if [[ "$line" =~ ^(FRAUDPIPE_[A-Z_]*PASSWORD)=$ ]]; then
    echo "${BASH_REMATCH[1]}=$(head -c 18 /dev/urandom | base64 | tr -d '/+=' )" >>"$tmp"
  else
    echo "$line" >>"$tmp"
  fi
done < .env.example
chmod 600 "$tmp"
mv "$tmp" "$target"
echo "wrote $target with generated secrets"
