"""Password hashes: argon2id at argon2-cffi's (RFC 9106 low-memory) cost unless the operator
sets PASAR_ARGON2_*; a hash verifies whatever cost the settings now name."""

from __future__ import annotations

import pytest
from argon2 import extract_parameters
from pasar_core.accounts.passwords import PasswordHashing, hash_password, verify_password
from pasar_core.errors import StartupError
from pasar_core.settings import Settings
from pasar_core.testing import TEST_PASSWORD_HASHING

pytestmark = pytest.mark.anyio


async def test_production_hashes_are_argon2id_at_the_rfc_cost() -> None:
    production = Settings.from_env({}).password_hashing
    hashed = await hash_password("a long password", production)
    assert hashed.startswith("$argon2id$")
    parameters = extract_parameters(hashed)
    assert (parameters.time_cost, parameters.memory_cost, parameters.parallelism) == (3, 65_536, 4)
    assert await verify_password(hashed, "a long password", production)
    assert not await verify_password(hashed, "a wrong password", production)
    assert not await verify_password(None, "a long password", production)  # unknown email


async def test_a_hash_verifies_under_another_cost_and_new_hashes_take_the_configured_one() -> None:
    cheap = await hash_password("a long password", TEST_PASSWORD_HASHING)
    assert extract_parameters(cheap).memory_cost == 8
    assert await verify_password(cheap, "a long password", PasswordHashing())
    costly = await hash_password("a long password")
    assert await verify_password(costly, "a long password", TEST_PASSWORD_HASHING)
    assert not await verify_password(costly, "a long passwords", TEST_PASSWORD_HASHING)


def test_the_cost_comes_from_the_environment_and_nonsense_is_refused() -> None:
    env = {"PASAR_ARGON2_TIME_COST": "4", "PASAR_ARGON2_MEMORY_KIB": "131072",
           "PASAR_ARGON2_PARALLELISM": "2"}  # fmt: skip
    assert Settings.from_env(env).password_hashing == PasswordHashing(4, 131_072, 2)
    for bad in ({"PASAR_ARGON2_TIME_COST": "0"}, {"PASAR_ARGON2_MEMORY_KIB": "lots"},
                {"PASAR_ARGON2_PARALLELISM": "4", "PASAR_ARGON2_MEMORY_KIB": "16"}):  # fmt: skip
        with pytest.raises(StartupError, match="PASAR_ARGON2_"):
            Settings.from_env(bad)
