"""Which process owns a sandbox container, so a starting worker can tell orphans from live ones.

A container's owner label is `<pid>:<start time>` of the worker process (start time in clock
ticks since boot, from /proc): a recycled pid does not pass for its earlier owner.
"""

from __future__ import annotations

import os
from pathlib import Path


def process_identity(pid: int) -> str | None:
    """`<pid>:<start time>` of a live process on this host, None when there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # after "pid (comm)": state is field 3
    if len(fields) < 20 or fields[0] == "Z":
        return None
    return f"{pid}:{fields[19]}"  # field 22: starttime


def this_process() -> str:
    identity = process_identity(os.getpid())
    return identity or f"{os.getpid()}:?"


def owner_alive(owner: str | None) -> bool:
    if not owner or ":" not in owner:
        return False
    pid, _, _ = owner.partition(":")
    if not pid.isdigit():
        return False
    return process_identity(int(pid)) == owner
