"""Runnable examples: ``python -m cycnn.examples.mnist --help``."""
