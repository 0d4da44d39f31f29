"""/v1/provider-accounts"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.auth import runtime_of
from billplane.api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_cursor
from billplane.provider_accounts.repository import ProviderAccountRepository
from billplane.provider_accounts.schemas import ProviderAccount, ProviderAccountCreateBody, ProviderAccountUpdateBody
from billplane.provider_accounts.service import ProviderAccountService
from billplane.provider_accounts.vault import AccountVault
from billplane.tenancy.holding import HOLDS_TENANT
from billplane_tenants import KeyPrincipal


async def provide_provider_account_service(
    request: Request[Any, Any, Any],
    tenant_session: NamedDependency[AsyncSession],
    principal: NamedDependency[KeyPrincipal],
) -> ProviderAccountService:
    runtime = runtime_of(request)
    if request.method != "GET":
        # This process mirrors new objects to the default accounts it has cached: forget them as
        # soon as the change commits (other processes within the cache's few seconds).
        tenant_id = principal.tenant_id
        event.listen(
            tenant_session.sync_session,
            "after_commit",
            lambda _session: runtime.default_accounts.invalidate(tenant_id),
            once=True,
        )
    return ProviderAccountService(
        ProviderAccountRepository(tenant_session, principal.tenant_id),
        plugins=runtime.plugins,
        vault=AccountVault.from_settings(runtime.settings),
    )


# Every write holds the tenant's row first (HOLDS_TENANT, ``billplane.tenancy.holding``): an account
# names its tenant, and the tenant's deletion locks that row before it drops the schema.
class ProviderAccountController(Controller):
    path = "/v1/provider-accounts"
    tags = ["provider accounts"]
    security = [{"apiKey": []}]
    dependencies = {"accounts": Provide(provide_provider_account_service)}

    @post("/", operation_id="createProviderAccount", status_code=201, opt=HOLDS_TENANT)
    async def create_provider_account(
        self, data: ProviderAccountCreateBody, accounts: NamedDependency[ProviderAccountService]
    ) -> ProviderAccount:
        """Connect an account at a payment provider. The credentials are validated against the provider's
        schema and checked with the provider before anything is stored (encrypted); they are never returned."""
        return ProviderAccount.of(await accounts.create(data))

    @get("/{account_id:int}", operation_id="getProviderAccount")
    async def get_provider_account(
        self, account_id: FromPath[int], accounts: NamedDependency[ProviderAccountService]
    ) -> ProviderAccount:
        """One account by id; 404 if it does not exist, was deleted, or belongs to another tenant."""
        return ProviderAccount.of(await accounts.get(account_id))

    @patch("/{account_id:int}", operation_id="updateProviderAccount", opt=HOLDS_TENANT)
    async def update_provider_account(
        self,
        account_id: FromPath[int],
        data: ProviderAccountUpdateBody,
        accounts: NamedDependency[ProviderAccountService],
    ) -> ProviderAccount:
        """Change the label, make it the default (the previous default stops being one), or replace the
        credentials (validated and checked again) or the webhook secret (`null` removes it)."""
        return ProviderAccount.of(await accounts.update(account_id, data))

    @delete("/{account_id:int}", operation_id="deleteProviderAccount", status_code=204, opt=HOLDS_TENANT)
    async def delete_provider_account(
        self, account_id: FromPath[int], accounts: NamedDependency[ProviderAccountService]
    ) -> None:
        """Delete an account and erase its stored secrets: 409 while live subscriptions use it."""
        await accounts.delete(account_id)

    @post("/{account_id:int}/check", operation_id="checkProviderAccount", status_code=200, opt=HOLDS_TENANT)
    async def check_provider_account(
        self, account_id: FromPath[int], accounts: NamedDependency[ProviderAccountService]
    ) -> ProviderAccount:
        """Check the stored credentials with the provider now. The outcome is recorded in `last_checked_at`
        and `last_check_error` (null when accepted), and the account returned: a refusal is still a 200.
        503 when the provider cannot answer now (nothing recorded)."""
        return ProviderAccount.of(await accounts.check(account_id))

    @get("/", operation_id="listProviderAccounts")
    async def list_provider_accounts(
        self,
        *,
        accounts: NamedDependency[ProviderAccountService],
        provider: Annotated[str | None, QueryParameter(description="Only this provider's accounts.")] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[ProviderAccount]:
        """List the tenant's provider accounts, oldest first."""
        rows, next_cursor = await accounts.page(provider=provider, after=decode_cursor(cursor), limit=limit)
        return Page(data=[ProviderAccount.of(row) for row in rows], next_cursor=next_cursor)
