"""Read-your-writes bookkeeping: a user who wrote reads from the primary for the window."""

from __future__ import annotations

import uuid

from pasar_core.settings import Settings
from pasar_core.storage import recent_writers
from pasar_core.storage.recent_writers import RecentWriters


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_a_writer_is_recent_for_the_window_only() -> None:
    clock = Clock()
    writers = RecentWriters(5.0, clock=clock)
    user, other = uuid.uuid4(), uuid.uuid4()
    writers.wrote(user)
    assert writers.wrote_recently(user)
    assert not writers.wrote_recently(other)
    assert not writers.wrote_recently(None)
    clock.now += 4.9
    assert writers.wrote_recently(user)
    writers.wrote(user)  # a new write restarts the window
    clock.now += 4.9
    assert writers.wrote_recently(user)
    clock.now += 0.2
    assert not writers.wrote_recently(user)


def test_expired_and_excess_writers_are_forgotten(monkeypatch) -> None:
    monkeypatch.setattr(recent_writers, "MAX_TRACKED", 3)
    clock = Clock()
    writers = RecentWriters(5.0, clock=clock)
    users = [uuid.uuid4() for _ in range(5)]
    for user in users:
        writers.wrote(user)
    assert [writers.wrote_recently(u) for u in users] == [False, False, True, True, True]
    clock.now += 10
    writers.wrote(users[0])
    assert len(writers._until) == 1


def test_no_window_tracks_nobody() -> None:
    writers = RecentWriters(0)
    user = uuid.uuid4()
    writers.wrote(user)
    assert not writers.wrote_recently(user)


def test_database_settings_from_the_environment() -> None:
    settings = Settings.from_env({
        "DATABASE_URL": "postgresql://u:p@bouncer:6432/pasar",
        "DATABASE_DIRECT_URL": "postgresql://u:p@primary:5432/pasar",
        "DATABASE_READ_URL": "postgresql://u:p@replica:5432/pasar",
        "PASAR_DB_STATEMENT_CACHE_SIZE": "0",
        "PASAR_DB_READ_YOUR_WRITES_S": "2.5",
    })  # fmt: skip
    assert settings.database_direct_url == "postgresql://u:p@primary:5432/pasar"
    assert settings.database_read_url == "postgresql://u:p@replica:5432/pasar"
    assert settings.db_statement_cache_size == 0
    assert settings.db_read_your_writes_s == 2.5
    defaults = Settings.from_env({})
    assert defaults.database_direct_url is None
    assert defaults.database_read_url is None
    assert defaults.db_statement_cache_size == 100
