"""Fault injection for crash tests: kill this process at a named point of the sync protocol.

``BILLPLANE_FAULT=<point>`` makes the process SIGKILL itself when it reaches ``<point>``: no
cleanup, no rollback message, exactly what a power cut or an OOM kill leaves behind. Unset (always,
outside the crash tests) a checkpoint costs one environment lookup.
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "BILLPLANE_FAULT"
AFTER_PROVIDER_CALL = "sync.after_provider_call"


def checkpoint(point: str) -> None:
    if os.environ.get(FAULT_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)
