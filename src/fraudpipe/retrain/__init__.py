"""Retraining: train on labelled history, register the version, and promote it only through
the gate (`run`); labelled history from the raw ULB file for benchmarks and tests
(`ulb_history`)."""

from fraudpipe.retrain.run import RetrainOutcome, retrain

__all__ = ["RetrainOutcome", "retrain"]
