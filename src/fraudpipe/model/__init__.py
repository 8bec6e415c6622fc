"""The fraud model: features, training, time-ordered evaluation, and the MLflow registry."""
