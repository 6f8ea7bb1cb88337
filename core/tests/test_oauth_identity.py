"""The account that consented, read from the ID token of a code exchange: only a token meant for
this client, from the provider's issuer, not expired."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from pasar_core.errors import ConsentCodeRejected
from pasar_core.oauth.clients import ProviderClient
from pasar_core.oauth.identity import ProviderAccount, consenting_account
from pasar_core.specs import AuthProviderSpec

ISSUER = "https://id.acme.test"
SPEC = AuthProviderSpec(
    id="acme", title="Acme", authorize_url="https://acme.test/a", token_url="https://acme.test/t",
    scopes=(), identity_scopes=("openid", "email"), id_token_issuers=(ISSUER,),
)  # fmt: skip
CLIENT = ProviderClient(
    spec=SPEC, client_id="pasar-client", client_secret="s", redirect_uri="http://p/auth/acme/callback",
    start_url="http://p/auth/acme/start", authorize_url=SPEC.authorize_url,
    token_url=SPEC.token_url, revoke_url=None, api_base_url=None,
)  # fmt: skip


def id_token(**changes: Any) -> str:
    claims = {"iss": ISSUER, "aud": "pasar-client", "sub": "1234", "email": "ada@acme.test",
              "exp": int(time.time()) + 600, **changes}  # fmt: skip
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, "k" * 32)


def test_the_account_of_a_token_meant_for_this_client() -> None:
    account = consenting_account(CLIENT, {"id_token": id_token()})
    assert account == ProviderAccount("1234", "ada@acme.test")
    listed = consenting_account(CLIENT, {"id_token": id_token(aud=["other", "pasar-client"])})
    assert listed == ProviderAccount("1234", "ada@acme.test")
    assert consenting_account(CLIENT, {"id_token": id_token(email=None)}) == ProviderAccount(
        "1234", None
    )


def test_no_id_token_means_no_account() -> None:
    assert consenting_account(CLIENT, {"access_token": "x"}) is None
    assert consenting_account(CLIENT, {"id_token": ""}) is None


@pytest.mark.parametrize(
    "token",
    [
        id_token(aud="another-client"),
        id_token(iss="https://evil.test"),
        id_token(exp=int(time.time()) - 3600),
        id_token(sub=None),
        id_token(sub=""),
        "not.a.jwt",
        "garbage",
    ],
)
def test_a_token_not_meant_for_this_client_is_refused(token: str) -> None:
    with pytest.raises(ConsentCodeRejected) as caught:
        consenting_account(CLIENT, {"id_token": token})
    assert caught.value.code == "CONSENT_CODE_REJECTED"
