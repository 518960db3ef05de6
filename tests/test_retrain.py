"""The retrain lock (across processes) and the whole pipeline with its exit codes."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import pytest

from sybilgnn.cli import main
from sybilgnn.retrain import EXIT_LOCKED, LockedError, retrain_lock

REPO = Path(__file__).resolve().parents[1]


def _hold_lock(path: str, ready: mp.synchronize.Event, release: mp.synchronize.Event) -> None:
    with retrain_lock(path):
        ready.set()
        release.wait(30)


def test_second_acquirer_fails_fast_while_another_process_holds_the_lock(tmp_path: Path) -> None:
    lock = tmp_path / "mlruns" / "retrain.lock"
    ctx = mp.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(lock), ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        started = time.monotonic()
        with pytest.raises(LockedError) as err:
            with retrain_lock(lock):
                pytest.fail("entered a held lock")
        assert time.monotonic() - started < 1.0
        assert err.value.exit_code == EXIT_LOCKED == 3
        assert f"pid {holder.pid}" in str(err.value) and str(lock) in str(err.value)
    finally:
        release.set()
        holder.join(30)
    assert holder.exitcode == 0
    with retrain_lock(lock):  # released with its holder
        pass


def test_cli_retrain_exits_3_when_locked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock = tmp_path / "retrain.lock"
    with retrain_lock(lock):  # a second open file description conflicts even in one process
        with pytest.raises(SystemExit) as exited:
            main(["--set", f"registry.lock_file={lock}", "retrain",
                  "--snapshot", str(tmp_path / "missing")])
    assert exited.value.code == 3
    err = capsys.readouterr().err
    assert "another retrain is running" in err and "Traceback" not in err
