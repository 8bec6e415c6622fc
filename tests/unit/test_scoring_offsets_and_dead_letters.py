"""What the loop commits, how commit refusals are judged, and what a dead letter carries."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, Message

from fraudpipe.adapters.avro.decoding import dead_letter, wire_schema_id
from fraudpipe.adapters.kafka.dlq import dead_letter_headers
from fraudpipe.adapters.kafka.offsets import judge_commit_error, next_offsets
from fraudpipe.errors import KafkaFatalError, NotAvroError, ServiceUnavailableError

pytestmark = pytest.mark.unit


def _message(partition: int, offset: int, value: bytes | None = b"v") -> Message:
    return Message(
        topic="tx", partition=partition, offset=offset, key=b"k", value=value, timestamp=(1, 77)
    )


def test_commits_one_past_the_last_offset_of_each_partition() -> None:
    messages = [_message(0, 5), _message(1, 9), _message(0, 6), _message(2, 0), _message(1, 10)]
    assert [(tp.topic, tp.partition, tp.offset) for tp in next_offsets(messages)] == [
        ("tx", 0, 7),
        ("tx", 1, 11),
        ("tx", 2, 1),
    ]


@pytest.mark.parametrize(
    "code",
    [KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION, KafkaError.UNKNOWN_MEMBER_ID],
)
def test_a_commit_refused_because_partitions_moved_is_not_an_error(code: int) -> None:
    judge_commit_error(KafkaError(code), [])


def test_an_unreachable_coordinator_is_an_outage_and_a_fatal_error_is_fatal() -> None:
    with pytest.raises(ServiceUnavailableError):
        judge_commit_error(KafkaError(KafkaError._TRANSPORT), [])
    with pytest.raises(ServiceUnavailableError):
        judge_commit_error(KafkaError(KafkaError.COORDINATOR_NOT_AVAILABLE), [])
    with pytest.raises(KafkaFatalError):
        judge_commit_error(KafkaError(KafkaError._FATAL, fatal=True), [])


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (None, "no value"),
        (b"\x00\x00\x00\x00\x01", "shorter than"),
        (b"{json: 1}", "not the magic byte"),
    ],
)
def test_values_that_are_not_registry_framed_avro(value: bytes | None, problem: str) -> None:
    with pytest.raises(NotAvroError, match=problem):
        wire_schema_id(value)


def test_schema_id_is_read_big_endian() -> None:
    assert wire_schema_id(b"\x00\x00\x01\x00\x02payload") == 65538


def test_a_dead_letter_keeps_the_message_and_names_the_error() -> None:
    message = _message(3, 42, value=b"\xffjunk")
    letter = dead_letter(message, NotAvroError("first byte is 0xff"))

    assert (letter.topic, letter.partition, letter.offset) == ("tx", 3, 42)
    assert (letter.key, letter.value, letter.timestamp_ms) == (b"k", b"\xffjunk", 77)
    assert letter.error_type == "NotAvroError"
    assert "0xff" in letter.error

    headers = dict(dead_letter_headers(letter, dead_lettered_at_ms=1234))
    assert headers == {
        "error.type": b"NotAvroError",
        "error.message": letter.error.encode(),
        "original.topic": b"tx",
        "original.partition": b"3",
        "original.offset": b"42",
        "original.timestamp": b"77",
        "dead_lettered_at": b"1234",
    }
