"""Names of the periodic tasks of dunning, payment reconciliation and test clocks (registered in
``billplane.sync.jobs``)."""

from __future__ import annotations

DUNNING_RUN = "billplane.dunning_run"
ADVANCE_CLOCKS = "billplane.advance_test_clocks"
RECONCILE_PAYMENTS = "billplane.reconcile_payments"
