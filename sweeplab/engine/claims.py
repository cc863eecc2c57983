"""Run claims: a lease file per run id, so that sweeps sharing a results dir run each run once.

`<results_dir>/claims/<run_id>.lease` names its holder (host, pid, the pid's start time and a
random token); its mtime is the heartbeat, touched every HEARTBEAT_S by a daemon thread while
the run executes. A lease is stale, and taken over, when its holder is a process of this host
that has ended (its pid gone, or reused: another start time), or a process of another host
whose heartbeat is older than STALE_AFTER_S (a dead node: no pid can be checked from here).

A lease is created whole (written to a temp file, then hard-linked: the link fails if a lease
exists) without a lock. Taking over a stale lease and releasing one happen under one lock per
claims folder, re-reading the lease there, so two sweeps never both take over the same lease
and a holder never deletes the lease of the process that took it over from it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from filelock import FileLock

from sweeplab.results.store import open_temp

HEARTBEAT_S = 30.0
# Ten missed heartbeats: a host that is down, not a slow file server or a busy node.
STALE_AFTER_S = 300.0
# Tokens of the leases this process holds: a lease naming this pid with another token is left
# over (this process's pid reused, or a claim it never released) and stale.
_HELD: set[str] = set()


@dataclass(frozen=True)
class Holder:
    """Who holds a lease."""

    host: str
    pid: int
    started: float  # the pid's start time (seconds since the epoch), against pid reuse
    token: str

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}"


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a run: ours, or held by a live `holder` elsewhere."""

    ours: bool
    holder: Holder
    path: Path


def lease_path(results_dir: str | Path, rid: str) -> Path:
    return Path(results_dir) / "claims" / f"{rid}.lease"


def _me() -> Holder:
    import psutil

    started = psutil.Process(os.getpid()).create_time()
    return Holder(socket.gethostname(), os.getpid(), started, os.urandom(8).hex())


def _read(path: Path) -> tuple[Holder | None, float]:
    """(holder, seconds since its heartbeat); holder None for a damaged file.

    Raises FileNotFoundError when there is no lease."""
    age = time.time() - path.stat().st_mtime
    try:
        return Holder(**json.loads(path.read_text())), age
    except (ValueError, TypeError):
        return None, age


def _alive(holder: Holder) -> bool:
    """Whether a process of this host with the holder's pid and start time is running."""
    import psutil

    try:
        proc = psutil.Process(holder.pid)
        same = abs(proc.create_time() - holder.started) < 1  # not a reused pid
        return same and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # it exists; another user's process


def stale_reason(holder: Holder | None, age: float, stale_after: float) -> str | None:
    """Why a lease may be taken over, or None while its holder may be running it.

    Args:
        holder: the lease's holder (None: a damaged lease).
        age: seconds since its heartbeat.
        stale_after: heartbeat age beyond which another host's holder counts as dead.
    """
    if holder is None:
        return "a damaged lease"
    if holder.host == socket.gethostname():
        if holder.pid == os.getpid():
            return None if holder.token in _HELD else f"{holder} is this process, not running it"
        return None if _alive(holder) else f"{holder} has ended"
    if age > stale_after:
        return f"{holder} sent no heartbeat for {age:.0f} s"
    return None


def _link(tmp: Path, path: Path) -> bool:
    """Create path as a hard link to tmp; False if path exists."""
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False


def _acquire(path: Path, me: Holder, stale_after: float) -> Holder:
    """The lease's holder after trying to claim it: `me`, or a live other holder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # The lease's content, complete and fsynced before the name exists; a temp file that the
    # next sweep removes if this process is killed here.
    fd, tmp = open_temp(path)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(asdict(me)))
            f.flush()
            os.fsync(f.fileno())
        if _link(tmp, path):
            return me
        with FileLock(str(path.parent / ".takeover.lock")):
            while True:
                try:
                    holder, age = _read(path)
                    break
                except FileNotFoundError:  # released meanwhile; creators link without the lock
                    if _link(tmp, path):
                        return me
            reason = stale_reason(holder, age, stale_after)
            if reason is None:
                assert holder is not None
                return holder
            print(f"claim {path.stem}: taken over ({reason})", flush=True)
            os.replace(tmp, path)
            return me
    finally:
        tmp.unlink(missing_ok=True)


def _release(path: Path, me: Holder) -> None:
    with FileLock(str(path.parent / ".takeover.lock")):
        try:
            holder, _ = _read(path)
        except FileNotFoundError:
            holder = None
        if holder == me:
            path.unlink()
            return
    now = f"taken over by {holder}" if holder else "removed"
    print(
        f"sweeplab: warning: the claim on run {path.stem} was {now} while this process ran it "
        f"(its heartbeat stopped for over {STALE_AFTER_S:.0f} s?); the run may have run twice",
        file=sys.stderr,
        flush=True,
    )


def _beat(path: Path, stop: threading.Event, every: float) -> None:
    while not stop.wait(every):
        with contextlib.suppress(OSError):  # a lost lease is reported when the run releases it
            os.utime(path)


@contextlib.contextmanager
def claim(
    results_dir: str | Path,
    rid: str,
    *,
    heartbeat: float = HEARTBEAT_S,
    stale_after: float = STALE_AFTER_S,
) -> Iterator[Claim]:
    """Claim run `rid` for this process for the duration of the block.

    Args:
        results_dir: the results dir (claims live in its claims/ folder).
        rid: the run id.
        heartbeat: seconds between touches of the lease while the block runs.
        stale_after: heartbeat age after which another host's lease is taken over.
    Yields:
        Claim(ours=True) while this process holds it (released when the block ends, however
        it ends), or Claim(ours=False, holder) when a live worker holds it.
    """
    path = lease_path(results_dir, rid)
    me = _me()
    _HELD.add(me.token)  # before the link: a concurrent claim in this process sees it alive
    try:
        holder = _acquire(path, me, stale_after)
    except BaseException:
        _HELD.discard(me.token)
        raise
    if holder != me:
        _HELD.discard(me.token)
        yield Claim(False, holder, path)
        return
    stop = threading.Event()
    beat = threading.Thread(target=_beat, args=(path, stop, heartbeat), daemon=True)
    beat.start()
    try:
        yield Claim(True, me, path)
    finally:
        stop.set()
        beat.join()
        _HELD.discard(me.token)
        _release(path, me)
