"""A `pasar serve` worker dies with the process that started it.

If the parent is killed outright (SIGKILL, the OOM killer), granian or uvicorn never stops its
workers: they are re-parented to init and keep serving with the old settings, beside whatever
starts next on the same port (SO_REUSEPORT). Linux's parent-death signal ends them instead.
`serve` names itself in `PASAR_SERVE_PID`; a worker whose parent already changed by the time it
asks (the parent died while it started) exits at once.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Mapping

SERVE_PID = "PASAR_SERVE_PID"
PR_SET_PDEATHSIG = 1


def die_with_parent(env: Mapping[str, str] = os.environ) -> bool:
    """In a worker of `pasar serve` (on Linux): be killed when the parent dies. True if armed."""
    expected = env.get(SERVE_PID)
    if not expected or not sys.platform.startswith("linux") or int(expected) == os.getpid():
        return False  # not a worker process (one process serving, or another system)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != int(expected):  # the parent died before the signal was armed
        os._exit(1)
    return True
