"""Stored first responses: in each tenant schema for tenant requests, in control for the operator's."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Identity, Integer, LargeBinary, Text, func
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from billplane.db.base import TenantBase
from billplane_tenants import ControlBase


class IdempotencyColumns:
    """A row exists only once its request committed: in flight, it is an uncommitted insert."""

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    key: Mapped[str] = mapped_column(Text, unique=True)
    # sha256 of method, path, query and body: the same key with another request is refused.
    fingerprint: Mapped[str] = mapped_column(Text)
    method: Mapped[str] = mapped_column(Text)
    path: Mapped[str] = mapped_column(Text)
    response_status: Mapped[int] = mapped_column(Integer)
    response_content_type: Mapped[str] = mapped_column(Text)
    response_body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    @declared_attr
    def expires_at(cls) -> Mapped[datetime]:  # noqa: N805 - declared_attr receives the class
        return mapped_column(DateTime(timezone=True), index=True)


class IdempotencyKey(IdempotencyColumns, TenantBase):
    __tablename__ = "idempotency_keys"


class AdminIdempotencyKey(IdempotencyColumns, ControlBase):
    __tablename__ = "idempotency_keys"
