"""Sealed OAuth tokens: bound to their user, provider and kind; tampering is detected."""

from __future__ import annotations

import uuid

import pytest
from pasar_core.crypto import DecryptionFailed, parse_keys
from pasar_core.oauth.tokens import GrantTokens, open_tokens, seal_tokens
from pasar_core.storage.models import AuthToken

KEYRING = parse_keys("k1:" + "A" * 43)


def row(user: uuid.UUID | None = None, provider: str = "google") -> AuthToken:
    grant = AuthToken(user_id=user or uuid.uuid4(), provider=provider)
    seal_tokens(KEYRING, grant, GrantTokens("ya29.access", "1//refresh"))
    return grant


def test_tokens_round_trip_and_are_not_plaintext() -> None:
    grant = row()
    assert grant.key_id == "k1"
    assert b"ya29" not in (grant.access_token_enc or b"")
    assert b"refresh" not in (grant.refresh_token_enc or b"")
    assert open_tokens(KEYRING, grant) == GrantTokens("ya29.access", "1//refresh")
    assert "ya29" not in repr(open_tokens(KEYRING, grant))


def test_tampered_ciphertext_is_rejected() -> None:
    grant = row()
    blob = bytearray(grant.access_token_enc or b"")
    blob[-1] ^= 1
    grant.access_token_enc = bytes(blob)
    with pytest.raises(DecryptionFailed):
        open_tokens(KEYRING, grant)


@pytest.mark.parametrize("swap", ["user", "provider", "kind"])
def test_ciphertext_moved_to_another_row_or_kind_is_rejected(swap: str) -> None:
    alice, bob = row(), row()
    if swap == "user":
        bob.access_token_enc = alice.access_token_enc
    elif swap == "provider":
        bob = row(alice.user_id, provider="github")
        bob.access_token_enc = alice.access_token_enc
    else:
        bob = alice
        bob.access_token_enc, bob.refresh_token_enc = (
            alice.refresh_token_enc,
            alice.access_token_enc,
        )
    with pytest.raises(DecryptionFailed):
        open_tokens(KEYRING, bob)


def test_unknown_key_id_is_rejected() -> None:
    grant = row()
    grant.key_id = "gone"
    with pytest.raises(DecryptionFailed):
        open_tokens(KEYRING, grant)
