"""Kafka consumer services (thin entry points over fraudpipe.scoring)."""
