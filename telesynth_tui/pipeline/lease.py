"""One writer per run: a lease recorded in the project database.

A process takes a run's lease before it stores plans and releases it when it stops. A second
process asking for the same run is refused while the holder lives; a lease left by a process
that died (killed, crashed, power cut) is taken over: on the same host the holder's pid and
start time show whether it still runs, elsewhere a heartbeat older than `STALE_AFTER_S` does.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from telesynth_tui.errors import TelesynthError
from telesynth_tui.infra import now, transaction

STALE_AFTER_S = 900.0  # a lease from another host with no heartbeat for this long is stale
_held: Counter[tuple[str, int]] = Counter()  # (database file, run id) -> nesting depth


class RunBusyError(TelesynthError):
    """Another live process is writing the run."""


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot ('' where /proc is not available)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return fields[19]
    except (OSError, IndexError):
        return ""


def owner_token(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def _alive(pid: int, owner: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    started = owner.rsplit(":", 1)[-1]
    return not started or _start_time(pid) in ("", started)


def _is_stale(row: sqlite3.Row) -> bool:
    if row["host"] == socket.gethostname():
        return not _alive(int(row["pid"]), str(row["owner"]))
    return time.time() - float(row["heartbeat"]) > STALE_AFTER_S


def _key(conn: sqlite3.Connection, run_id: int) -> tuple[str, int]:
    return str(conn.execute("PRAGMA database_list").fetchone()[2]), run_id


def acquire(conn: sqlite3.Connection, run_id: int) -> None:
    """Take the run's lease (again, for the process holding it); RunBusyError while another
    live process holds it. A stale lease is taken over in the same transaction."""
    me = owner_token()
    with transaction(conn):
        row = conn.execute("SELECT * FROM run_leases WHERE run_id = ?", (run_id,)).fetchone()
        if row is not None and row["owner"] != me and not _is_stale(row):
            raise RunBusyError(
                f"run {run_id} is being written by process {row['pid']} on {row['host']} "
                f"(since {row['acquired_at']}); wait for it to finish or stop it, then resume"
            )
        conn.execute(
            "INSERT OR REPLACE INTO run_leases(run_id, owner, host, pid, acquired_at, heartbeat)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, me, socket.gethostname(), os.getpid(), now(), time.time()),
        )


def release(conn: sqlite3.Connection, run_id: int) -> None:
    with transaction(conn):
        conn.execute(
            "DELETE FROM run_leases WHERE run_id = ? AND owner = ?", (run_id, owner_token())
        )


@contextmanager
def hold(conn: sqlite3.Connection, run_id: int) -> Iterator[None]:
    """The run's lease for the block (re-entrant within a process)."""
    key = _key(conn, run_id)
    if not _held[key]:
        acquire(conn, run_id)
    _held[key] += 1
    try:
        yield
    finally:
        _held[key] -= 1
        if not _held[key]:
            del _held[key]
            release(conn, run_id)


def check_writer(conn: sqlite3.Connection, run_id: int) -> None:
    """Inside a store transaction: refuse to write if another process now holds the lease, and
    record a heartbeat for ours. A run without a lease (a library caller) is not checked."""
    row = conn.execute("SELECT owner FROM run_leases WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        return
    if row[0] != owner_token():
        raise RunBusyError(f"run {run_id} was taken over by another process ({row[0]})")
    conn.execute("UPDATE run_leases SET heartbeat = ? WHERE run_id = ?", (time.time(), run_id))


def live_writer(conn: sqlite3.Connection, run_id: int) -> bool:
    """Whether a live process holds the run's lease."""
    row = conn.execute("SELECT * FROM run_leases WHERE run_id = ?", (run_id,)).fetchone()
    return row is not None and not _is_stale(row)


def shown_status(conn: sqlite3.Connection, run_id: int, status: str) -> str:
    """A run's status as users should read it: 'running' only while a live process writes it."""
    if status == "running" and not live_writer(conn, run_id):
        return "interrupted"
    return status
