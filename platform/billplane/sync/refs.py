"""What a job names: one outbox row or one stored provider event, in one tenant's schema."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class OutboxRef:
    tenant_id: int
    schema: str
    outbox_id: int

    def job_args(self) -> dict[str, Any]:
        return {"tenant_id": self.tenant_id, "schema": self.schema, "outbox_id": self.outbox_id}

    @property
    def queueing_lock(self) -> str:
        return f"outbox:{self.tenant_id}:{self.schema}:{self.outbox_id}"


@dataclass(frozen=True, slots=True)
class EventRef:
    tenant_id: int
    schema: str
    event_id: int  # the provider_events row id, not the provider's event id

    def job_args(self) -> dict[str, Any]:
        return {"tenant_id": self.tenant_id, "schema": self.schema, "event_id": self.event_id}

    @property
    def queueing_lock(self) -> str:
        return f"event:{self.tenant_id}:{self.schema}:{self.event_id}"


JobRef = OutboxRef | EventRef


def idempotency_key(tenant_id: int, outbox_id: int, step: str | None = None) -> str:
    """The provider idempotency key of one outbox row (and of a preparatory step of it).

    Derived from the row alone, so every retry of the row, by any worker, after any crash, sends
    the same key and the provider returns the object the first attempt created.
    """
    base = f"billplane-{tenant_id}-{outbox_id}"
    return base if step is None else f"{base}-{step}"
