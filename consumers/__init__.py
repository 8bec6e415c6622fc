"""Entry points of the Kafka consumers (the logic lives in `fraudpipe.scoring`)."""
