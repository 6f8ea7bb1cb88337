"""The session audit's own check must fail for a container that is not hardened."""

from __future__ import annotations

from pasar_core.testing import DockerForTests

from tests.sandbox.conftest import hardening_problems


def test_the_audit_flags_an_unhardened_container(pasar_docker: DockerForTests) -> None:
    client = pasar_docker.client()
    try:
        created = client.api.create_container(pasar_docker.image, labels={"pasar.audit": "probe"})
        try:
            problems = hardening_problems(client.api.inspect_container(created["Id"]))
        finally:
            client.api.remove_container(created["Id"], force=True)
    finally:
        client.close()
    for expected in ("root filesystem is writable", "CapDrop None", "NetworkMode default",
                     "no pids limit", "label pasar.tool.id missing"):  # fmt: skip
        assert any(p.startswith(expected) for p in problems), (expected, problems)
