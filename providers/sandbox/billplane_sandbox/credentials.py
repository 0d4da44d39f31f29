"""The sandbox's credentials: an API key in the processor's own format, checked without a network."""

from __future__ import annotations

import msgspec

KEY_PREFIX = "sk_sandbox_"


class SandboxCredentials(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    api_key: str

    def __repr__(self) -> str:  # a secret, even a sandbox one, never reaches a log or a traceback
        return "SandboxCredentials(api_key=***)"


def key_problem(api_key: str) -> str | None:
    """Why the sandbox refuses this key, or None. The message never repeats the key."""
    if not api_key.startswith(KEY_PREFIX) or len(api_key) == len(KEY_PREFIX):
        return f"sandbox API keys start with {KEY_PREFIX!r} followed by any characters (for example sk_sandbox_demo)"
    return None
