"""One home per outside system, each behind a narrow surface the use cases call.

`postgres` (connections, schema and migrations, bulk load, the scorer's sink, reporting and the
dashboard's reads), `kafka` (topics, producers, consumer settings, offsets, lag, the DLQ),
`avro` (contracts in the Schema Registry, serdes, message decoding, the column-wise codecs) and
`mlflow` (run logging, the registry and its promotion gate, the serving-model watch). Adapters
import the core (settings, errors, records, data, model) and never a use case; they do not
import one another.
"""
