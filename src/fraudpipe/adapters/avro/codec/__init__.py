"""Avro binary encoding and decoding planned once per schema, for the hot paths that fastavro's
per-message walk of the schema would dominate; each module is tested byte for byte against
fastavro and says in its docstring what it saves (`varint`: the one zig-zag varint)."""
