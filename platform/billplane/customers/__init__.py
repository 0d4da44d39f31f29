"""Customers of a tenant, and their identities at payment providers."""
