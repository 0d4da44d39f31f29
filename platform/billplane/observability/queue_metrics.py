"""Job queue depth and age, read from procrastinate's tables when Prometheus scrapes.

Read at scrape time rather than counted as jobs come and go: the queue is shared by every
process, and only the database knows its true depth. Two aggregate queries over
``procrastinate_jobs`` (one row per job still in the table: waiting, running, failed or
cancelled; successful jobs are deleted), bounded by a statement timeout so a slow database
makes the scrape report the failure instead of hanging it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import text

from billplane_tenants import Database

logger = logging.getLogger("billplane.metrics")
_TIMEOUT = text("SET LOCAL statement_timeout = '2s'")
_DEPTH = text(
    "SELECT queue_name, status::text, count(*) FROM billplane_jobs.procrastinate_jobs GROUP BY queue_name, status"
)
# A waiting job's age counts from when it became due: its schedule, else when it was deferred.
# Jobs scheduled for later are not late, so they are left out.
_OLDEST = text(
    "SELECT j.queue_name, extract(epoch FROM now() - min(coalesce(j.scheduled_at, e.at)))::float8 "
    "FROM billplane_jobs.procrastinate_jobs j "
    "LEFT JOIN billplane_jobs.procrastinate_events e ON e.job_id = j.id AND e.type = 'deferred' "
    "WHERE j.status = 'todo' AND (j.scheduled_at IS NULL OR j.scheduled_at <= now()) "
    "GROUP BY j.queue_name"
)


@dataclass(slots=True)
class QueueSnapshot(Collector):
    depth: dict[tuple[str, str], int] = field(default_factory=dict)
    oldest_seconds: dict[str, float] = field(default_factory=dict)
    ok: bool = True

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "billplane_job_queue_jobs",
            "Jobs in the queue by queue and status (todo: waiting, doing: running, failed, cancelled, ...).",
            labels=["queue", "status"],
        )
        for (queue, status), count in sorted(self.depth.items()):
            depth.add_metric([queue, status], count)
        oldest = GaugeMetricFamily(
            "billplane_job_queue_oldest_age_seconds",
            "Age of the oldest job waiting to run and due now, by queue (0 when none waits).",
            labels=["queue"],
        )
        for queue, seconds in sorted(self.oldest_seconds.items()):
            oldest.add_metric([queue], max(seconds, 0.0))
        up = GaugeMetricFamily("billplane_job_queue_scrape_ok", "1 if the queue could be read for this scrape.")
        up.add_metric([], 1.0 if self.ok else 0.0)
        yield from (depth, oldest, up)


async def queue_snapshot(database: Database) -> QueueSnapshot:
    snapshot = QueueSnapshot()
    try:
        async with database.transaction() as connection:
            await connection.execute(_TIMEOUT)
            for queue, status, count in (await connection.execute(_DEPTH)).all():
                snapshot.depth[(queue, status)] = int(count)
            for queue, seconds in (await connection.execute(_OLDEST)).all():
                snapshot.oldest_seconds[queue] = float(seconds or 0.0)
    except Exception as exc:  # the scrape still answers, with the process's own metrics
        logger.warning("metrics: could not read the job queue: %s", type(exc).__name__)
        snapshot.ok = False
    for queue, _ in list(snapshot.depth):
        snapshot.oldest_seconds.setdefault(queue, 0.0)
    return snapshot
