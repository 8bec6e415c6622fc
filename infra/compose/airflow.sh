#!/bin/sh
# Runs one Airflow component (`airflow "$@"`) with the environment the local stack gives all
# four (`fraudpipe airflow env`: LocalExecutor, metadata in PostgreSQL, the secrets derived from
# FRAUDPIPE_AIRFLOW_SECRET, which the components must share), and two changes a container needs.
set -eu
airflow_env=$(fraudpipe airflow env)
eval "$airflow_env"
# The api-server listens on the container's every interface: the other components reach it by
# its service name (AIRFLOW__CORE__EXECUTION_API_SERVER_URL), browsers by the published port,
# which is where the UI must send them back to.
export AIRFLOW__API__HOST=0.0.0.0
export AIRFLOW__API__BASE_URL=http://127.0.0.1:8080
exec airflow "$@"
