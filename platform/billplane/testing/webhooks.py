"""What the kit asks of a provider's tests to check webhook verification."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

# (webhook secret, signing time) -> (headers, raw body) of one valid webhook of the provider,
# exactly as the provider would send it. The kit signs with a wrong secret and an old time too.
WebhookBuilder = Callable[[str, datetime], tuple[Mapping[str, str], bytes]]
