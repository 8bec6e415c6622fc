#!/bin/sh
# The registry's logins, written before it starts, as fraudpipe.stack.registry's
# users_properties writes them for the local stack: Quarkus's embedded users, each with the
# digest of its password (hex sha512 of "<user>:Quarkus:<password>", Quarkus's default realm),
# never the password itself, and each with its Apicurio role
# (fraudpipe.adapters.avro.serde.APICURIO_ROLES).
# Usage: registry-users.sh <file to write>
set -eu
target=$1

digest() {
  printf '%s:Quarkus:%s' "$1" "$2" | sha512sum | cut -d ' ' -f 1
}

user() {
  printf 'quarkus.security.users.embedded.users."%s"=%s\n' "$1" "$(digest "$1" "$2")"
  printf 'quarkus.security.users.embedded.roles."%s"=%s\n' "$1" "$3"
}

{
  echo "quarkus.security.users.embedded.enabled=true"
  echo "quarkus.security.users.embedded.plain-text=false"
  echo "quarkus.security.users.embedded.algorithm=digest-sha-512"
  user "$FRAUDPIPE_REGISTRY_READER_USER" "$FRAUDPIPE_REGISTRY_READER_PASSWORD" sr-readonly
  user "$FRAUDPIPE_REGISTRY_WRITER_USER" "$FRAUDPIPE_REGISTRY_WRITER_PASSWORD" sr-developer
  user "$FRAUDPIPE_REGISTRY_ADMIN_USER" "$FRAUDPIPE_REGISTRY_ADMIN_PASSWORD" sr-admin
} >"$target.partial"
# Digests only, read by the registry's own user, whoever that is in its image.
chmod 644 "$target.partial"
mv "$target.partial" "$target"
