"""Observability: Prometheus metrics and structured logs, for the API and the worker alike."""
