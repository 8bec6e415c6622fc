#!/usr/bin/env bash
# Writes .env from .env.example, with a generated password for every secret left blank there.
# An existing .env keeps every line it has; a secret it lacks (one a newer .env.example added)
# is appended, generated the same way. The file stays mode 600.
set -euo pipefail
target=${1:-.env}
secret() { head -c 18 /dev/urandom | base64 | tr -d '/+='; }
if [ -e "$target" ]; then
  added=0
  while IFS= read -r line; do
    if [[ "$line" =~ ^(FRAUDPIPE_[A-Z_]*(PASSWORD|SECRET))=$ ]] \
        && ! grep -q "^${BASH_REMATCH[1]}=" "$target"; then
      echo "${BASH_REMATCH[1]}=$(secret)" >>"$target"
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
  if [[ "$line" =~ ^(FRAUDPIPE_[A-Z_]*(PASSWORD|SECRET))=$ ]]; then
    echo "${BASH_REMATCH[1]}=$(secret)" >>"$tmp"
  else
    echo "$line" >>"$tmp"
  fi
done < .env.example
mv "$tmp" "$target"
echo "wrote $target with generated secrets"
