"""Sealing an account's credentials and webhook secret, bound to their tenant, account and purpose.

The associated data of each ciphertext is ``billplane/provider-account/v1 | purpose | tenant id |
account id``: a ciphertext moved to another tenant's row, to another account, or from the
credentials column to the webhook secret column does not open. Both ciphertexts of a row are
always sealed under the same key (``credentials_key_id``), so rotation moves them together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

from billplane.observability.redaction import remember_credentials, remember_secrets
from billplane.provider_accounts.models import ProviderAccount
from billplane.secrets.box import Sealed, SecretBox, UnreadableSecretError
from billplane.secrets.keys import key_ring
from billplane.settings import Settings

Purpose = Literal["credentials", "webhook_secret", "previous_webhook_secret"]
_CONTEXT = b"billplane/provider-account/v1"


class CredentialsUnavailableError(Exception):
    """An account's stored secrets cannot be opened (its key was removed from the ring, or the row was tampered)."""

    def __init__(self, account_id: int, reason: str) -> None:
        super().__init__(f"provider account {account_id}: {reason}")
        self.account_id = account_id


@dataclass(frozen=True, slots=True)
class OpenedSecrets:
    """An account's secrets in clear: kept only as long as a call needs them."""

    credentials: dict[str, Any] = field(repr=False)
    webhook_secret: str | None = field(repr=False)
    # Only while still accepted (``previous_webhook_secret_until`` not passed).
    previous_webhook_secret: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return "OpenedSecrets(credentials=***, webhook_secret=***, previous_webhook_secret=***)"


def associated_data(purpose: Purpose, tenant_id: int, account_id: int) -> bytes:
    return b"\x00".join([_CONTEXT, purpose.encode(), str(tenant_id).encode(), str(account_id).encode()])


class AccountVault:
    def __init__(self, box: SecretBox) -> None:
        self.box = box

    def __repr__(self) -> str:
        return f"AccountVault({self.box!r})"

    @classmethod
    def from_settings(cls, settings: Settings) -> AccountVault:
        return cls(SecretBox(key_ring(settings.security.secret_key, settings.security.encryption_keys)))

    @property
    def current_key_id(self) -> str:
        return self.box.current_key_id

    def seal_into(self, row: ProviderAccount, secrets: OpenedSecrets) -> None:
        """Seal both secrets into ``row`` under the current key (``row.id`` and ``tenant_id`` set)."""
        _never_log(secrets)
        sealed = self.box.seal(
            msgspec.json.encode(secrets.credentials), associated_data("credentials", row.tenant_id, row.id)
        )
        row.credentials_ciphertext = sealed.blob
        row.credentials_key_id = sealed.key_id
        row.webhook_secret_ciphertext = None
        if secrets.webhook_secret is not None:
            webhook = self.box.seal(
                secrets.webhook_secret.encode(), associated_data("webhook_secret", row.tenant_id, row.id)
            )
            row.webhook_secret_ciphertext = webhook.blob
        row.previous_webhook_secret_ciphertext = None
        if secrets.previous_webhook_secret is not None:
            previous = self.box.seal(
                secrets.previous_webhook_secret.encode(),
                associated_data("previous_webhook_secret", row.tenant_id, row.id),
            )
            row.previous_webhook_secret_ciphertext = previous.blob
        else:
            row.previous_webhook_secret_until = None

    def open(self, row: ProviderAccount) -> OpenedSecrets:
        if row.credentials_ciphertext is None or row.credentials_key_id is None:
            raise CredentialsUnavailableError(row.id, "the account has no stored credentials (deleted)")
        try:
            raw = self.box.open(
                Sealed(row.credentials_key_id, row.credentials_ciphertext),
                associated_data("credentials", row.tenant_id, row.id),
            )
            webhook_secret = None
            if row.webhook_secret_ciphertext is not None:
                webhook_secret = self.box.open(
                    Sealed(row.credentials_key_id, row.webhook_secret_ciphertext),
                    associated_data("webhook_secret", row.tenant_id, row.id),
                ).decode()
            previous = None
            until = row.previous_webhook_secret_until
            if row.previous_webhook_secret_ciphertext is not None and until is not None and until > datetime.now(UTC):
                previous = self.box.open(
                    Sealed(row.credentials_key_id, row.previous_webhook_secret_ciphertext),
                    associated_data("previous_webhook_secret", row.tenant_id, row.id),
                ).decode()
        except UnreadableSecretError as exc:
            raise CredentialsUnavailableError(row.id, str(exc)) from None
        credentials: dict[str, Any] = msgspec.json.decode(raw)
        opened = OpenedSecrets(credentials=credentials, webhook_secret=webhook_secret, previous_webhook_secret=previous)
        _never_log(opened)
        return opened


def _never_log(secrets: OpenedSecrets) -> None:
    """Secrets this process holds in clear are scrubbed from its logs (billplane.observability.redaction)."""
    remember_credentials(secrets.credentials)
    remember_secrets(secrets.webhook_secret, secrets.previous_webhook_secret)
