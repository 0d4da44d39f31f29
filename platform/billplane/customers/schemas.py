"""API shapes for customers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from sqlalchemy import Row

from billplane.api.types import Email, Metadata, Patch, ShortText, example_body
from billplane.customers.models import Customer as CustomerRow
from billplane.sync.schemas import ProviderId
from billplane_tenants.database import RowRecord


class CustomerCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    email: Email | None = None
    name: ShortText | None = None
    # The tenant's own id for this customer: unique among live customers.
    external_id: ShortText | None = None
    metadata: Metadata = msgspec.field(default_factory=dict)


class CustomerUpdate(Patch):
    """Only the fields sent change; `null` clears a field."""

    email: Email | msgspec.UnsetType | None = msgspec.UNSET
    name: ShortText | msgspec.UnsetType | None = msgspec.UNSET
    external_id: ShortText | msgspec.UnsetType | None = msgspec.UNSET
    metadata: Metadata | msgspec.UnsetType = msgspec.UNSET


class Customer(msgspec.Struct, kw_only=True):
    id: int
    email: str | None
    name: str | None
    external_id: str | None
    metadata: dict[str, str]
    # Mirroring to provider accounts: none (no account), pending, synced, or failed with the
    # provider's message in last_sync_error (POST /v1/customers/{id}/sync retries).
    sync_status: str
    last_sync_error: str | None
    synced_at: datetime | None
    provider_ids: list[ProviderId]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: CustomerRow | Row[Any] | RowRecord) -> Customer:
        """From the entity or from a row of its columns (``record_columns``): same attribute names."""
        return cls(
            id=row.id,
            email=row.email,
            name=row.name,
            external_id=row.external_id,
            metadata=row.metadata_,
            sync_status=row.sync_status,
            last_sync_error=row.last_sync_error,
            synced_at=row.synced_at,
            provider_ids=[
                ProviderId(
                    provider=ref["provider"],
                    provider_account_id=ref["provider_account_id"],
                    id=ref["provider_customer_id"],
                )
                for ref in row.provider_ids
            ],
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


CustomerCreateBody = Annotated[
    CustomerCreate,
    example_body(
        "A customer",
        {"email": "ada@example.com", "name": "Ada Lovelace", "external_id": "user_1042", "metadata": {"plan": "pro"}},
    ),
]
CustomerUpdateBody = Annotated[
    CustomerUpdate, example_body("Change the name, clear the external id", {"name": "Ada King", "external_id": None})
]
