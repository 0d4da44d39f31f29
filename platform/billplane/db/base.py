"""Declarative base for tenant tables: no schema (the tenant scope supplies it), named constraints."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from billplane_tenants import NAMING_CONVENTION


class TenantBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
