"""Kafka: the pipeline's topics, its producers (one configuration, a preset per role), the
scoring consumer's settings, offsets and lag, and the dead-letter topic."""
