"""Read-your-writes in front of a read replica: who wrote recently, per user.

A replica replays the primary's changes a little later. A user who just created an agent and
reads it back must see it, so for `window_s` after a user's write (a REST write or run, a GraphQL
mutation: the surfaces mark it before and after the request) that user's single-statement reads
go to the primary; everybody else's, and that user's once the window has passed, go to the
replica. Keyed by user, not by request: a client's next request is another request. Kept in this
process: a gateway that keeps a user's requests on one process (or a window longer than the
replica's lag on every process) keeps the promise across processes.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable

MAX_TRACKED = 100_000


class RecentWriters:
    """Users who wrote in the last `window_s` seconds (at most `MAX_TRACKED`, oldest dropped)."""

    def __init__(self, window_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._until: OrderedDict[uuid.UUID, float] = OrderedDict()

    def wrote(self, user_id: uuid.UUID) -> None:
        """`user_id` wrote now: its reads go to the primary for the next `window_s`."""
        if self.window_s <= 0:
            return
        now = self._clock()
        self._until[user_id] = now + self.window_s
        self._until.move_to_end(user_id)
        while self._until and (
            len(self._until) > MAX_TRACKED or next(iter(self._until.values())) <= now
        ):
            self._until.popitem(last=False)

    def wrote_recently(self, user_id: object) -> bool:
        until = self._until.get(user_id)  # type: ignore[call-overload]
        return until is not None and until > self._clock()
