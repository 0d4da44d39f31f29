"""Where several server processes keep their metrics (``billplane run --workers N``)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

METRICS_DIR_ENV = "BILLPLANE_METRICS_DIR"
PROMETHEUS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_metrics_dir(configured: str | None, workers: int) -> Path | None:
    """The directory the server processes about to start will share, emptied; None: one process.

    Called by `billplane run` before it starts its server processes, which import
    prometheus_client afresh and pick the directory up from the environment. Files left by an
    earlier run are removed: their counters belong to processes that no longer exist, and a
    restart resets counters as Prometheus expects.
    """
    if configured is None and workers <= 1:
        return None
    directory = Path(configured) if configured else Path(tempfile.mkdtemp(prefix="billplane-metrics-"))
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[METRICS_DIR_ENV] = os.environ[PROMETHEUS_DIR_ENV] = str(directory)
    return directory


def leave_metrics_dir() -> None:
    """For `billplane worker`: never write into the API's directory (it serves its own port)."""
    os.environ.pop(METRICS_DIR_ENV, None)
    os.environ.pop(PROMETHEUS_DIR_ENV, None)
