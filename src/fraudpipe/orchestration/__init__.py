"""Orchestration: Prefect deployments and runs, the Airflow environment, and the demo driver.

Airflow DAGs (`dags/`) and the CLI only wire these functions; nothing here runs at import.
"""
