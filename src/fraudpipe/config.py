"""One settings object for every endpoint, secret and tunable.

Values come from the environment or a `.env` file (see `.env.example`). Secrets have no
defaults: `make` writes a `.env` with generated passwords on a fresh checkout, and anyone
pointing fraudpipe at their own services sets them there.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, computed_field
from pydantic_settings import BaseSettings, SettingsConfigDict

Service = Literal["pg", "kafka", "registry", "mlflow"]
"""The services whose principals log in with a user name and a password of their own."""


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
    pg_analyst_user: str = Field(
        "fraudpipe_analyst",
        description="The dashboard's review queue: reads alerts and adds labels, nothing else.",
    )
    pg_analyst_password: SecretStr
    pg_services_user: str = Field("fraudpipe_services", description="Owns the service databases.")
    pg_services_password: SecretStr
    mlflow_database: str = "mlflow"
    mlflow_auth_database: str = Field("mlflow_auth", description="MLflow's users and grants.")
    registry_database: str = "registry"
    prefect_database: str = "prefect"
    airflow_database: str = "airflow"

    # Kafka
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_controller_port: int = 9093
    # Security (fraudpipe.adapters.kafka.security): every client authenticates; the pipeline's
    # principals with SASL/SCRAM, the admin with PLAIN on the broker's own listener.
    kafka_security_protocol: str = Field(
        "SASL_PLAINTEXT", description="SASL_PLAINTEXT, or SASL_SSL with a CA (see README)."
    )
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_ssl_ca_location: str | None = Field(
        None, description="CA bundle that signs the broker's certificate (SASL_SSL only)."
    )
    kafka_admin_bootstrap_servers: str = Field(
        "127.0.0.1:9094", description="Where the admin principal connects (the broker listener)."
    )
    kafka_admin_sasl_mechanism: str = "PLAIN"
    kafka_admin_user: str = Field("fraud-admin", description="Kafka super user: topics, ACLs.")
    kafka_admin_password: SecretStr
    kafka_publisher_user: str = Field(
        "fraud-publisher", description="Writes the transactions topic."
    )
    kafka_publisher_password: SecretStr
    kafka_scorer_user: str = Field(
        "fraud-scorer", description="Reads transactions in its group; writes the outputs."
    )
    kafka_scorer_password: SecretStr
    kafka_reader_user: str = Field(
        "fraud-reader", description="Reads the output topics (dashboards, case management)."
    )
    kafka_reader_password: SecretStr
    kafka_reader_group_prefix: str = "fraud-reader"
    kafka_transactional_id_prefix: str = Field(
        "fraud-scorer", description="Transactional ids the scorer may use (a prefix ACL)."
    )
    kafka_max_poll_interval_ms: int = Field(
        300_000,
        ge=10_000,
        le=3_600_000,
        description=(
            "How long the scorer's loop may go without consuming (waiting out an outage) before "
            "it leaves the group and its partitions move; it rejoins once the outage is over "
            "(librdkafka's default)."
        ),
    )
    kafka_transaction_timeout_ms: int = Field(
        10_000,
        ge=1_000,
        le=900_000,
        description=(
            "How long a scorer's output transaction may stay open; also how long a killed "
            "scorer's open transaction holds back read_committed readers (Kafka Streams' EOS "
            "default)."
        ),
    )
    kafka_publish_transactional_id_prefix: str = Field(
        "fraud-publisher",
        description="Transactional ids of the batch publisher, one per batch (a prefix ACL).",
    )
    kafka_publish_transaction_timeout_ms: int = Field(
        120_000,
        ge=10_000,
        le=900_000,
        description=(
            "How long one batch's publish transaction may stay open; a publish killed and not "
            "re-run holds read_committed readers (the scorer) back this long."
        ),
    )
    scorer_exactly_once: bool = Field(
        True,
        description=(
            "Outputs and consumed offsets in one Kafka transaction per micro-batch (off: "
            "outputs at least once, offsets committed after them)."
        ),
    )
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
    # HTTP basic auth on every request (fraudpipe.adapters.avro.serde.registry_client), with
    # Apicurio's roles: sr-admin, sr-developer, sr-readonly.
    registry_admin_user: str = Field("fraud-registry-admin", description="sr-admin: cleanup.")
    registry_admin_password: SecretStr
    registry_writer_user: str = Field(
        "fraud-registry-writer", description="sr-developer: `fraudpipe contracts register`."
    )
    registry_writer_password: SecretStr
    registry_reader_user: str = Field(
        "fraud-registry-reader", description="sr-readonly: the publisher and the scorer."
    )
    registry_reader_password: SecretStr

    # MLflow
    mlflow_host: str = "127.0.0.1"
    mlflow_port: int = 5000
    mlflow_tracking_uri: str = "http://127.0.0.1:5000"
    # MLflow's basic-auth app (fraudpipe.adapters.mlflow.principals): every request logs in.
    mlflow_admin_user: str = Field("fraud-mlflow-admin", description="Creates users, grants.")
    mlflow_admin_password: SecretStr
    mlflow_trainer_user: str = Field(
        "fraud-trainer", description="Logs training runs and registers versions."
    )
    mlflow_trainer_password: SecretStr
    mlflow_promoter_user: str = Field(
        "fraud-promoter", description="The promotion gate: the only one that moves aliases."
    )
    mlflow_promoter_password: SecretStr
    mlflow_reader_user: str = Field(
        "fraud-mlflow-reader", description="Reads models: the scorer and the dashboard."
    )
    mlflow_reader_password: SecretStr
    mlflow_server_secret: SecretStr = Field(
        description="Signs the MLflow server's sessions (MLFLOW_FLASK_SERVER_SECRET_KEY)."
    )
    model_name: str = "fraud-detector"
    serving_alias: str = "champion"
    shadow_alias: str = Field(
        "challenger",
        description="The scorer also scores every micro-batch with the version behind this "
        "alias, in shadow: stored in shadow_predictions, never alerting. Empty: no shadow.",
    )
    promotion_min_ap_gain: float = Field(
        0.0, description="A candidate's holdout AP must exceed the champion's by more than this."
    )
    promotion_guard_tolerance: float = Field(
        0.01, description="How far a guard metric (ROC AUC, recall@1% FPR) may fall on promotion."
    )
    holdout_days: int = Field(
        1, ge=1, description="The latest calendar days (UTC) of event time held out of training."
    )
    threshold_rule: Literal["budget", "cost", "max_f1"] = Field(
        "budget",
        description="Where a training puts the alert threshold: at most alert_budget_per_day "
        "alerts a day (budget), the least expected loss with review_cost per alert (cost), or "
        "the best F1 (max_f1). See fraudpipe.model.thresholds.",
    )
    alert_budget_per_day: int = Field(
        300, ge=1, le=10_000_000, description="Alerts the analysts can review a day."
    )
    review_cost: float = Field(
        5.0,
        gt=0.0,
        lt=1e9,
        description="What reviewing one alert costs, in the transactions' currency (the cost "
        "rule weighs it against the amount a missed fraud loses).",
    )
    label_delay_days: float = Field(
        7.0,
        ge=0.0,
        le=365.0,
        description="How long after its event a transaction's label from the source data is "
        "known (chargebacks take days to weeks): a retrain as of a cut trains only on events "
        "this much older than the cut (fraudpipe.model.point_in_time).",
    )
    drift_psi_threshold: float = Field(
        0.2,
        gt=0.0,
        le=10.0,
        description="PSI above which a column of a scored batch counts as drifted against the "
        "scoring version's training profile (fraudpipe.model.drift): the dashboard marks it.",
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
    prefect_api_user: str = Field(
        "fraudpipe", description="Prefect's one API login (its server knows no other users)."
    )
    prefect_api_password: SecretStr
    prefect_work_pool: str = "fraudpipe-process"

    # Airflow
    airflow_host: str = "127.0.0.1"
    airflow_port: int = 8080
    airflow_admin_user: str = Field("admin", description="Airflow's one login (SimpleAuthManager).")
    airflow_admin_password: SecretStr
    airflow_secret: SecretStr = Field(
        description="The components' shared secret: the scheduler's task tokens, the "
        "api-server's sessions and the Fernet key are each derived from it."
    )
    airflow_unpause_dags: bool = Field(
        True,
        description="`stack up` unpauses fraud_daily and fraud_weekly_retrain, so they run on "
        "their schedules. False pauses them: nothing of theirs runs, not even a triggered "
        "run, until someone unpauses them (`make test` sets it, so the schedules ingest no "
        "days into the test stack).",
    )

    # Dashboard and metrics
    dashboard_port: int = 8501
    dashboard_password: SecretStr | None = Field(
        None,
        description="Viewers log in with it; required to listen beyond loopback "
        "(fraudpipe.dashboard.access).",
    )
    metrics_port: int = Field(
        9108, description="The scorer's /metrics, /healthz, /readyz; supervised scorer i: +i."
    )
    prometheus_host: str = "127.0.0.1"
    prometheus_port: int = Field(9090, description="Prometheus (UI, API), scraping the scorers.")
    pushgateway_host: str = "127.0.0.1"
    pushgateway_port: int = Field(
        9091, description="Prometheus' Pushgateway: the batch jobs' metrics (drift), scraped."
    )
    pushgateway_user: str = Field(
        "fraudpipe", description="The Pushgateway's login: the batch jobs push, Prometheus scrapes."
    )
    pushgateway_password: SecretStr
    scorers: int = Field(
        1,
        ge=0,
        le=64,
        description="Scorers `stack up` runs and supervises in one consumer group (0: none). "
        "More than the topic's partitions only adds idle members.",
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="Address of the scorer's /metrics, /healthz and /readyz (0.0.0.0 in a pod).",
    )

    # The synchronous scoring API (`fraudpipe serve`)
    topic_decisions: str = Field(
        "fraud.decisions",
        description="Every decision of the scoring API, acknowledged before it answers; "
        "the decision recorder writes them to PostgreSQL.",
    )
    api_enabled: bool = Field(
        True,
        description="`stack up` runs and supervises `fraudpipe serve` (false: not; `make test` "
        "sets false, so no recorder of the stack's shares a test's consumer group).",
    )
    api_host: str = Field(
        "127.0.0.1", description="Address of `fraudpipe serve` (0.0.0.0 in a pod)."
    )
    api_port: int = Field(8095, description="Port of `fraudpipe serve`.")
    api_workers: int = Field(1, ge=1, le=64, description="Worker processes of `fraudpipe serve`.")
    api_keys: SecretStr | None = Field(
        None,
        description="Who may call the scoring API: comma-separated name=key pairs "
        "(`X-API-Key: <key>`); the name is recorded with each decision. `serve` refuses to "
        "start without one.",
    )
    api_max_batch: int = Field(
        1000, ge=1, le=10_000, description="Most transactions one /v1/score/batch request takes."
    )
    api_max_in_flight: int = Field(
        2000,
        ge=1,
        le=1_000_000,
        description=(
            "Most transactions one API worker holds undecided (queued, scored, or waiting for "
            "the broker). A request that would pass it gets a 503 with Retry-After at once, "
            "and none of its transactions is decided; a batch request larger than it is "
            "always refused."
        ),
    )
    api_model_poll_s: float = Field(
        5.0, gt=0, description="How often the API asks MLflow whether the champion moved."
    )
    api_keep_alive_s: int = Field(
        75,
        ge=1,
        le=3600,
        description="How long `fraudpipe serve` keeps an idle connection open. Longer than "
        "the idle timeout of the clients and load balancers in front (60 s is common): a "
        "server that closes first races a request sent on the connection, which then fails "
        "(uvicorn's 5 s default failed 5 of 10,000 requests at 1,000/s in bench/api.py).",
    )
    api_recorder_group: str = Field(
        "fraud-decision-recorder",
        description="Consumer group writing the API's decisions to PostgreSQL.",
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def logs_dir(self) -> Path:
        return self.stack_dir / "logs"

    def credentials(self, service: Service, principal: str) -> tuple[str, SecretStr]:
        """User name and password of one principal of one service (``{service}_{principal}_user``
        and ``_password``; each adapter names its principals with a ``Literal``)."""
        user = getattr(self, f"{service}_{principal}_user", None)
        password = getattr(self, f"{service}_{principal}_password", None)
        if not isinstance(user, str) or not isinstance(password, SecretStr):
            raise KeyError(f"no {service} principal named {principal!r}")
        return user, password

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

    @property
    def analyst_db_url(self) -> str:
        return self.pg_url(self.pg_analyst_user, self.pg_analyst_password)

    @property
    def airflow_url(self) -> str:
        """Airflow's api-server: the UI, the REST API (`/api/v2`) and the Execution API."""
        return f"http://{self.airflow_host}:{self.airflow_port}"

    def service_db_url(self, database: str) -> str:
        return self.pg_url(self.pg_services_user, self.pg_services_password, database)

    def prefect_auth_string(self) -> str:
        """Prefect's ``user:password`` login (PREFECT_API_AUTH_STRING on clients and workers)."""
        return f"{self.prefect_api_user}:{self.prefect_api_password.get_secret_value()}"

    def prefect_client_env(self) -> dict[str, str]:
        """What a Prefect client process (the CLI, the worker, its flow runs) needs to log in."""
        return {
            "PREFECT_API_URL": self.prefect_api_url,
            "PREFECT_API_AUTH_STRING": self.prefect_auth_string(),
        }


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once on first use (never at import)."""
    return Settings()
