"""Turnout: a per-pod LLM routing sidecar. See README.md; the flow is laid out in pipeline.py."""

__version__ = "0.1.0"
