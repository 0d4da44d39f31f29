"""Sealing an endpoint's signing secret, bound to its tenant and endpoint.

The associated data is ``billplane/webhook-endpoint/v1 | tenant id | endpoint id``: a ciphertext
copied to another endpoint's row, or to another tenant's schema, does not open.
"""

from __future__ import annotations

from billplane.events.models import WebhookEndpoint
from billplane.observability.redaction import remember_secrets
from billplane.secrets.box import Sealed, SecretBox, UnreadableSecretError
from billplane.secrets.keys import key_ring
from billplane.settings import Settings

_CONTEXT = b"billplane/webhook-endpoint/v1"


class SecretUnavailableError(Exception):
    """The endpoint's secret cannot be opened (its key left the ring, or the row was tampered with)."""


def associated_data(tenant_id: int, endpoint_id: int) -> bytes:
    return b"\x00".join([_CONTEXT, str(tenant_id).encode(), str(endpoint_id).encode()])


class EndpointVault:
    def __init__(self, box: SecretBox) -> None:
        self.box = box

    def __repr__(self) -> str:
        return f"EndpointVault({self.box!r})"

    @classmethod
    def from_settings(cls, settings: Settings) -> EndpointVault:
        return cls(SecretBox(key_ring(settings.security.secret_key, settings.security.encryption_keys)))

    def seal_into(self, row: WebhookEndpoint, tenant_id: int, secret: str) -> None:
        """Seal ``secret`` into ``row`` (its id already assigned) under the current key."""
        remember_secrets(secret)  # scrubbed from this process's logs (billplane.observability.redaction)
        sealed = self.box.seal(secret.encode(), associated_data(tenant_id, row.id))
        row.secret_ciphertext = sealed.blob
        row.secret_key_id = sealed.key_id

    def open(self, tenant_id: int, endpoint_id: int, key_id: str, ciphertext: bytes) -> str:
        try:
            secret = self.box.open(Sealed(key_id, ciphertext), associated_data(tenant_id, endpoint_id)).decode()
        except UnreadableSecretError as exc:
            raise SecretUnavailableError(f"webhook endpoint {endpoint_id}: {exc}") from None
        remember_secrets(secret)
        return secret
