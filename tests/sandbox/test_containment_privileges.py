"""Privilege containment and secrets: nothing of the worker's reaches the sandbox."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import pytest
from pasar_core.sandbox.client import SandboxClient
from pasar_core.sandbox.workloads import PythonTool

PRIVILEGES_PROBE = """
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000

def call(function, *arguments):
    if function(*arguments) == 0:
        return "allowed"
    return errno.errorcode[ctypes.get_errno()]

def run(args):
    with open("/proc/self/status") as status:
        fields = dict(line.split(":\\t", 1) for line in status.read().splitlines())
    def attempt(action):
        try:
            action()
            return "allowed"
        except OSError as error:
            return errno.errorcode[error.errno]
    return {
        "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups(),
        "CapEff": fields["CapEff"].strip(), "CapPrm": fields["CapPrm"].strip(),
        "CapBnd": fields["CapBnd"].strip(), "NoNewPrivs": fields["NoNewPrivs"].strip(),
        "Seccomp": fields["Seccomp"].strip(),
        "mount": call(libc.mount, b"none", b"/tmp", b"tmpfs", 0, None),
        "unshare user": call(libc.unshare, CLONE_NEWUSER),
        "unshare mount": call(libc.unshare, CLONE_NEWNS),
        "unshare net": call(libc.unshare, CLONE_NEWNET),
        "setuid 0": attempt(lambda: os.setuid(0)),
        "chroot": attempt(lambda: os.chroot("/tmp")),
        "docker socket": os.path.exists("/var/run/docker.sock") or os.path.exists("/run/docker.sock"),
    }
"""

CANARY_PROBE = """
import os
SKIP = ("/proc", "/sys", "/dev")

def run(args):
    found = {"environ": dict(os.environ), "files": {}}
    for pid in ("self", "1"):
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                found[f"proc {pid} environ"] = handle.read().decode(errors="replace")
        except OSError as error:
            found[f"proc {pid} environ"] = str(error)
    for path in args["host_paths"]:
        try:
            with open(path) as handle:
                found["files"][path] = handle.read()
        except OSError as error:
            found["files"][path] = type(error).__name__
    searched = 0
    hits = []
    for directory, subdirs, names in os.walk("/"):
        if directory.startswith(SKIP):
            subdirs[:] = []
            continue
        for name in names:
            path = os.path.join(directory, name)
            try:
                with open(path, "rb") as handle:
                    data = handle.read(4_000_000)
            except OSError:
                continue
            searched += 1
            if args["canary"].encode() in data:
                hits.append(path)
    found["searched_files"] = searched
    found["hits"] = hits
    print("environment as the tool sees it:", found["environ"])
    return found
"""


def test_no_privileges(sandbox: SandboxClient) -> None:
    result = sandbox.call_python(PythonTool("probe:privileges", 1, PRIVILEGES_PROBE), {}).value
    assert result == {
        "uid": 65534, "euid": 65534, "gid": 65534, "groups": [65534],
        "CapEff": "0000000000000000", "CapPrm": "0000000000000000",
        "CapBnd": "0000000000000000", "NoNewPrivs": "1",
        "Seccomp": "2",  # filter mode: Docker's default profile
        "mount": "EPERM", "unshare user": "EPERM", "unshare mount": "EPERM",
        "unshare net": "EPERM", "setuid 0": "EPERM", "chroot": "EPERM",
        "docker socket": False,
    }  # fmt: skip


def test_canary_secrets_of_the_worker_never_appear(
    make_sandbox: object, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    canary = f"pasar-canary-{secrets.token_hex(16)}"
    monkeypatch.setenv("PASAR_CANARY_SECRET", canary)
    monkeypatch.setenv("OPENAI_API_KEY", canary)
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(canary)
    home_file = Path(os.environ.get("HOME", "/root")) / f".pasar-canary-{canary[-8:]}"
    home_file.write_text(canary)
    try:
        sandbox = make_sandbox()  # type: ignore[operator]  # started after the canaries exist
        host_paths = [str(secret_file), str(home_file), "/etc/shadow", "/proc/1/environ"]
        result = sandbox.call_python(
            PythonTool("probe:canary", 1, CANARY_PROBE),
            {"canary": "pasar-canary-", "host_paths": host_paths},
        )
    finally:
        home_file.unlink()

    everything = json.dumps(result.value) + result.stdout + result.stderr
    assert canary not in everything
    assert result.value["hits"] == []
    assert result.value["searched_files"] > 1000  # the whole root filesystem was read
    assert set(result.value["environ"]) <= {
        "PATH",
        "LANG",
        "HOME",
        "HOSTNAME",
        "PYTHONDONTWRITEBYTECODE",
    }
    for path in host_paths[:3]:
        assert result.value["files"][path] == "FileNotFoundError"
