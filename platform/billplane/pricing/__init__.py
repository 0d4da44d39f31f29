"""The pricing engine: pure functions from a plan's price, a quantity and usage to invoice line drafts.

No database and no I/O: invoices, change previews and billing runs call the same functions, so what a
preview shows is what the invoice will hold. Money is int minor units; tier unit prices are exact
Decimals; each line is rounded once, half-even (docs/concepts/pricing.md).
"""

from billplane.pricing.aggregation import UsageValue, aggregate
from billplane.pricing.lines import metered_usage, period_lines, total
from billplane.pricing.models import LineDraft, Period, PlanPricing, PricingError, Tier
from billplane.pricing.proration import ChangePreview, ChangeProration, change_preview, prorate, remaining_time

__all__ = [
    "ChangePreview",
    "ChangeProration",
    "LineDraft",
    "Period",
    "PlanPricing",
    "PricingError",
    "Tier",
    "UsageValue",
    "aggregate",
    "change_preview",
    "metered_usage",
    "period_lines",
    "prorate",
    "remaining_time",
    "total",
]
