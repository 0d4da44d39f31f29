"""The scrubbing net: known secret values and secret shapes become [redacted]; other text stays."""

from __future__ import annotations

from billplane.observability.redaction import REDACTED, Redactor, redact

KEY = "bpk_AbCdEfGh" + "x1y2z3" * 7


def test_known_values_are_replaced_whole_and_short_values_are_not_remembered() -> None:
    redactor = Redactor()
    redactor.remember(["paypal-client-secret-123", "paypal-client-secret-123456", "eu", None])
    text = redactor.redact("secret paypal-client-secret-123456 then paypal-client-secret-123 in eu")
    assert text == f"secret {REDACTED} then {REDACTED} in eu"


def test_shapes_of_secrets_are_replaced_where_the_value_was_never_seen() -> None:
    cases = {
        f"key {KEY} used": f"key bpk_AbCdEfGh{REDACTED} used",
        "Authorization: Bearer abc.def-ghi": f"Authorization: Bearer {REDACTED}",
        "{'authorization': 'Basic dXNlcjpwYXNzd29yZA=='}": f"{{'authorization': 'Basic {REDACTED}'}}",
        "{'authorization': 'token123456'}": f"{{'authorization': '{REDACTED}'}}",
        "signing with whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw": f"signing with {REDACTED}",
        "stripe sk_test_51Habc123def456": f"stripe {REDACTED}",
        "postgresql+asyncpg://billplane:s3cr3t-pw@db:5432/x": f"postgresql+asyncpg://billplane:{REDACTED}@db:5432/x",
    }
    for given, expected in cases.items():
        assert redact(given) == expected, given


def test_ordinary_text_is_left_alone() -> None:
    text = "GET /v1/customers/{customer_id} 200 task_name=billplane.perform_outbox prefix bpk_cHGcCAzx"
    assert redact(text) == text


def test_the_remembered_set_is_bounded() -> None:
    redactor = Redactor()
    redactor.remember(f"secret-number-{n:06d}" for n in range(10_050))
    assert redactor.redact("secret-number-000000") == "secret-number-000000"  # the oldest was dropped
    assert redactor.redact("secret-number-010049") == REDACTED
