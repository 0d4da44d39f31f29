"""Request and response bodies of a customer's payment methods."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from billplane.api.types import example_body
from billplane.catalog.schemas import RowId
from billplane.payments.models import PaymentMethod as PaymentMethodRow

Token = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=255,
        description="The provider's id of a payment method it holds (Stripe `pm_...`, a sandbox test token); "
        "never card data.",
        examples=["pm_sandbox_succeeds"],
    ),
]


class PaymentMethodAttach(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Register a payment method the provider already holds, for charges of this customer."""

    token: Token
    # The account whose provider holds it; the tenant's default account if left out.
    provider_account_id: RowId | None = None
    # The customer's default method at that account: what charges use when none is named.
    default: bool = True


PaymentMethodAttachBody = Annotated[
    PaymentMethodAttach, example_body("A sandbox test card", {"token": "pm_sandbox_succeeds"})
]


class PaymentMethod(msgspec.Struct, kw_only=True):
    id: int
    customer_id: int
    provider: str
    provider_account_id: int
    provider_payment_method_id: str
    # What identifies it to a person: `card` and its brand, last 4 digits and expiry (as the
    # provider tells them), or another type. Never a card number.
    type: str
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None
    is_default: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: PaymentMethodRow) -> PaymentMethod:
        return cls(
            id=row.id,
            customer_id=row.customer_id,
            provider=row.provider,
            provider_account_id=row.provider_account_id,
            provider_payment_method_id=row.provider_payment_method_id,
            type=row.type,
            brand=row.brand,
            last4=row.last4,
            exp_month=row.exp_month,
            exp_year=row.exp_year,
            is_default=row.is_default,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
