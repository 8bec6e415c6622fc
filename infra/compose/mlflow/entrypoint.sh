#!/bin/sh
# Writes the basic-auth app's configuration from the environment, as
# fraudpipe.stack.mlflow_server.MlflowService.auth_config does for the local stack, then runs
# the command. It holds no password: psycopg reads the database's from PGPASSWORD, and the
# admin's comes from MLFLOW_AUTH_ADMIN_PASSWORD.
set -eu
# `%` is configparser's interpolation character.
database_uri=$(printf 'postgresql+psycopg://%s@%s:%s/%s' \
  "$FRAUDPIPE_PG_SERVICES_USER" "$FRAUDPIPE_PG_HOST" "$FRAUDPIPE_PG_PORT" \
  "$FRAUDPIPE_MLFLOW_AUTH_DATABASE" | sed 's/%/%%/g')
umask 077
cat >"$MLFLOW_AUTH_CONFIG_PATH" <<INI
[mlflow]
default_permission = NO_PERMISSIONS
database_uri = $database_uri
admin_username = $FRAUDPIPE_MLFLOW_ADMIN_USER
authorization_function = fraudpipe.adapters.mlflow.server_auth:authenticate
auth_cache_ttl_seconds = 60
INI
exec "$@"
