"""Structured logs, Prometheus metrics and optional tracing (docs/operations/observability.md)."""
