"""Interlock: a control plane above the schedulers you already run."""

__version__ = "0.1.0"
