"""billplane's ISO 4217 minor units and Stripe's amounts convert exactly, both ways, where the two
count a currency differently (ISK, UGX, MGA) and where they agree; an amount Stripe would refuse
(a fraction of an ariary, a three-decimal amount whose last digit is not 0) is refused first."""

from __future__ import annotations

from decimal import Decimal

import pytest
from billplane_stripe.amounts import from_stripe, to_stripe, unit_to_stripe
from billplane_stripe.catalog import price_params
from billplane_stripe.payments import payment_intent_params, refund_params, refund_result

from billplane.plugins import ChargeRequest, PriceData, ProviderError, RefundRequest, TierData


@pytest.mark.parametrize(
    ("minor", "currency", "amount"),
    [
        (1000, "USD", 1000),
        (1500, "JPY", 1500),
        (150000, "HUF", 150000),  # two decimals at both
        (1500, "ISK", 150000),  # ISO 4217: whole kronur; Stripe: hundredths
        (150000, "MGA", 1500),  # ISO 4217: two decimals; Stripe: whole ariary
        (5, "UGX", 500),  # ISO 4217: whole shillings; Stripe: hundredths ("to charge 5 UGX, provide 500")
        (50000, "UGX", 5000000),
        (12340, "KWD", 12340),
        (5120, "BHD", 5120),
        (0, "MGA", 0),
    ],
)
def test_amounts_convert_exactly_both_ways(minor: int, currency: str, amount: int) -> None:
    assert to_stripe(minor, currency) == amount
    assert to_stripe(minor, currency.lower()) == amount
    assert from_stripe(amount, currency) == minor


@pytest.mark.parametrize(
    ("minor", "currency"),
    [
        (150050, "MGA"),
        (1, "MGA"),
        # Three-decimal currencies: Stripe wants the last digit 0, and refuses the charge otherwise.
        (5125, "KWD"),
        (5125, "kwd"),
        (1, "BHD"),
        (15, "JOD"),
        (9, "OMR"),
        (12345, "TND"),
    ],
)
def test_an_amount_stripe_cannot_take_is_refused_not_rounded(minor: int, currency: str) -> None:
    with pytest.raises(ProviderError, match="cannot be sent") as refused:
        to_stripe(minor, currency)
    assert refused.value.code == "amount_not_supported"


def test_a_plan_price_stripe_could_not_collect_is_refused_too() -> None:
    # Its invoices would be charged 5.125 KWD, which Stripe refuses: the plan is refused at its sync.
    price = PriceData(
        plan_id=6, provider_product_id="prod_1", pricing_model="flat", currency="KWD", billing_interval="month",
        amount=5125,
    )  # fmt: skip
    with pytest.raises(ProviderError) as refused:
        price_params(price)
    assert refused.value.code == "amount_not_supported"


def test_a_stripe_amount_no_minor_unit_count_holds_is_not_reported() -> None:
    assert from_stripe(150050, "ISK") is None  # 1500.50 kr, from before Stripe refused fractions
    assert from_stripe(150050, "UGX") is None  # a fraction of a shilling, as for ISK
    assert from_stripe(150050, "ugx") is None
    assert from_stripe(None, "USD") is None


def test_charges_refunds_and_prices_go_in_stripe_units() -> None:
    charge = ChargeRequest(payment_id=1, amount=1500, currency="ISK", provider_customer_id="cus_1")
    assert payment_intent_params(charge, "pm_1", "cus_1")["amount"] == 150000
    refund = RefundRequest(refund_id=3, provider_payment_id="pi_1", amount=50000, currency="MGA")
    assert refund_params(refund)["amount"] == 500
    answer = refund_result({"id": "re_1", "status": "succeeded", "amount": 500, "currency": "mga"})
    assert answer.amount == 50000
    plan = ChargeRequest(payment_id=2, amount=50000, currency="UGX", provider_customer_id="cus_1")
    assert payment_intent_params(plan, "pm_1", "cus_1")["amount"] == 5000000  # not 50000: 500 UGX
    read = refund_result({"id": "re_2", "status": "succeeded", "amount": 5000000, "currency": "ugx"})
    assert read.amount == 50000
    flat = PriceData(
        plan_id=5, provider_product_id="prod_1", pricing_model="flat", currency="UGX", billing_interval="month",
        amount=50000,
    )  # fmt: skip
    assert price_params(flat)["unit_amount"] == 5000000
    tiers = [
        TierData(up_to=10, unit_amount=Decimal(250), flat_amount=100),
        TierData(up_to=None, unit_amount=Decimal("12.5")),
    ]
    price = PriceData(
        plan_id=4, provider_product_id="prod_1", pricing_model="tiered", currency="MGA",
        billing_interval="month", interval_count=1, tiers=tiers,
    )  # fmt: skip
    sent = price_params(price)["tiers"]
    assert sent[0] == {"up_to": 10, "unit_amount_decimal": "2.5", "flat_amount": 1}
    assert sent[1] == {"up_to": "inf", "unit_amount_decimal": "0.125"}
    assert unit_to_stripe(Decimal(3), "ISK") == Decimal(300)
