"""Airflow DAGs: schedules that launch the Prefect deployments and wait for their outcome."""
