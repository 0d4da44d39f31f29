"""Every outbox kind's operation, gathered from the modules that define them."""

from __future__ import annotations

from billplane.sync import operations, subscription_operations
from billplane.sync.operations import Operation

OPERATIONS: dict[str, Operation] = {**operations.OPERATIONS, **subscription_operations.OPERATIONS}
