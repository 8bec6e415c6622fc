#!/usr/bin/env bash
# First start of the compose PostgreSQL (an empty data volume): the roles and databases that
# fraudpipe.stack.postgres.provision_databases makes for the local stack, and the grants of its
# grant_app_privileges, made here because the registry, MLflow, Prefect and Airflow store in
# them from their first start. psql quotes every name (:"var") and password (:'var') itself, so
# none is pasted into SQL by the shell.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v owner="$FRAUDPIPE_PG_OWNER_USER" -v owner_password="$FRAUDPIPE_PG_OWNER_PASSWORD" \
  -v app="$FRAUDPIPE_PG_APP_USER" -v app_password="$FRAUDPIPE_PG_APP_PASSWORD" \
  -v reader="$FRAUDPIPE_PG_READER_USER" -v reader_password="$FRAUDPIPE_PG_READER_PASSWORD" \
  -v analyst="$FRAUDPIPE_PG_ANALYST_USER" -v analyst_password="$FRAUDPIPE_PG_ANALYST_PASSWORD" \
  -v services="$FRAUDPIPE_PG_SERVICES_USER" \
  -v services_password="$FRAUDPIPE_PG_SERVICES_PASSWORD" \
  -v database="$FRAUDPIPE_PG_DATABASE" \
  -v mlflow_database="$FRAUDPIPE_MLFLOW_DATABASE" \
  -v mlflow_auth_database="$FRAUDPIPE_MLFLOW_AUTH_DATABASE" \
  -v registry_database="$FRAUDPIPE_REGISTRY_DATABASE" \
  -v prefect_database="$FRAUDPIPE_PREFECT_DATABASE" \
  -v airflow_database="$FRAUDPIPE_AIRFLOW_DATABASE" <<'SQL'
-- The owner runs the migrations, the app role reads and writes rows, the reader only selects,
-- the analyst reads alerts and adds labels, and the services role owns the databases of the registry, MLflow, Prefect and Airflow.
CREATE ROLE :"owner" LOGIN PASSWORD :'owner_password';
CREATE ROLE :"app" LOGIN PASSWORD :'app_password';
CREATE ROLE :"reader" LOGIN PASSWORD :'reader_password';
CREATE ROLE :"analyst" LOGIN PASSWORD :'analyst_password';
CREATE ROLE :"services" LOGIN PASSWORD :'services_password';
CREATE DATABASE :"database" OWNER :"owner";
CREATE DATABASE :"mlflow_database" OWNER :"services";
CREATE DATABASE :"mlflow_auth_database" OWNER :"services";
CREATE DATABASE :"registry_database" OWNER :"services";
CREATE DATABASE :"prefect_database" OWNER :"services";
CREATE DATABASE :"airflow_database" OWNER :"services";

-- What each role may do on each table is set by the owner after every migration
-- (fraudpipe.adapters.postgres.privileges); here the schema, and the sequences the app role's
-- inserts draw ids from.
\connect :database
ALTER SCHEMA public OWNER TO :"owner";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"app", :"reader", :"analyst";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
  GRANT USAGE, SELECT ON SEQUENCES TO :"app";
SQL
