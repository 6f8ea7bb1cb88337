"""Settings from the environment, the secret key file, and access tokens."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import jwt
import pytest
from pasar_core.accounts.access_tokens import TokenSigner
from pasar_core.accounts.api_keys import generate_api_key, hash_api_key
from pasar_core.accounts.credentials import credential_from_headers
from pasar_core.errors import StartupError, Unauthenticated
from pasar_core.settings import Settings

SECRET = "s" * 40


def test_settings_from_env(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"PASAR_DATA_DIR": str(tmp_path), "PASAR_PORT": "9001", "PASAR_PLUGINS": "files, web"}
    )
    assert settings.data_dir == tmp_path
    assert settings.port == 9001
    assert settings.enabled_plugins == ("files", "web")
    assert settings.database_url is None


def test_bad_integer_setting_is_a_startup_error() -> None:
    with pytest.raises(StartupError, match="PASAR_PORT must be an integer"):
        Settings.from_env({"PASAR_PORT": "eighty"})


@pytest.mark.parametrize(
    ("raw", "dev_mode"),
    [("1", True), ("true", True), ("YES", True), (" on ", True), ("0", False), ("", False),
     ("off", False), ("False", False)],
)  # fmt: skip
def test_pasar_dev_turns_on_development_mode(raw: str, dev_mode: bool) -> None:
    assert Settings.from_env({"PASAR_DEV": raw}).dev_mode is dev_mode
    assert Settings.from_env({}).dev_mode is False
    assert Settings().dev_mode is False


def test_bad_pasar_dev_is_a_startup_error() -> None:
    with pytest.raises(StartupError, match="PASAR_DEV"):
        Settings.from_env({"PASAR_DEV": "maybe"})


def test_secret_key_is_generated_once_and_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    key = settings.resolved_secret_key()
    assert len(key) >= 32
    assert settings.resolved_secret_key() == key
    assert (tmp_path / "data" / "secret_key").stat().st_mode & 0o777 == 0o600


def test_short_secret_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StartupError, match="at least 32"):
        Settings(data_dir=tmp_path, secret_key="short").resolved_secret_key()


def test_data_dir_under_root_is_refused_for_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    with pytest.raises(StartupError, match="outside /root"):
        Settings(data_dir=Path("/root/pasar-data")).ensure_data_dir()


def test_access_token_round_trip_and_rejections() -> None:
    signer = TokenSigner(SECRET, ttl_s=60)
    user_id, session_id, organisation_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    token = signer.issue(user_id, "member", session_id, "ana@example.com", organisation_id)
    claims = signer.verify(token.token)
    assert (claims.user_id, claims.role, claims.session_id) == (user_id, "member", session_id)
    assert (claims.organisation_id, claims.operator) == (organisation_id, False)
    with pytest.raises(Unauthenticated, match="invalid"):
        TokenSigner("x" * 40, ttl_s=60).verify(token.token)
    with pytest.raises(Unauthenticated, match="invalid"):
        signer.verify(token.token[:-2] + "xx")
    forged_none = jwt.encode({"sub": str(user_id), "iss": "pasar"}, key="", algorithm="none")
    with pytest.raises(Unauthenticated):
        signer.verify(forged_none)


def test_expired_access_token_says_so() -> None:
    now = int(time.time())
    expired = jwt.encode(
        {
            "iss": "pasar",
            "sub": str(uuid.uuid4()),
            "typ": "access",
            "sid": str(uuid.uuid4()),
            "org": str(uuid.uuid4()),
            "iat": now - 100,
            "exp": now - 10,
        },
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(Unauthenticated, match="expired"):
        TokenSigner(SECRET, ttl_s=60).verify(expired)


def test_access_tokens_without_a_valid_session_id_are_refused() -> None:
    """A token that names no session could not be revoked by logging out, so none is accepted."""
    now = int(time.time())
    claims = {"iss": "pasar", "sub": str(uuid.uuid4()), "typ": "access", "iat": now}
    claims["exp"] = now + 60
    for sid in (None, "not-a-uuid", 42, ["x"]):
        token = jwt.encode(claims | ({} if sid is None else {"sid": sid}), SECRET, "HS256")
        with pytest.raises(Unauthenticated, match="invalid"):
            TokenSigner(SECRET, ttl_s=60).verify(token)


def test_api_keys_are_random_and_hashed() -> None:
    first, second = generate_api_key(), generate_api_key()
    assert first.plaintext != second.plaintext
    assert first.plaintext.startswith(first.prefix + "_")
    assert first.key_hash == hash_api_key(first.plaintext)
    assert first.plaintext not in first.key_hash


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"authorization": "Bearer abc"}, "abc"),
        ({"authorization": "bearer  abc "}, "abc"),
        ({"x-api-key": "psr_1"}, "psr_1"),
    ],
)
def test_credentials_from_headers(headers: dict[str, str], expected: str | None) -> None:
    assert credential_from_headers(headers) == expected


@pytest.mark.parametrize(
    "headers",
    [{"authorization": "Basic abc"}, {"authorization": "Bearer "}, {"x-api-key": "k" * 5000}],
)
def test_malformed_credentials_are_refused(headers: dict[str, str]) -> None:
    with pytest.raises(Unauthenticated):
        credential_from_headers(headers)
