#!/bin/sh
# Prometheus reads the Prefect API's and the Pushgateway's logins from files only (prometheus.yml's
# basic_auth): write them from the environment, readable by Prometheus's user alone, then become
# Prometheus.
set -eu
umask 077
printf '%s' "$FRAUDPIPE_PREFECT_API_USER" >/etc/prometheus/prefect.username
printf '%s' "$FRAUDPIPE_PREFECT_API_PASSWORD" >/etc/prometheus/prefect.password
printf '%s' "$FRAUDPIPE_PUSHGATEWAY_USER" >/etc/prometheus/pushgateway.username
printf '%s' "$FRAUDPIPE_PUSHGATEWAY_PASSWORD" >/etc/prometheus/pushgateway.password
exec /bin/prometheus "$@"
