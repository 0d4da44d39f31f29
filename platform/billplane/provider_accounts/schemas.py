"""API shapes for provider accounts. Credentials and webhook secrets go in, never out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from billplane.api.pattern_words import worded
from billplane.api.types import Patch, ShortText, example_body
from billplane.provider_accounts.models import ProviderAccount as ProviderAccountRow

Mode = Literal["test", "live"]
ProviderName = Annotated[
    str,
    msgspec.Meta(
        pattern=worded(r"^[a-z][a-z0-9_]{1,31}$", "must be the name of an installed provider, such as sandbox"),
        description="An installed provider.",
        examples=["sandbox"],
    ),
]
Credentials = Annotated[
    dict[str, Any],
    msgspec.Meta(
        max_length=50,
        description="The provider's credentials, validated against its schema; stored encrypted, never returned.",
        examples=[{"api_key": "sk_sandbox_4242424242424242"}],
    ),
]
WebhookSecret = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=1024,
        description="The secret the provider signs webhooks with; stored encrypted, never returned.",
    ),
]


class ProviderAccountCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    provider: ProviderName
    mode: Mode
    credentials: Credentials
    webhook_secret: WebhookSecret | None = None
    label: ShortText | None = None
    # Unset: the tenant's first account of this provider becomes its default.
    is_default: bool | msgspec.UnsetType = msgspec.UNSET

    def __repr__(self) -> str:  # the body carries secrets: never print them
        return f"ProviderAccountCreate(provider={self.provider!r}, mode={self.mode!r}, credentials=***)"


class ProviderAccountUpdate(Patch):
    """Only the fields sent change; `null` clears `label` or `webhook_secret`."""

    label: ShortText | msgspec.UnsetType | None = msgspec.UNSET
    is_default: bool | msgspec.UnsetType = msgspec.UNSET
    credentials: Credentials | msgspec.UnsetType = msgspec.UNSET
    webhook_secret: WebhookSecret | msgspec.UnsetType | None = msgspec.UNSET

    def __repr__(self) -> str:
        return f"ProviderAccountUpdate(fields={sorted(self.changes())!r})"


class ProviderAccount(msgspec.Struct, kw_only=True):
    id: int
    provider: str
    mode: str
    label: str | None
    is_default: bool
    # {field: "...4242"} for the provider's secret fields: enough to recognise the credentials.
    credentials_hint: dict[str, str]
    webhook_secret_set: bool
    webhook_secret_hint: str | None
    status: str
    last_checked_at: datetime | None
    last_check_error: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: ProviderAccountRow) -> ProviderAccount:
        return cls(
            id=row.id,
            provider=row.provider,
            mode=row.mode,
            label=row.label,
            is_default=row.is_default,
            credentials_hint=row.credentials_hint,
            webhook_secret_set=row.webhook_secret_ciphertext is not None,
            webhook_secret_hint=row.webhook_secret_hint,
            status=row.status,
            last_checked_at=row.last_checked_at,
            last_check_error=row.last_check_error,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


ProviderAccountCreateBody = Annotated[
    ProviderAccountCreate,
    example_body(
        "A sandbox account in test mode",
        {
            "provider": "sandbox",
            "mode": "test",
            "label": "Sandbox",
            "credentials": {"api_key": "sk_sandbox_4242424242424242"},
            "webhook_secret": "whsec_example_0123456789",
        },
    ),
]
ProviderAccountUpdateBody = Annotated[
    ProviderAccountUpdate,
    example_body("Make it the default and rename it", {"is_default": True, "label": "Main sandbox"}),
]
