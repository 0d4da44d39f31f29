"""Idempotency-Key on every POST: the first response is stored and replayed (Stripe semantics)."""
