"""Message contracts: the `.avsc` files, typed records, and their registry serializers.

Importing this package reads no file and makes no request; the factories do, when called.
"""

from fraudpipe.contracts.records import (
    AlertDriver,
    AlertRecord,
    PredictionRecord,
    TransactionRecord,
    to_dict,
)
from fraudpipe.contracts.schemas import CONTRACTS_DIR, Contract, Record, load_schema_str
from fraudpipe.contracts.serde import (
    make_deserializer,
    make_latest_serializer,
    make_serializer,
    registry_client,
    registry_errors,
    value_context,
)

__all__ = [
    "CONTRACTS_DIR",
    "AlertDriver",
    "AlertRecord",
    "Contract",
    "PredictionRecord",
    "Record",
    "TransactionRecord",
    "load_schema_str",
    "make_deserializer",
    "make_latest_serializer",
    "make_serializer",
    "registry_client",
    "registry_errors",
    "to_dict",
    "value_context",
]
