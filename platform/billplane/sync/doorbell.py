"""Jobs for rows written in a transaction are deferred after it commits, and only if it does.

A job deferred before the commit could run before its row is visible (and find nothing); one
deferred for a transaction that rolled back would look for a row that never existed. So writers
register their jobs on the session, and these listeners hand them to the queue on commit or drop
them on rollback. The hand-off does no I/O (``JobQueue.ring``); if the process dies before the jobs
reach the queue, the sweep finds the rows.

Creates do not come here: their single INSERT statement notifies the workers itself
(``billplane.sync.channel``), so the API process does no queue work for them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from billplane.sync.queue import JobQueue
from billplane.sync.refs import JobRef
from billplane_tenants.database import ScopedSession

_PENDING = "billplane_sync_jobs"


def ring_after_commit(session: AsyncSession, queue: JobQueue, refs: Iterable[JobRef]) -> None:
    pending: list[tuple[JobQueue, list[JobRef]]] = session.info.setdefault(_PENDING, [])
    pending.append((queue, list(refs)))


@event.listens_for(ScopedSession, "after_commit")
def _ring(session: Session) -> None:
    for queue, refs in session.info.pop(_PENDING, []):
        queue.ring(refs)


@event.listens_for(ScopedSession, "after_rollback")
def _forget(session: Session, *_: Any) -> None:
    session.info.pop(_PENDING, None)
