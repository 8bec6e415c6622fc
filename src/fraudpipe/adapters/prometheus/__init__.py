"""Prometheus adapter: metrics that batch jobs push to the Pushgateway."""
