"""Columns every tenant table shares."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

# Ids are BIGINT: a larger number names no row (and asyncpg refuses to send it at all).
MAX_ID = 2**63 - 1


class IdMixin:
    # BIGINT identities: 64-bit ids (Citus-compatible), assigned by the database per row.
    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)


class TimestampsMixin:
    """Timezone-aware UTC timestamps set by the database for each row (never a Python default)."""

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class MetadataMixin:
    @declared_attr
    def metadata_(cls) -> Mapped[dict[str, Any]]:  # noqa: N805 - declared_attr receives the class
        # `metadata` is reserved by SQLAlchemy's declarative base; the column keeps the API's name.
        return mapped_column("metadata", JSONB, server_default=text("'{}'::jsonb"))
