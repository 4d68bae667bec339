"""assay: serve, chat with, evaluate, benchmark and compare small open LLMs."""

__version__ = "0.1.0"
