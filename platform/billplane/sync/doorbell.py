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

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from billplane.sync.queue import JobQueue
from billplane.sync.refs import JobRef
from billplane_tenants.database import ScopedSession

_PENDING = "billplane_sync_jobs"


def ring_after_commit(session: AsyncSession, queue: JobQueue, refs: Iterable[JobRef]) -> None:
    pending: list[tuple[JobQueue, list[JobRef]]] = session.info.setdefault(_PENDING, [])
    pending.append((queue, list(refs)))


# SQLAlchemy sends after_commit and after_rollback for savepoints too. Released, a savepoint's rows
# are not committed yet: a job rung then could run before they are visible, find nothing and end.
# Rolled back, it must not drop what the transaction rang before it (creating a subscription charges
# its first invoice in a savepoint). A job rung inside a savepoint that rolled back stays: it finds
# no row and ends, which costs a query, never a change.


@event.listens_for(ScopedSession, "after_commit")
def _ring(session: Session) -> None:
    if session.in_nested_transaction():
        return
    for queue, refs in session.info.pop(_PENDING, []):
        queue.ring(refs)


@event.listens_for(ScopedSession, "after_transaction_end")
def _forget(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the whole transaction ended without a commit ringing its jobs
        session.info.pop(_PENDING, None)
