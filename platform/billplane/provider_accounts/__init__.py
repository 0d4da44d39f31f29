"""Tenants\x27 provider accounts: credentials (encrypted), defaults, and the adapters built from them."""
