"""Repository base for tenant tables: advanced-alchemy plus keyset pagination."""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import ColumnElement, Row, Select, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.db.mixins import MAX_ID, IdMixin

ModelT = TypeVar("ModelT", bound=IdMixin)


@cache
def _base_statement(model: type[Any]) -> Select[Any]:
    return select(model)


@cache
def record_columns(model: type[Any]) -> tuple[Any, ...]:
    """Every mapped column of ``model``: selected together they give rows, not entities.

    Rows carry the model's attribute names (``metadata_`` included), so response schemas read
    them exactly like entities. Reads that change nothing use them: an entity costs identity-map
    and instance-state bookkeeping that a read-only request never needs (measured: about a
    quarter of a primary-key GET's CPU; docs/performance.md).
    """
    return tuple(getattr(model, attribute.key) for attribute in inspect(model).column_attrs)


async def page_records(
    session: AsyncSession, model: Any, *where: ColumnElement[bool], after: int | None, limit: int
) -> list[Row[Any]]:
    """A keyset page as rows (read-only), fetched as ``limit + 1`` like ``TenantRepository.page``."""
    query = select(*record_columns(model)).where(*where).order_by(model.id).limit(limit + 1)
    if after is not None:
        query = query.where(model.id > after)
    return list(await session.execute(query))


class TenantRepository(SQLAlchemyAsyncRepository[ModelT]):  # type: ignore[type-var]
    """All SQL for one tenant table. Sessions come scoped to the tenant; nothing here commits."""

    def __init__(self, *, session: AsyncSession, **kwargs: Any) -> None:
        # A repository is built per request: hand it the model's base statement, built once,
        # instead of letting it compile a new select() every time (a measurable share of a GET).
        kwargs.setdefault("statement", _base_statement(self.model_type))  # type: ignore[arg-type]
        super().__init__(session=session, **kwargs)

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
