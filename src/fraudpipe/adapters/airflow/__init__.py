"""Airflow: the environment every Airflow process of the stack shares, and a client of its REST
API (token, DAGs, runs, task logs, health). Nothing here imports `airflow` itself, so the stack
and the CLI can drive Airflow without loading it."""
