"""SQLAlchemy 2 models of the fraudpipe tables; Alembic migrations create them.

The models describe the schema for readers (the dashboard, training) and for Alembic's
autogenerate check; bulk writes go through `fraudpipe.adapters.postgres.bulk_load` (binary COPY).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Double,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TIMESTAMP

TIMESTAMPTZ = TIMESTAMP(timezone=True)


class Base(DeclarativeBase):
    """Declarative base; naming is left to PostgreSQL's defaults (as the migrations create)."""


class Batch(Base):
    """One source's rows for one calendar day (UTC), moving loaded → published → scored."""

    __tablename__ = "batches"
    __table_args__ = (
        CheckConstraint("status IN ('loaded', 'published', 'scored')", name="batches_status_check"),
    )

    batch_id: Mapped[str] = mapped_column(Text, primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    batch_date: Mapped[date] = mapped_column(Date)
    is_synthetic: Mapped[bool] = mapped_column(Boolean)
    row_count: Mapped[int] = mapped_column(Integer)
    quarantined_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    content_sha256: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    # The batch's range of `source_row`: only batches of a source whose ranges overlap can
    # share a transaction id, so only those are checked when a batch loads.
    min_source_row: Mapped[int | None] = mapped_column(BigInteger)
    max_source_row: Mapped[int | None] = mapped_column(BigInteger)
    loaded_at: Mapped[datetime] = mapped_column(TIMESTAMPTZ)
    published_at: Mapped[datetime | None] = mapped_column(TIMESTAMPTZ)
    scored_at: Mapped[datetime | None] = mapped_column(TIMESTAMPTZ)


class Transaction(Base):
    """One card transaction; `label` (fraud or not) is never sent to scoring."""

    __tablename__ = "transactions"
    __table_args__ = (
        CheckConstraint("label IN (0, 1)", name="transactions_label_check"),
        Index("ix_transactions_event_time", "event_time"),
        # One partition per batch (migration 0002); ingest creates and attaches them.
        {"postgresql_partition_by": "LIST (batch_id)"},
    )

    transaction_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    batch_id: Mapped[str] = mapped_column(Text, primary_key=True)
    source_row: Mapped[int] = mapped_column(BigInteger)
    event_time: Mapped[datetime] = mapped_column(TIMESTAMPTZ)
    amount: Mapped[float] = mapped_column(Double)
    v1: Mapped[float] = mapped_column(Double)
    v2: Mapped[float] = mapped_column(Double)
    v3: Mapped[float] = mapped_column(Double)
    v4: Mapped[float] = mapped_column(Double)
    v5: Mapped[float] = mapped_column(Double)
    v6: Mapped[float] = mapped_column(Double)
    v7: Mapped[float] = mapped_column(Double)
    v8: Mapped[float] = mapped_column(Double)
    v9: Mapped[float] = mapped_column(Double)
    v10: Mapped[float] = mapped_column(Double)
    v11: Mapped[float] = mapped_column(Double)
    v12: Mapped[float] = mapped_column(Double)
    v13: Mapped[float] = mapped_column(Double)
    v14: Mapped[float] = mapped_column(Double)
    v15: Mapped[float] = mapped_column(Double)
    v16: Mapped[float] = mapped_column(Double)
    v17: Mapped[float] = mapped_column(Double)
    v18: Mapped[float] = mapped_column(Double)
    v19: Mapped[float] = mapped_column(Double)
    v20: Mapped[float] = mapped_column(Double)
    v21: Mapped[float] = mapped_column(Double)
    v22: Mapped[float] = mapped_column(Double)
    v23: Mapped[float] = mapped_column(Double)
    v24: Mapped[float] = mapped_column(Double)
    v25: Mapped[float] = mapped_column(Double)
    v26: Mapped[float] = mapped_column(Double)
    v27: Mapped[float] = mapped_column(Double)
    v28: Mapped[float] = mapped_column(Double)
    label: Mapped[int | None] = mapped_column(SmallInteger)


class Prediction(Base):
    """One model version's score for one transaction (idempotent per transaction and version)."""

    __tablename__ = "predictions"
    # No foreign key to `transactions`: the scorer checks every micro-batch's ids set-based
    # before inserting (see migration 0003 and `adapters.postgres.prediction_sink`).
    __table_args__ = (
        Index("ix_predictions_batch_id", "batch_id"),
        Index("ix_predictions_scored_at", "scored_at"),
        Index(
            "ix_predictions_alerts",
            text("score DESC"),
            postgresql_where=text("is_fraud"),
        ),
    )

    transaction_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    model_name: Mapped[str] = mapped_column(Text)
    model_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[str] = mapped_column(Text)
    score: Mapped[float] = mapped_column(Double)
    is_fraud: Mapped[bool] = mapped_column(Boolean)
    threshold: Mapped[float] = mapped_column(Double)
    scored_at: Mapped[datetime] = mapped_column(TIMESTAMPTZ)
    latency_ms: Mapped[float | None] = mapped_column(Double)


class QuarantinedRow(Base):
    """A source row that broke the raw-row contract, kept with why and its raw values."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    batch_id: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    source_row: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[dict[str, Any]] = mapped_column(JSONB)
    quarantined_at: Mapped[datetime] = mapped_column(TIMESTAMPTZ, server_default=text("now()"))


class DeadLetter(Base):
    """A Kafka message the scoring service could not decode or validate."""

    __tablename__ = "dead_letters"
    __table_args__ = (UniqueConstraint("topic", "partition", "offset"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(Text)
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)
    key: Mapped[bytes | None] = mapped_column(LargeBinary)
    value: Mapped[bytes | None] = mapped_column(LargeBinary)
    error_type: Mapped[str] = mapped_column(Text)
    error: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(TIMESTAMPTZ, server_default=text("now()"))


class ModelRefusal(Base):
    """A registered model version a scorer refused to serve (failed verification), and why."""

    __tablename__ = "model_refusals"

    model_name: Mapped[str] = mapped_column(Text, primary_key=True)
    model_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    scorer: Mapped[str] = mapped_column(Text)
    refusals: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    first_refused_at: Mapped[datetime] = mapped_column(TIMESTAMPTZ, server_default=text("now()"))
    last_refused_at: Mapped[datetime] = mapped_column(TIMESTAMPTZ, server_default=text("now()"))


class PublishAttempt(Base):
    """Where a batch's latest publish attempt started on the topic (`publish_attempts`)."""

    __tablename__ = "publish_attempts"

    batch_id: Mapped[str] = mapped_column(Text, primary_key=True)
    topic: Mapped[str] = mapped_column(Text)
    start_offsets: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    started_at: Mapped[datetime] = mapped_column(TIMESTAMPTZ, server_default=text("now()"))


class Label(Base):
    """One label fact (`labels`): added, never changed; a transaction's latest known wins."""

    __tablename__ = "labels"
    __table_args__ = (
        CheckConstraint(
            "source IN ('dataset', 'chargeback', 'analyst')", name="labels_source_check"
        ),
        CheckConstraint("length(labelled_by) BETWEEN 1 AND 200", name="labels_labelled_by_check"),
        CheckConstraint("length(note) <= 2000", name="labels_note_check"),
        Index("ix_labels_known_at", "known_at"),
    )

    transaction_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    is_fraud: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(Text, primary_key=True)
    labelled_by: Mapped[str] = mapped_column(Text)
    known_at: Mapped[datetime] = mapped_column(TIMESTAMPTZ, primary_key=True)
    note: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(TIMESTAMPTZ, server_default=text("now()"))


class AlertReason(Base):
    """One reason of one alert (`alert_reasons`), written with the prediction that raised it."""

    __tablename__ = "alert_reasons"
    __table_args__ = (
        ForeignKeyConstraint(
            ["transaction_id", "model_version"],
            ["predictions.transaction_id", "predictions.model_version"],
            name="alert_reasons_prediction_fkey",
            ondelete="CASCADE",
        ),
        CheckConstraint("rank BETWEEN 1 AND 10", name="alert_reasons_rank_check"),
        CheckConstraint("length(feature) BETWEEN 1 AND 64", name="alert_reasons_feature_check"),
        CheckConstraint(
            "contribution > 0 AND contribution < 'Infinity'::float8",
            name="alert_reasons_contribution_check",
        ),
        CheckConstraint("length(description) <= 500", name="alert_reasons_description_check"),
        CheckConstraint("method IN ('linear', 'tree_shap')", name="alert_reasons_method_check"),
    )

    transaction_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    model_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    rank: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    feature: Mapped[str] = mapped_column(Text)
    contribution: Mapped[float] = mapped_column(Double)
    description: Mapped[str] = mapped_column(Text)
    method: Mapped[str] = mapped_column(Text)


class ShadowPrediction(Base):
    """The challenger's score for one transaction, in shadow (`shadow_predictions`)."""

    __tablename__ = "shadow_predictions"
    __table_args__ = (Index("ix_shadow_predictions_batch_id", "batch_id"),)

    transaction_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    model_name: Mapped[str] = mapped_column(Text)
    model_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    champion_version: Mapped[int] = mapped_column(Integer)
    batch_id: Mapped[str] = mapped_column(Text)
    score: Mapped[float] = mapped_column(Double)
    would_alert: Mapped[bool] = mapped_column(Boolean)
    threshold: Mapped[float] = mapped_column(Double)
    scored_at: Mapped[datetime] = mapped_column(TIMESTAMPTZ)


class BatchDrift(Base):
    """PSI of one profiled column of a scored batch, against the scoring version's reference."""

    __tablename__ = "batch_drift"
    __table_args__ = (
        ForeignKeyConstraint(["batch_id"], ["batches.batch_id"], name="batch_drift_batch_id_fkey"),
        CheckConstraint("length(feature) BETWEEN 1 AND 64", name="batch_drift_feature_check"),
        CheckConstraint("psi >= 0 AND psi < 'Infinity'::float8", name="batch_drift_psi_check"),
        CheckConstraint("rows > 0", name="batch_drift_rows_check"),
    )

    batch_id: Mapped[str] = mapped_column(Text, primary_key=True)
    model_name: Mapped[str] = mapped_column(Text)
    model_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    feature: Mapped[str] = mapped_column(Text, primary_key=True)
    psi: Mapped[float] = mapped_column(Double)
    rows: Mapped[int] = mapped_column(BigInteger)
    measured_at: Mapped[datetime] = mapped_column(TIMESTAMPTZ)


class BatchAlertRate(Base):
    """Alerts one version raised on a scored batch, against the rate its threshold expects."""

    __tablename__ = "batch_alert_rates"
    __table_args__ = (
        ForeignKeyConstraint(
            ["batch_id"], ["batches.batch_id"], name="batch_alert_rates_batch_id_fkey"
        ),
        CheckConstraint("rows > 0", name="batch_alert_rates_rows_check"),
        CheckConstraint("alerts BETWEEN 0 AND rows", name="batch_alert_rates_alerts_check"),
        CheckConstraint(
            "expected_alert_rate BETWEEN 0 AND 1", name="batch_alert_rates_expected_check"
        ),
    )

    batch_id: Mapped[str] = mapped_column(Text, primary_key=True)
    model_name: Mapped[str] = mapped_column(Text)
    model_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    rows: Mapped[int] = mapped_column(BigInteger)
    alerts: Mapped[int] = mapped_column(BigInteger)
    expected_alert_rate: Mapped[float] = mapped_column(Double)
    measured_at: Mapped[datetime] = mapped_column(TIMESTAMPTZ)


class ApiDecision(Base):
    """One decision of the scoring API, with the transaction as the caller sent it."""

    __tablename__ = "api_decisions"
    __table_args__ = (
        CheckConstraint("length(client) BETWEEN 1 AND 64", name="api_decisions_client_check"),
        CheckConstraint(
            "cardinality(features) = 29 AND array_ndims(features) = 1",
            name="api_decisions_features_check",
        ),
        CheckConstraint("model_version >= 1", name="api_decisions_version_check"),
        CheckConstraint("score BETWEEN 0 AND 1", name="api_decisions_score_check"),
        CheckConstraint("threshold BETWEEN 0 AND 1", name="api_decisions_threshold_check"),
        CheckConstraint("jsonb_typeof(top_drivers) = 'array'", name="api_decisions_drivers_check"),
        Index("api_decisions_decided_at_idx", "decided_at"),
    )

    transaction_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    request_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    client: Mapped[str] = mapped_column(Text)
    batch_id: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    event_time: Mapped[datetime] = mapped_column(TIMESTAMPTZ)
    features: Mapped[list[float]] = mapped_column(ARRAY(Double))
    model_name: Mapped[str] = mapped_column(Text)
    model_version: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Double)
    threshold: Mapped[float] = mapped_column(Double)
    is_fraud: Mapped[bool] = mapped_column(Boolean)
    reasons_method: Mapped[str] = mapped_column(Text)
    top_drivers: Mapped[Any] = mapped_column(JSONB)
    decided_at: Mapped[datetime] = mapped_column(TIMESTAMPTZ)
    recorded_at: Mapped[datetime] = mapped_column(TIMESTAMPTZ, server_default=text("now()"))
