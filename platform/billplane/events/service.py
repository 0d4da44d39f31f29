"""Rules of events and webhook endpoints. Never commits: the request owns the transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.exceptions import NotFoundException
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.pagination import page_of
from billplane.api.problems import ConflictError, InvalidFieldError
from billplane.api.types import checked_time
from billplane.events import types
from billplane.events.changes import changed
from billplane.events.deliveries import UNSUBSCRIBED
from billplane.events.emit import emit
from billplane.events.models import WebhookEndpoint as EndpointRow
from billplane.events.options import WebhookOptions
from billplane.events.repository import EndpointReads, EndpointRepository, EventFilters, EventReads
from billplane.events.schemas import WebhookEndpoint, WebhookEndpointCreate, WebhookEndpointUpdate
from billplane.events.signing import new_secret
from billplane.events.urls import ForbiddenURLError, check_url
from billplane.events.vault import EndpointVault

DISABLED_BY_TENANT = "disabled by the tenant"
DEFAULT_REPLAY = timedelta(hours=24)
# A client asking for exactly "the last max_replay_days days" is not refused for the time its
# request took to arrive, nor for a clock a little behind billplane's.
REPLAY_GRACE = timedelta(minutes=5)


class EventService:
    def __init__(self, session: AsyncSession) -> None:
        self.reads = EventReads(session)

    async def get(self, event_id: int) -> Row[Any]:
        row = await self.reads.get(event_id)
        if row is None:
            raise NotFoundException(f"no event {event_id}")
        return row

    async def page(self, filters: EventFilters, *, after: int | None, limit: int) -> tuple[list[Row[Any]], str | None]:
        rows = await self.reads.page(filters, after=after, limit=limit)
        if rows is None:
            # A cursor names the last event shown; one naming no event (from before the tenant's
            # schema was restored from a backup, say) cannot say where to go on.
            raise InvalidFieldError(
                "cursor", "names no event of this tenant: list again from the start", source="query"
            )
        return page_of(rows, limit)


class EndpointService:
    def __init__(self, session: AsyncSession, tenant_id: int, vault: EndpointVault, options: WebhookOptions) -> None:
        self.session = session
        self.repository = EndpointRepository(session=session)
        self.reads = EndpointReads(session)
        self.tenant_id = tenant_id
        self.vault = vault
        self.options = options

    async def _emit(self, type_: str, endpoint: EndpointRow) -> None:
        await emit(self.session, type_, types.ENDPOINT_OBJECT, endpoint.id, WebhookEndpoint.of(endpoint))

    def _checked_url(self, url: str) -> str:
        try:
            return check_url(url, allow_http_loopback=self.options.allow_http_loopback)
        except ForbiddenURLError as exc:
            raise InvalidFieldError("url", str(exc)) from None

    async def create(self, data: WebhookEndpointCreate) -> tuple[EndpointRow, str]:
        """The new endpoint and its signing secret in clear (the only time it is shown)."""
        url = self._checked_url(data.url)
        # Held until the request commits: a concurrent create of this tenant counts after this
        # one's endpoint exists, so two creates at the limit minus one cannot both pass.
        await self.repository.one_at_a_time(self.tenant_id)
        if await self.repository.total() >= self.options.max_endpoints:
            raise ConflictError(
                f"a tenant has at most {self.options.max_endpoints} webhook endpoints, disabled ones included: "
                "delete one first"
            )
        endpoint = EndpointRow(
            url=url,
            description=data.description,
            enabled_events=_unique(data.enabled_events),
            metadata_=data.metadata,
            secret_ciphertext=b"",
            secret_key_id="",
        )
        endpoint = await self.repository.add(endpoint)  # the id binds the sealed secret to this row
        secret = new_secret()
        self.vault.seal_into(endpoint, self.tenant_id, secret)
        endpoint = await self.repository.update(endpoint)
        await self._emit(types.ENDPOINT_CREATED, endpoint)
        return endpoint, secret

    async def get(self, endpoint_id: int) -> EndpointRow:
        endpoint = await self.repository.find(endpoint_id)
        if endpoint is None:
            raise NotFoundException(f"no webhook endpoint {endpoint_id}")
        return endpoint

    async def update(self, endpoint_id: int, data: WebhookEndpointUpdate) -> EndpointRow:
        endpoint = await self.get(endpoint_id)
        before = WebhookEndpoint.of(endpoint)
        changes = data.changes()
        if "url" in changes:
            endpoint.url = self._checked_url(changes["url"])
        if "description" in changes:
            endpoint.description = changes["description"]
        if "enabled_events" in changes:
            endpoint.enabled_events = _unique(changes["enabled_events"])
        if "metadata" in changes:
            endpoint.metadata_ = changes["metadata"]
        status = changes.get("status")
        disabling = status == "disabled" and endpoint.status != "disabled"
        if status == "enabled" and endpoint.status != "enabled":
            endpoint.status, endpoint.disabled_reason, endpoint.consecutive_failures = "enabled", None, 0
        elif disabling:
            endpoint.status, endpoint.disabled_reason = "disabled", DISABLED_BY_TENANT
        # The endpoint's row first, then its deliveries': the order of the worker recording an
        # attempt (billplane.events.deliveries), which would otherwise deadlock with this change.
        endpoint = await self.repository.update(endpoint)
        if disabling:
            await self.repository.fail_pending(endpoint.id, "the endpoint was disabled")
        if "enabled_events" in changes and endpoint.status == "enabled":
            await self.repository.fail_unsubscribed(endpoint.id, UNSUBSCRIBED)
        if changed(before, WebhookEndpoint.of(endpoint)):  # the values it had already: no event
            await self._emit(types.ENDPOINT_UPDATED, endpoint)
        return endpoint

    async def delete(self, endpoint_id: int) -> None:
        """Delete the endpoint and its delivery history (the events stay)."""
        # Deletes of one tenant run one at a time. Two at once would each hold its own endpoint's
        # row and then, fanning its webhook_endpoint.deleted event out, wait for the other's: a
        # deadlock (every fan-out locks the endpoints its events go to, billplane.events.emit).
        await self.repository.one_at_a_time(self.tenant_id)
        endpoint = await self.get(endpoint_id)
        shown = WebhookEndpoint.of(endpoint)
        # The endpoint's row, then its deliveries' (the cascade): the worker records an attempt in
        # that order too, so an attempt on it either committed before (and goes with the history)
        # or finds it gone and records nothing.
        await self.repository.delete(endpoint.id)
        await emit(self.session, types.ENDPOINT_DELETED, types.ENDPOINT_OBJECT, endpoint_id, shown)

    async def rotate_secret(self, endpoint_id: int) -> tuple[EndpointRow, str]:
        """A new signing secret, effective for every attempt from now on (the old one stops at once)."""
        endpoint = await self.get(endpoint_id)
        secret = new_secret()
        self.vault.seal_into(endpoint, self.tenant_id, secret)
        endpoint = await self.repository.update(endpoint)
        await self._emit(types.ENDPOINT_UPDATED, endpoint)  # the endpoint as shown: never the secret
        return endpoint, secret

    async def replay(self, endpoint_id: int, since: datetime | None) -> int:
        # Held (not deleted meanwhile) and fresh; the replay itself takes the lock that makes a
        # concurrent replay of this endpoint wait for this one to commit, then find what it queued
        # (the check that skips waiting events sees committed rows only).
        endpoint = await self.repository.locked(endpoint_id)
        if endpoint is None:
            raise NotFoundException(f"no webhook endpoint {endpoint_id}")
        if since is None:
            since = datetime.now(UTC) - DEFAULT_REPLAY
        if endpoint.status != "enabled":
            raise ConflictError("the endpoint is disabled: enable it first (PATCH status=enabled)")
        checked_time(since, "since")
        now = datetime.now(UTC)
        if since > now:
            raise InvalidFieldError("since", "is in the future")
        days = self.options.max_replay_days
        if since < now - timedelta(days=days) - REPLAY_GRACE:
            reach = f"a replay reaches back {days} days at most (older events: GET /v1/events)"
            raise InvalidFieldError("since", f"is more than {days} days ago: {reach}")
        return await self.repository.replay(endpoint.id, since)

    async def page(self, *, after: int | None, limit: int) -> tuple[list[Row[Any]], str | None]:
        return page_of(await self.reads.page(after=after, limit=limit), limit)

    async def deliveries(
        self, endpoint_id: int, status: str | None, *, after: int | None, limit: int
    ) -> tuple[list[Row[Any]], str | None]:
        await self.get(endpoint_id)
        return page_of(await self.reads.deliveries(endpoint_id, status, after=after, limit=limit), limit)


def _unique(patterns: list[str]) -> list[str]:
    return list(dict.fromkeys(patterns))
