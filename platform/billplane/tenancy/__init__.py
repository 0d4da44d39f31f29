"""Tenants as the operator manages them (/v1/admin) and as a tenant sees itself (/v1/tenant), and the
hold a tenant's request takes on its tenant's row while it writes control rows naming it (holding)."""
