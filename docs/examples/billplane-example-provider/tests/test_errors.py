"""Example Pay's own checks beyond the kit: how HTTP failures map to billplane's errors."""

from __future__ import annotations

import pytest
from billplane.plugins import AdapterContext, RetryableProviderError

from billplane_example.adapter import ExampleCredentials, ExamplePayAdapter


@pytest.mark.anyio
async def test_an_unreachable_api_is_retryable() -> None:
    context = AdapterContext(
        tenant_id=1,
        account_id=1,
        mode="test",
        credentials=ExampleCredentials(api_token="t"),
        options={"api_base": "http://127.0.0.1:9"},  # nothing listens on the discard port
    )
    with pytest.raises(RetryableProviderError, match="unreachable"):
        await ExamplePayAdapter(context, ExampleCredentials(api_token="t")).check_credentials()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
