"""Liveness and readiness for operators and orchestrators."""
