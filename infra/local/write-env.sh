#!/usr/bin/env bash
# Writes .env from .env.example, with a generated value for every secret left blank there: a
# password for each `FRAUDPIPE_*PASSWORD=` and `*SECRET=` line, and a key for each
# `FRAUDPIPE_*_KEYS=<name>=` line (FRAUDPIPE_API_KEYS=local=<generated>).
# An existing .env keeps every line it has; a secret it lacks (one a newer .env.example added)
# is appended, generated the same way. The file stays mode 600.
set -euo pipefail
target=${1:-.env}
secret() { head -c 18 /dev/urandom | base64 | tr -d '/+='; }
# For a line of .env.example that asks for a generated secret: sets `name` and `prefix` (what
# comes before the generated part of the value) and succeeds; fails for any other line.
wanted() {
  if [[ "$1" =~ ^(FRAUDPIPE_[A-Z_]*(PASSWORD|SECRET))=$ ]]; then
    name=${BASH_REMATCH[1]}
    prefix=
  elif [[ "$1" =~ ^(FRAUDPIPE_[A-Z_]*_KEYS)=([a-z0-9_-]+=)$ ]]; then
    name=${BASH_REMATCH[1]}
    prefix=${BASH_REMATCH[2]}
  else
    return 1
  fi
}
if [ -e "$target" ]; then
  added=0
  while IFS= read -r line; do
    if wanted "$line" && ! grep -q "^${name}=" "$target"; then
      echo "${name}=${prefix}$(secret)" >>"$target"
      added=$((added + 1))
    fi
  done < .env.example
  chmod 600 "$target"
  [ "$added" -eq 0 ] || echo "added $added generated secret(s) to $target"
  exit 0
fi
tmp=$(mktemp)
chmod 600 "$tmp"
while IFS= read -r line; do
  if wanted "$line"; then
    echo "${name}=${prefix}$(secret)" >>"$tmp"
  else
    echo "$line" >>"$tmp"
  fi
done < .env.example
mv "$tmp" "$target"
echo "wrote $target with generated secrets"
