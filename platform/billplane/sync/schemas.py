"""API shapes shared by every object billplane mirrors to providers."""

from __future__ import annotations

import msgspec


class ProviderId(msgspec.Struct, kw_only=True):
    """The object's id at one provider account."""

    provider: str
    provider_account_id: int
    id: str
