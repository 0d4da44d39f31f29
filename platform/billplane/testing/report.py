"""Say so when the kit is enabled but checked nothing: a green run must mean a checked provider."""

from __future__ import annotations

import pytest

from billplane.testing.suite import ConformanceSuite

_COLLECTED = pytest.StashKey[int]()


def pytest_collection_finish(session: pytest.Session) -> None:
    session.config.stash[_COLLECTED] = sum(
        1 for item in session.items if isinstance(item, pytest.Function) and _is_suite(item.cls, ConformanceSuite)
    )


def _is_suite(cls: type | None, suite: type) -> bool:
    return cls is not None and issubclass(cls, suite)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    collected = config.stash.get(_COLLECTED, None)
    if collected == 0:  # None: this process did not collect (an xdist controller)
        terminalreporter.write_line(
            "billplane.testing: no ConformanceSuite subclass was collected, so no provider was checked",
            yellow=True,
        )
    elif collected:
        terminalreporter.write_line(f"billplane.testing: {collected} conformance checks collected")
