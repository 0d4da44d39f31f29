"""Payments, refunds and stored payment methods (provider tokens only)."""
