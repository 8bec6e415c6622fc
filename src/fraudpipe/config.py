"""One settings object for every endpoint, secret and tunable.

Values come from the environment or a `.env` file (see `.env.example`). Secrets have no
defaults: `make` writes a `.env` with generated passwords on a fresh checkout, and anyone
pointing fraudpipe at their own services sets them there.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, computed_field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything fraudpipe needs to reach its services; env names are `FRAUDPIPE_<FIELD>`."""

    model_config = SettingsConfigDict(
        env_prefix="FRAUDPIPE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    # Local stack
    stack_dir: Path = Field(Path(".stack"), description="Data, logs, jars of the local stack.")
    stack_wait_seconds: float = Field(300.0, description="Bound on each service's health wait.")

    # PostgreSQL
    pg_host: str = "127.0.0.1"
    pg_port: int = 5432
    pg_superuser: str = "postgres"
    pg_superuser_password: SecretStr
    pg_database: str = "fraudpipe"
    pg_owner_user: str = Field("fraudpipe_owner", description="Owns the schema; runs migrations.")
    pg_owner_password: SecretStr
    pg_app_user: str = Field("fraudpipe_app", description="Reads and writes rows; no DDL.")
    pg_app_password: SecretStr
    pg_reader_user: str = Field("fraudpipe_reader", description="Read-only, for the dashboard.")
    pg_reader_password: SecretStr
    pg_services_user: str = Field("fraudpipe_services", description="Owns the service databases.")
    pg_services_password: SecretStr
    mlflow_database: str = "mlflow"
    registry_database: str = "registry"
    prefect_database: str = "prefect"
    airflow_database: str = "airflow"

    # Kafka
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_controller_port: int = 9093
    kafka_version: str = "4.1.1"
    kafka_default_partitions: int = 6
    topic_transactions: str = "fraud.transactions"
    topic_predictions: str = "fraud.predictions"
    topic_alerts: str = "fraud.alerts"
    topic_dlq: str = "fraud.transactions.dlq"
    consumer_group: str = "fraud-scorer"
    kafka_delivery_timeout_ms: int = Field(
        120_000,
        gt=0,
        description="How long a producer keeps retrying one record before its send fails.",
    )

    # Schema Registry (Apicurio's Confluent-compatible API)
    registry_host: str = "127.0.0.1"
    registry_port: int = 8081
    registry_version: str = "3.3.3"
    schema_registry_url: str = "http://127.0.0.1:8081/apis/ccompat/v7"
    # FULL, not BACKWARD: producers write the subject's latest version, so registering one
    # changes what running consumers (still on their old reader schema) receive at once; and a
    # replay hands new consumers old records. Both directions must hold, for every version.
    schema_compatibility: str = "FULL_TRANSITIVE"

    # MLflow
    mlflow_host: str = "127.0.0.1"
    mlflow_port: int = 5000
    mlflow_tracking_uri: str = "http://127.0.0.1:5000"
    model_name: str = "fraud-detector"
    serving_alias: str = "champion"
    promotion_min_ap_gain: float = Field(
        0.0, description="A candidate's holdout AP must exceed the champion's by more than this."
    )
    promotion_guard_tolerance: float = Field(
        0.01, description="How far a guard metric (ROC AUC, recall@1% FPR) may fall on promotion."
    )
    holdout_days: int = Field(
        1, ge=1, description="The latest calendar days (UTC) of event time held out of training."
    )

    # Input bounds (fraudpipe.data.bounds)
    bounds_margin: float = Field(
        1.0,
        ge=0.0,
        le=1000.0,
        description="How far beyond the values seen in the real data a feature may go: each "
        "field's observed range widened by this many times its width on each side.",
    )

    # Prefect
    prefect_host: str = "127.0.0.1"
    prefect_port: int = 4200
    prefect_api_url: str = "http://127.0.0.1:4200/api"
    prefect_work_pool: str = "fraudpipe-process"

    # Airflow
    airflow_port: int = 8080

    # Dashboard and metrics
    dashboard_port: int = 8501
    metrics_port: int = 9108

    @computed_field  # type: ignore[prop-decorator]
    @property
    def logs_dir(self) -> Path:
        return self.stack_dir / "logs"

    def pg_url(self, user: str, password: SecretStr, database: str | None = None) -> str:
        """SQLAlchemy URL (psycopg 3 driver) for one role."""
        db = database or self.pg_database
        return (
            f"postgresql+psycopg://{user}:{password.get_secret_value()}"
            f"@{self.pg_host}:{self.pg_port}/{db}"
        )

    @property
    def app_db_url(self) -> str:
        return self.pg_url(self.pg_app_user, self.pg_app_password)

    @property
    def owner_db_url(self) -> str:
        return self.pg_url(self.pg_owner_user, self.pg_owner_password)

    @property
    def reader_db_url(self) -> str:
        return self.pg_url(self.pg_reader_user, self.pg_reader_password)

    def service_db_url(self, database: str) -> str:
        return self.pg_url(self.pg_services_user, self.pg_services_password, database)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once on first use (never at import)."""
    return Settings()
