"""Kafka side of the pipeline: topic setup and the batch publisher."""
