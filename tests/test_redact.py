"""Redaction (domain/redact.py): key shapes, the configured keys and their prefixes, credential
header names, and log records redacted as they are made."""

from __future__ import annotations

import logging

import pytest

from sidecar.domain.errors import TurnoutError
from sidecar.domain.model import Secret
from sidecar.domain.outcome import FailureClass, ProviderError
from sidecar.domain.redact import MASK, Redactor, is_credential_header, redact
from sidecar.telemetry import redact_log_records
from tests.planted import assert_no_key

KEY = "sk-planted-REDACT-8f3a9c2e41"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Incorrect API key provided: sk-proj-Ab12Cd34Ef56Gh78.", "sk-proj-Ab12"),
        ("invalid x-api-key: sk-ant-api03-Zx9YwVu8TsRq7Po6", "sk-ant-api03"),
        ("API key not valid: AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUv", "AIzaSyA1b2C3"),
        ("The AWS Access Key Id AKIAIOSFODNN7EXAMPLE does not exist", "AKIAIOSFODNN"),
        ("temporary credentials ASIAJEXAMPLEXEKEYEXA expired", "ASIAJEXAMPLE"),
        ("Invalid API Key gsk_8a7b6c5d4e3f2a1b0c9d", "gsk_8a7b6c5d"),
        ("Incorrect API key provided: xai-AbCdEf0123456789", "xai-AbCdEf01"),
        ("Invalid token hf_AbCdEfGhIjKlMnOp12", "hf_AbCdEfGh"),
        ("Bedrock rejected ABSKQmVkcm9ja0FQSUtleS1wbGFudGVk", "ABSKQmVkcm9j"),
        ("request had Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig", "eyJhbGciOiJI"),
        ("api_key=3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c", "3f9a8b7c6d5e"),
        ("the security token is invalid: FwoGZXIvYXdzEJr//////////wEaDH7x9", "FwoGZXIvYXdz"),
        ('session token "IQoJb3JpZ2luX2VjEPr1234567890abcdef"', "IQoJb3JpZ2lu"),
        ("password: hunter2hunter2hunter2x", "hunter2hunte"),
    ],
)
def test_key_shapes_are_redacted(text, secret):
    clean = Redactor()(text)
    assert MASK in clean
    assert secret not in clean


@pytest.mark.parametrize(
    "text",
    [
        "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens",
        "max_tokens is too large [context_length_exceeded]",
        "invalid x-api-key header",
        "model gpt-4o-mini does not exist [model_not_found]",
        "risk-free task-based routing",
        "Rate limit reached for requests. Please try again in 20ms.",
        "too many tokens for model gpt-4o-2024-08-06 in organization org-abc",
        "request_id req_1234 session expired",
    ],
)
def test_ordinary_provider_messages_are_left_alone(text):
    assert Redactor()(text) == text


def test_a_configured_key_and_its_prefixes_are_redacted():
    redactor = Redactor([KEY])
    for text in (
        f"oops {KEY}.",
        f"Incorrect API key provided: {KEY[:6]}***.",
        f"Incorrect API key provided: {KEY[:10]}****{KEY[-4:]}.",
        f"key={KEY[:12]}",
        f"quoted '{KEY[:4]}…'",
        f"glued x{KEY[:7]}",
    ):
        clean = redactor(text)
        assert_no_key(KEY, clean)
        assert MASK in clean
    assert redactor(f"provided: {KEY[:6]}***.") == f"provided: {MASK}."
    # a 4-5 character prefix inside a word is an ordinary word, not the key
    assert redactor("disk-pool") == "disk-pool"


def test_a_prefix_that_is_a_plain_word_counts_only_before_a_mask():
    """An operator's token "turnout-prod-..." must not blank every "turnout" in the logs."""
    redactor = Redactor(["turnout-prod-0123456789ab"])
    line = "config reloaded: /etc/turnout/turnout.yaml (Turnout 0.1)"
    assert redactor(line) == line
    assert redactor("Incorrect token provided: turnout***") == f"Incorrect token provided: {MASK}"
    assert redactor("Incorrect token provided: turnout-pr…") == f"Incorrect token provided: {MASK}…"


def test_secrets_are_remembered_process_wide():
    odd = "Zq7-unusual-shape-value-123"  # no key shape: only known because a Secret holds it
    assert redact(f"echo {odd[:9]}") == f"echo {odd[:9]}"
    Secret(odd)
    assert redact(f"echo {odd[:9]}...") == f"echo {MASK}..."


def test_errors_redact_their_messages():
    Secret(KEY)
    provider = ProviderError(FailureClass.AUTH, f"Incorrect API key provided: {KEY[:8]}***", status=401)
    turnout = TurnoutError(f"all candidates failed: gpt-4o ({KEY})")
    assert_no_key(KEY, str(provider), provider.message, provider.detail, str(turnout), turnout.message)


@pytest.mark.parametrize(
    "header",
    [
        "Authorization",
        "Authorization ",
        " authorization",
        "Proxy-Authorization",
        "Cookie",
        "Set-Cookie",
        "X-Auth-Token",
        "Ocp-Apim-Subscription-Key",
        "x-amz-security-token",
        "X-Amz-Signature",
        "api-key",
        "X-API-KEY",
        "x-goog-api-key",
        "X-Session-Id",
        "X-Client-Secret",
        "X-Password",
        "X-Credentials",
    ],
)
def test_credential_headers_are_recognised(header):
    assert is_credential_header(header)


@pytest.mark.parametrize(
    "header",
    [
        "anthropic-version",
        "anthropic-beta",
        "OpenAI-Organization",
        "OpenAI-Project",
        "HTTP-Referer",
        "X-Title",
        "User-Agent",
        "X-Request-Id",
        "Accept-Language",
    ],
)
def test_ordinary_headers_are_not(header):
    assert not is_credential_header(header)


def test_log_records_are_redacted_as_they_are_made(caplog):
    Secret(KEY)
    redact_log_records()
    redact_log_records()  # idempotent
    log = logging.getLogger("sidecar.test_redact")
    with caplog.at_level(logging.INFO):
        log.info("provider said %s", f"Incorrect API key provided: {KEY[:7]}***")
        try:
            raise RuntimeError(f"boom {KEY}")
        except RuntimeError:
            log.exception("failed")
    texts = [r.getMessage() for r in caplog.records] + [caplog.text]
    assert_no_key(KEY, *texts)
    assert "provided: ********" in caplog.records[0].getMessage()
