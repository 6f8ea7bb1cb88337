"""Key files made by processes racing on a fresh data dir: every process ends with the same
complete key (never an empty secret key, a half-written key file, or FileExistsError), and a
damaged file is refused at start-up rather than used."""

from __future__ import annotations

import multiprocessing
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest
from pasar_core.errors import StartupError
from pasar_core.settings import Settings

PROCESSES = 4
ROUNDS = 40


def resolve_keys(data_dir: str, start: Barrier, results: multiprocessing.Queue[object]) -> None:
    settings = Settings.from_env({"PASAR_DATA_DIR": data_dir})
    start.wait()
    try:
        secret = settings.resolved_secret_key()
        keyring = settings.keyring()
        sealed = keyring.seal(b"x", b"row")
        results.put((secret, keyring.active_key_id, sealed.key_id))
    except Exception as error:  # reported, so the parent's assertion names it
        results.put(repr(error))


def test_processes_racing_on_a_fresh_data_dir_agree_on_both_keys(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    for round_number in range(ROUNDS):
        data_dir = tmp_path / f"round-{round_number}"
        start = context.Barrier(PROCESSES)
        results: multiprocessing.Queue[object] = context.Queue()
        processes = [
            context.Process(target=resolve_keys, args=(str(data_dir), start, results))
            for _ in range(PROCESSES)
        ]
        for process in processes:
            process.start()
        outcomes = [results.get(timeout=60) for _ in processes]
        for process in processes:
            process.join(timeout=60)
        assert all(isinstance(outcome, tuple) for outcome in outcomes), outcomes
        assert len(set(outcomes)) == 1, outcomes
        first = outcomes[0]
        assert isinstance(first, tuple)
        secret, active, _ = first
        assert len(secret) >= 32
        assert active
        assert sorted(path.name for path in data_dir.iterdir()) == [
            "encryption_keys.json",
            "secret_key",
        ]  # no temporary file left behind


@pytest.mark.parametrize("contents", ["", "short"])
def test_an_empty_or_short_secret_key_file_is_refused(tmp_path: Path, contents: str) -> None:
    (tmp_path / "secret_key").write_text(contents)
    settings = Settings.from_env({"PASAR_DATA_DIR": str(tmp_path)})
    with pytest.raises(StartupError, match="shorter than 32"):
        settings.resolved_secret_key()


@pytest.mark.parametrize("contents", ["", '{"active": "k1"', '{"active": "k1", "keys": {}}'])
def test_a_damaged_encryption_key_file_is_refused(tmp_path: Path, contents: str) -> None:
    (tmp_path / "encryption_keys.json").write_text(contents)
    settings = Settings.from_env({"PASAR_DATA_DIR": str(tmp_path)})
    with pytest.raises(StartupError):
        settings.keyring()
