"""Checks that a webhook is accepted only when it is genuine and fresh."""

# ruff: noqa: S101 - pytest reports assertions, with these messages, as check failures

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest

from billplane.plugins import (
    AdapterContext,
    Capability,
    ProviderAdapter,
    ProviderEvent,
    ProviderPlugin,
    WebhookVerificationError,
)
from billplane.testing.capabilities import require
from billplane.testing.webhooks import WebhookBuilder


def _secret(plugin: ProviderPlugin, context: AdapterContext) -> str:
    require(plugin, Capability.WEBHOOKS)
    assert context.webhook_secret, "adapter_context needs a webhook_secret for the webhook checks"
    return context.webhook_secret


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}  # as billplane hands them over


class WebhookChecks:
    @pytest.mark.anyio
    async def test_valid_webhook_is_accepted(
        self,
        provider_plugin: ProviderPlugin,
        adapter_context: AdapterContext,
        adapter: ProviderAdapter,
        build_webhook: WebhookBuilder,
    ) -> None:
        headers, body = build_webhook(_secret(provider_plugin, adapter_context), datetime.now(UTC))
        events = await adapter.parse_webhook(_lower(headers), body)
        assert isinstance(events, list), "parse_webhook must return a list"
        assert events, "a valid webhook from build_webhook must yield at least one event"
        assert all(isinstance(event, ProviderEvent) for event in events), "parse_webhook returns ProviderEvents"
        assert all(event.occurred_at.tzinfo is not None for event in events), "occurred_at must be timezone-aware"

    @pytest.mark.anyio
    async def test_tampered_body_is_rejected(
        self,
        provider_plugin: ProviderPlugin,
        adapter_context: AdapterContext,
        adapter: ProviderAdapter,
        build_webhook: WebhookBuilder,
    ) -> None:
        headers, body = build_webhook(_secret(provider_plugin, adapter_context), datetime.now(UTC))
        with pytest.raises(WebhookVerificationError):
            await adapter.parse_webhook(_lower(headers), body + b" ")  # still valid JSON: only the signature can tell

    @pytest.mark.anyio
    async def test_wrong_secret_is_rejected(
        self,
        provider_plugin: ProviderPlugin,
        adapter_context: AdapterContext,
        adapter: ProviderAdapter,
        build_webhook: WebhookBuilder,
    ) -> None:
        headers, body = build_webhook(_secret(provider_plugin, adapter_context) + "-not-this-one", datetime.now(UTC))
        with pytest.raises(WebhookVerificationError):
            await adapter.parse_webhook(_lower(headers), body)

    @pytest.mark.anyio
    async def test_old_webhook_is_rejected(
        self,
        provider_plugin: ProviderPlugin,
        adapter_context: AdapterContext,
        adapter: ProviderAdapter,
        build_webhook: WebhookBuilder,
        webhook_tolerance: timedelta | None,
    ) -> None:
        secret = _secret(provider_plugin, adapter_context)
        if webhook_tolerance is None:
            pytest.skip("webhook_tolerance is None: the provider's webhooks carry no timestamp")
        headers, body = build_webhook(secret, datetime.now(UTC) - webhook_tolerance - timedelta(minutes=1))
        with pytest.raises(WebhookVerificationError):
            await adapter.parse_webhook(_lower(headers), body)

    @pytest.mark.anyio
    async def test_unsigned_webhook_is_rejected(
        self,
        provider_plugin: ProviderPlugin,
        adapter_context: AdapterContext,
        adapter: ProviderAdapter,
        build_webhook: WebhookBuilder,
    ) -> None:
        _, body = build_webhook(_secret(provider_plugin, adapter_context), datetime.now(UTC))
        with pytest.raises(WebhookVerificationError):
            await adapter.parse_webhook({}, body)
