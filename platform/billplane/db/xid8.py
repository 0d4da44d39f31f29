"""``Xid8``: PostgreSQL's 64-bit transaction id, read as an int (asyncpg decodes it so)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.types import UserDefinedType


class Xid8(UserDefinedType[int]):
    cache_ok = True

    def get_col_spec(self, **_kw: Any) -> str:
        return "XID8"
