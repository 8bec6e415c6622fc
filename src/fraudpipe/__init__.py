"""fraudpipe: credit-card fraud detection pipeline."""

__version__ = "0.1.0"
