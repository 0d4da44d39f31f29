"""The job queue: procrastinate on billplane's own PostgreSQL, in the ``billplane_jobs`` schema.

Jobs only say "look at outbox row N of schema S" (or "at stored event N"): the outbox is the truth,
so a lost, duplicated or late job costs a little time, never correctness. Rows queued by a create
are announced with NOTIFY, and a worker's outbox listener defers their jobs (``defer_missing``).
After any other transaction that wrote outbox rows (or stored provider events) commits, their
jobs are handed to ``ring`` (no I/O in the request) and deferred in batches by a background
task. The periodic sweep finds any row whose job was lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    import procrastinate

from billplane.sync.refs import EventRef, JobRef, OutboxRef

JOBS_SCHEMA = "billplane_jobs"  # created by control_0004
SYNC_QUEUE = "provider_sync"
PERFORM_OUTBOX = "billplane.perform_outbox"
APPLY_EVENT = "billplane.apply_event"
SWEEP = "billplane.sweep"
BILLING_RUN = "billplane.billing_run"
_BATCH = 500
# Queueing locks of jobs waiting to run (procrastinate keeps them unique among 'todo' jobs, by index).
_WAITING_LOCKS = "SELECT queueing_lock FROM procrastinate_jobs WHERE status = 'todo' AND queueing_lock = ANY(%(locks)s)"

logger = logging.getLogger("billplane.sync")


def procrastinate_conninfo(database_url: str) -> str:
    """libpq's spelling of billplane's SQLAlchemy URL (psycopg, not asyncpg, talks to the queue)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _task_name(ref: JobRef) -> str:
    return PERFORM_OUTBOX if isinstance(ref, OutboxRef) else APPLY_EVENT


class JobQueue:
    """One process's handle on the queue: deferring jobs, and the procrastinate App workers run."""

    def __init__(self, database_url: str, *, max_connections: int = 4) -> None:
        self._database_url = database_url
        self._max_connections = max_connections
        self._opened = False
        self._open_lock = asyncio.Lock()
        self._waiting: deque[JobRef] = deque()
        self._drainer: asyncio.Task[None] | None = None

    @cached_property
    def app(self) -> procrastinate.App:
        """The procrastinate App, built on first use: commands that never queue (migrations, the
        CLI's tenant admin) do not pay for importing procrastinate and psycopg at start-up."""
        import procrastinate  # noqa: PLC0415 - see the docstring

        from billplane.sync.jobs import register_tasks  # noqa: PLC0415 - the tasks import this module

        connector = procrastinate.PsycopgConnector(
            conninfo=procrastinate_conninfo(self._database_url),
            # The queue's objects live in their own schema; this search_path is session-wide on
            # the queue's own connections, which never touch tenant data.
            kwargs={"options": f"-c search_path={JOBS_SCHEMA}", "application_name": "billplane-jobs"},
            min_size=1,
            max_size=self._max_connections,
        )
        app = procrastinate.App(connector=connector)
        register_tasks(app)
        return app

    @property
    def opened(self) -> bool:
        """Whether this process has opened the queue's connections (an API that only creates never does)."""
        return self._opened

    async def open(self) -> None:
        async with self._open_lock:
            if not self._opened:
                try:
                    await self.app.open_async()
                except BaseException:
                    # Cancelled (a shutdown while the in-process worker starts) or failed mid-way,
                    # the pool's tasks are left running: nothing would close them, and the event
                    # loop waits for them for ever at exit (a server that could not bind hung).
                    await asyncio.shield(self.app.close_async())
                    raise
                self._opened = True

    async def close(self) -> None:
        await self.flush()
        if self._opened:
            await self.app.close_async()
            self._opened = False

    def ring(self, refs: Iterable[JobRef]) -> None:
        """Queue jobs for deferral soon (after a commit): no I/O here, safe in any callback."""
        self._waiting.extend(refs)
        if self._waiting and (self._drainer is None or self._drainer.done()):
            try:
                self._drainer = asyncio.get_running_loop().create_task(self._drain())
            except RuntimeError:  # no loop (a synchronous caller): the sweep will find the rows
                self._waiting.clear()

    async def flush(self) -> None:
        """Wait until every rung job is deferred (tests, shutdown)."""
        while self._drainer is not None and not self._drainer.done():
            await asyncio.shield(self._drainer)

    async def _drain(self) -> None:
        while self._waiting:
            batch = [self._waiting.popleft() for _ in range(min(_BATCH, len(self._waiting)))]
            try:
                await self.open()
                await self._defer_batch(batch)
            except Exception:  # the rows are committed: the sweep defers them later
                logger.exception("could not defer %d sync jobs; the sweep will retry them", len(batch))

    async def _defer_batch(self, batch: list[JobRef]) -> None:
        by_task: dict[str, list[dict[str, Any]]] = {}
        for ref in batch:
            by_task.setdefault(_task_name(ref), []).append(ref.job_args())
        for name, arguments in by_task.items():
            await self.app.tasks[name].batch_defer_async(*arguments)

    async def defer(self, ref: JobRef, *, at: datetime | None = None, lock: bool = True) -> bool:
        """Defer one job; with ``lock``, not if one for the same row is already waiting (False then).

        Scheduled retries go without the lock: a job waiting for a later time must not stop the
        sweep from queueing the row once something (a manual sync) made it due sooner.
        """
        from procrastinate.exceptions import AlreadyEnqueued  # noqa: PLC0415 - procrastinate loads lazily

        await self.open()
        lock_name = ref.queueing_lock if lock else None
        deferrer = self.app.tasks[_task_name(ref)].configure(queueing_lock=lock_name, schedule_at=at)
        try:
            await deferrer.defer_async(**ref.job_args())
        except AlreadyEnqueued:
            return False
        return True

    async def defer_periodic_now(self, task_name: str) -> bool:
        """Queue a run of a periodic task (a locked one: ``queueing_lock`` = its name) now, unless
        one is waiting already (False then): that one will do the same work."""
        from procrastinate.exceptions import AlreadyEnqueued  # noqa: PLC0415 - procrastinate loads lazily

        await self.open()
        deferrer = self.app.tasks[task_name].configure(queueing_lock=task_name)
        try:
            await deferrer.defer_async(timestamp=int(time.time()))
        except AlreadyEnqueued:
            return False
        return True

    async def defer_missing(self, refs: Sequence[JobRef]) -> int:
        """``defer`` (with the lock) each ref that has no job waiting; returns how many were deferred.

        One query finds the refs that already have a waiting job, so a sweep over a backlog does
        not pay a failed insert for each of them.
        """
        if not refs:
            return 0
        await self.open()
        locks = [ref.queueing_lock for ref in refs]
        waiting = {
            row["queueing_lock"]
            for row in await self.app.connector.execute_query_all_async(_WAITING_LOCKS, locks=locks)
        }
        deferred = 0
        for ref in refs:
            if ref.queueing_lock not in waiting:
                deferred += await self.defer(ref)
        return deferred


__all__ = ["APPLY_EVENT", "JOBS_SCHEMA", "PERFORM_OUTBOX", "SWEEP", "SYNC_QUEUE", "EventRef", "JobQueue", "OutboxRef"]
