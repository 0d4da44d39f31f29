"""Re-sealing every account's secrets under the current key (``billplane secrets rotate``).

Batches of accounts sealed under any other key are locked, opened, sealed again and committed, one
transaction per batch: a crash keeps what committed and a rerun continues from there, and an
API write to an account waits for its batch instead of being overwritten. Accounts whose secrets
cannot be opened (their key is not configured) are reported and left as they are.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from billplane.provider_accounts.repository import AccountLookup
from billplane.provider_accounts.vault import AccountVault, CredentialsUnavailableError
from billplane_tenants import Database

BATCH_SIZE = 100


@dataclass(slots=True)
class RotationReport:
    current_key_id: str
    # Accounts re-sealed, by the key that had sealed them.
    rotated: Counter[str] = field(default_factory=Counter)
    # Accounts already sealed under the current key when the run began.
    already_current: int = 0
    # (account id, reason) for each account that could not be opened.
    failed: list[tuple[int, str]] = field(default_factory=list)


async def rotate(
    database: Database,
    vault: AccountVault,
    *,
    batch_size: int = BATCH_SIZE,
    on_batch: Callable[[int], None] | None = None,
) -> RotationReport:
    report = RotationReport(vault.current_key_id)
    async with database.control_session() as session:
        report.already_current = (await AccountLookup(session).count_by_key()).get(vault.current_key_id, 0)
    after = 0
    while True:
        async with database.control_session() as session:
            lookup = AccountLookup(session)
            batch = await lookup.sealed_under_other_keys(vault.current_key_id, after=after, limit=batch_size)
            for account in batch:
                old_key_id = str(account.credentials_key_id)
                try:
                    vault.seal_into(account, vault.open(account))
                except CredentialsUnavailableError as exc:
                    report.failed.append((account.id, str(exc)))
                    continue
                report.rotated[old_key_id] += 1
            await session.flush()
        if on_batch is not None and batch:
            on_batch(len(batch))
        if len(batch) < batch_size:
            break
        after = batch[-1].id
    return report
