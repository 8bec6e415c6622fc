"""Avro and the Schema Registry: the contracts' `.avsc` files, their registration, serializers
and deserializers, the scorer's message decoding, and the column-wise codecs (`codec`).

The typed records the serializers take and return are the core's (`fraudpipe.records`).
Importing this package reads no file and makes no request; the factories do, when called.
"""

from fraudpipe.adapters.avro.schemas import CONTRACTS_DIR, Contract, Record, load_schema_str
from fraudpipe.adapters.avro.serde import (
    Serializer,
    latest_row_encoder,
    make_deserializer,
    make_latest_serializer,
    make_serializer,
    registered_row_encoder,
    registry_client,
    registry_errors,
    value_context,
)

__all__ = [
    "CONTRACTS_DIR",
    "Contract",
    "Record",
    "Serializer",
    "latest_row_encoder",
    "load_schema_str",
    "make_deserializer",
    "make_latest_serializer",
    "make_serializer",
    "registered_row_encoder",
    "registry_client",
    "registry_errors",
    "value_context",
]
