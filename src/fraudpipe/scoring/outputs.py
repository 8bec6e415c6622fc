"""Publish a scored micro-batch: a `Prediction` per transaction, an `Alert` per flagged one.

Predictions are encoded column-wise (`RowEncoder`) with the local contract's schema, whose id
is looked up under the predictions subject: the scorer never registers schemas, and a subject
that lacks the contract fails loudly at start-up (`warm_up`). Alerts are few (the flagged share
of transactions), so they go through the contracts' `AvroSerializer` as typed `AlertRecord`s.
Both are keyed by transaction id. With the scorer's output transactions (the default) a
``read_committed`` reader sees each exactly once; without them, delivery is at least once and
readers deduplicate on ``(transaction_id, model_version)``. A redelivered micro-batch carries
each row's verdict and scoring time as PostgreSQL stored them, and an alert is raised at its
prediction's scoring time, so a record sent again is the same record.
"""

from __future__ import annotations

import uuid

import numpy as np
import numpy.typing as npt
from confluent_kafka.schema_registry import SchemaRegistryClient

from fraudpipe.adapters.avro import (
    Contract,
    make_serializer,
    registered_row_encoder,
    registry_errors,
    value_context,
)
from fraudpipe.adapters.avro.codec.row_writer import Categorical, Constant, FixedText, RowEncoder
from fraudpipe.adapters.kafka.producer import RecordSink
from fraudpipe.config import Settings
from fraudpipe.microbatch import AlertReasons, ScoredBatch, from_epoch_ms
from fraudpipe.records import AlertRecord


class PredictionPublisher:
    """Queues a micro-batch's predictions and alerts on a producer (confirmed or transactional)."""

    def __init__(
        self, settings: Settings, client: SchemaRegistryClient, producer: RecordSink
    ) -> None:
        """Prepare the publisher; the registry is first asked at the first `publish`."""
        self._settings = settings
        self._client = client
        self._producer = producer
        self._predictions: RowEncoder | None = None
        self._alert_serializer = make_serializer(Contract.ALERT, client)
        self._alert_context = value_context(settings.topic_alerts)

    def warm_up(self) -> None:
        """Ask the registry now what publishing needs, so the first micro-batch does not wait.

        Raises:
            ContractNotRegisteredError: A subject does not hold its contract's schema.
            ServiceUnavailableError: The registry cannot be reached.
        """
        self._encoder()
        subject = Contract.ALERT.subject(self._settings)
        with registry_errors(self._settings, subject):
            # Cached by the client: the alert serializer writes with this latest version.
            self._client.get_latest_version(subject)

    def publish(self, scored: ScoredBatch, reasons: AlertReasons) -> int:
        """Queue the predictions and alerts (then confirm, or commit the transaction).

        Args:
            scored: The micro-batch, already committed to PostgreSQL.
            reasons: Each flagged row's drivers (`explain_alerts`), worked out before the
                micro-batch was written.

        Returns:
            How many alerts were queued.

        Raises:
            ContractNotRegisteredError: A subject does not hold its contract's schema.
            ServiceUnavailableError: The registry cannot be reached.
        """
        n = len(scored)
        if n == 0:
            return 0
        txs = scored.transactions
        id_text = txs.id_text()
        blob = id_text.tobytes()
        keys = [blob[i : i + 36] for i in range(0, len(blob), 36)]
        scored_at_ms = scored.scored_at_ms_rows()
        values = self._encoder().encode(
            {
                "transaction_id": FixedText(id_text),
                "batch_id": Categorical(txs.batch_codes, txs.batch_ids),
                "model_name": Constant(scored.model_name),
                "model_version": Constant(scored.model_version),
                "score": scored.scores,
                "is_fraud": scored.is_fraud,
                "threshold": Constant(scored.threshold),
                "scored_at": (
                    Constant(scored.scored_at_ms) if scored.stored_at_ms is None else scored_at_ms
                ),
            },
            n,
        )
        self._producer.produce_many(self._settings.topic_predictions, values, keys)
        return self._publish_alerts(scored, reasons, keys, scored_at_ms)

    def _publish_alerts(
        self,
        scored: ScoredBatch,
        reasons: AlertReasons,
        keys: list[bytes],
        scored_at_ms: npt.NDArray[np.int64],
    ) -> int:
        rows = np.flatnonzero(scored.is_fraud)
        if not len(rows):
            return 0
        txs = scored.transactions
        inputs = {c: values[rows] for c, values in txs.columns.items()}
        raised_at_ms = scored_at_ms[rows].tolist()
        topic = self._settings.topic_alerts
        # Plain Python values column by column: per-row pandas indexing cost more than encoding.
        ids = txs.ids[rows].tobytes()
        codes = txs.batch_codes[rows].tolist()
        event_ms = inputs["event_time"].tolist()
        amounts = inputs["amount"].tolist()
        scores = scored.scores[rows].tolist()
        message_rows = txs.message_rows[rows].tolist()
        with registry_errors(self._settings, Contract.ALERT.subject(self._settings)):
            for j, i in enumerate(rows.tolist()):
                score = scores[j]
                alert = AlertRecord(
                    transaction_id=uuid.UUID(bytes=ids[16 * j : 16 * j + 16]),
                    batch_id=txs.batch_ids[codes[j]],
                    event_time=from_epoch_ms(int(event_ms[j])),
                    amount=float(amounts[j]),
                    score=score,
                    threshold=scored.threshold,
                    model_name=scored.model_name,
                    model_version=scored.model_version,
                    reason=f"score {score:.3f} >= threshold {scored.threshold:.3f}",
                    top_drivers=reasons.get(message_rows[j]),
                    raised_at=from_epoch_ms(int(raised_at_ms[j])),
                    reasons_method=reasons.method,
                )
                value = self._alert_serializer(alert, self._alert_context)
                self._producer.produce(topic, value, keys[i])
        return len(rows)

    def _encoder(self) -> RowEncoder:
        if self._predictions is None:
            self._predictions = registered_row_encoder(
                self._settings, Contract.PREDICTION, self._client
            )
        return self._predictions
