"""Tenants as the operator manages them (/v1/admin) and as a tenant sees itself (/v1/tenant)."""
