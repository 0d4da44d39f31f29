"""A worker process for the crash test: the fake provider over loopback, one account from argv.

    python -m tests.platform.sync_crash_worker '<json config>'

It runs every due job and exits; with BILLPLANE_FAULT set it kills itself at that point instead.
"""

from __future__ import annotations

import asyncio
import json
import sys

from billplane.runtime import Runtime
from billplane.settings import DatabaseSettings, SecuritySettings, Settings
from billplane.sync.options import SyncOptions
from tests.platform.sync_fakes import AccountRow, StaticAccounts, drain, register_fakes


async def main(config: dict[str, object]) -> None:
    settings = Settings(
        database=DatabaseSettings(url=str(config["database_url"]), pool_size=2, max_overflow=2),
        security=SecuritySettings(secret_key="crash-test-secret-key-" + "c" * 32),
    )
    runtime = Runtime.from_settings(settings)
    try:
        register_fakes(runtime.plugins, None)
        account = AccountRow(
            id=int(str(config["account_id"])),
            tenant_id=int(str(config["tenant_id"])),
            tenant_schema=str(config["schema"]),
            server=str(config["server"]),
        )
        runtime.accounts = StaticAccounts(runtime.plugins, [account])
        runtime.sync_options = SyncOptions(lease_seconds=float(str(config["lease_seconds"])), concurrency=1)
        await drain(runtime)
    finally:
        await runtime.close()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
