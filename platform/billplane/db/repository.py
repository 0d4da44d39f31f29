"""Repository base for tenant tables: advanced-alchemy plus keyset pagination."""

from __future__ import annotations

from typing import Any, TypeVar

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import ColumnElement, select

from billplane.db.mixins import MAX_ID, IdMixin

ModelT = TypeVar("ModelT", bound=IdMixin)


class TenantRepository(SQLAlchemyAsyncRepository[ModelT]):  # type: ignore[type-var]
    """All SQL for one tenant table. Sessions come scoped to the tenant; nothing here commits."""

    async def find(self, row_id: int) -> ModelT | None:
        """The row with this id, or None (also for ids no BIGINT can hold)."""
        if not 1 <= row_id <= MAX_ID:
            return None
        return await self.session.get(self.model_type, row_id)

    async def page(self, *where: ColumnElement[bool], after: int | None, limit: int) -> list[ModelT]:
        """Up to ``limit + 1`` rows in id order after ``after`` (the extra row says a next page exists)."""
        model: Any = self.model_type
        query = select(model).where(*where).order_by(model.id).limit(limit + 1)
        if after is not None:
            query = query.where(model.id > after)
        return list((await self.session.execute(query)).scalars())
