"""The writer lock of a cube: one run (or one part of a split run) writes a store at a time.

``X.zarr.lock`` (or ``X.zarr.lock.part-I-of-N``) holds its owner: pid, host, the
process's start time and when it took the lock. It appears atomically, with its
content: the record is written to a private file first and then hard-linked into
place (``link`` fails if the name exists, on local filesystems and NFS alike), so
there is never an empty or half-written lock, even on a full disk or after a kill.

A lock is stale when its owner was a process on this host that is gone (the pid is
not running, or it is running but started at another time: a reused pid). Taking over
a stale lock is serialised by an ``flock`` on the stale file itself: the taker locks
it, checks that the name still refers to that file and that its content is still the
stale owner, and only then replaces it; a second taker waits on the flock and then
finds a live owner. A lock held by another host is never judged stale (the message
says how to remove it once that run is known to be dead).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import json
import os
import socket
import sys
import uuid
from pathlib import Path

from .errors import LockError

#: a store's name as the stem of the files beside it (lock, temporary template) while it
#: has at most this many bytes; a longer one is cut and hashed (:func:`stem`), so that
#: every name marshall makes stays within the file system's 255 bytes
STEM_MAX = 180


def stem(path: Path) -> str:
    """The stem of the files marshall puts beside store ``path`` (``stem + ".lock"``,
    ``stem + ".partial-..."``): the store's own name, or for a name over
    :data:`STEM_MAX` bytes its start and a hash of the whole name (the same in every
    process, so every run of the store finds the same lock)."""
    name = Path(path).name
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= STEM_MAX:
        return name
    digest = hashlib.sha256(raw).hexdigest()[:16]
    head = raw[: STEM_MAX - 18].decode("utf-8", "ignore")  # whole characters only
    return f"{head}~{digest}"


def lock_path(path: Path, part: tuple[int, int] | None = None) -> Path:
    """The lock file of a whole-store run, or of part ``i`` of ``n`` of its blocks."""
    path = Path(path)
    suffix = ".lock" if part is None else f".lock.part-{part[0]}-of-{part[1]}"
    return path.with_name(stem(path) + suffix)


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from /proc), or None."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def me() -> dict:
    pid = os.getpid()
    return {
        "pid": pid,
        "host": socket.gethostname(),
        "pid_start": process_start(pid),
        "started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "token": uuid.uuid4().hex,
    }


def read_owner(lp: Path) -> dict | None:
    """The owner record of a lock file; None if it is missing; ``{"damaged": text}``
    if it cannot be read as one (a lock left by an older marshall, or edited)."""
    try:
        text = Path(lp).read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return {"damaged": f"unreadable ({exc.strerror})"}
    try:
        owner = json.loads(text)
    except json.JSONDecodeError:
        owner = None
    if not isinstance(owner, dict) or "pid" not in owner or "host" not in owner:
        return {"damaged": "empty" if not text.strip() else "not a marshall lock record"}
    return owner


def stale(owner: dict) -> bool:
    """True when the owner was a process on this host that is gone."""
    if "damaged" in owner or owner.get("host") != socket.gethostname():
        return False
    try:
        pid = int(owner["pid"])
    except (TypeError, ValueError):
        return False
    if not _alive(pid):
        return True
    start = owner.get("pid_start")
    return start is not None and process_start(pid) not in (None, start)


def describe(path: Path, lp: Path, owner: dict) -> str:
    if "damaged" in owner:
        return (
            f"the lock file {lp} of {path} is {owner['damaged']}: marshall did not write it "
            "this way. If no marshall run is writing the store, remove the file and run again."
        )
    return (
        f"{path} is being written by another run (pid {owner.get('pid')} on "
        f"{owner.get('host')}, started {owner.get('started')}). Wait for it to finish, "
        f"or if that run is dead on another host, remove {lp}."
    )


def _create(lp: Path, record: dict) -> bool:
    """Make ``lp`` hold ``record``, atomically; False if ``lp`` exists."""
    tmp = lp.with_name(f".{lp.name}.{record['token'][:16]}.tmp")  # within 255 bytes
    try:
        with open(tmp, "x") as fh:
            json.dump(record, fh)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, lp)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _take_over(lp: Path, seen: dict) -> bool:
    """Remove ``lp`` if it still holds the stale ``seen`` owner (serialised by flock)."""
    try:
        fd = os.open(lp, os.O_RDONLY)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            same_file = os.fstat(fd).st_ino == os.stat(lp).st_ino
        except FileNotFoundError:
            return True  # removed meanwhile: free
        if not same_file or read_owner(lp) != seen:
            return False  # replaced by a live owner meanwhile
        os.unlink(lp)
        return True
    finally:
        os.close(fd)


def _conflicts(path: Path, lp: Path, part: tuple[int, int] | None):
    """Other locks of the same store that conflict with ours (live or unreadable)."""
    prefix = stem(path) + ".lock"
    for other in path.parent.iterdir():
        name = other.name
        if other == lp or not name.startswith(prefix) or name.endswith(".tmp"):
            continue
        rest = name[len(prefix) :]
        theirs = None
        if rest.startswith(".part-"):
            i, _, n = rest[len(".part-") :].partition("-of-")
            if not (i.isdigit() and n.isdigit()):
                continue
            theirs = int(i), int(n)
        elif rest:
            continue
        compatible = (
            part is not None
            and theirs is not None
            and theirs[1] == part[1]
            and (theirs[0] != part[0])
        )
        owner = read_owner(other)
        if owner is None or compatible or stale(owner):
            continue
        yield other, owner


@contextlib.contextmanager
def writer_lock(path: Path, part: tuple[int, int] | None = None):
    """Hold a store's writer lock; refuse if a live process holds a conflicting one.

    A whole-store run conflicts with any other run; part ``i`` of ``n`` (disjoint
    block ranges, for many jobs on a cluster) conflicts with whole-store runs, the
    same part, and parts of another split. A lock left by a dead process on this
    host is stale and taken over (with a note on stderr). Raises :class:`LockError`.
    """
    path = Path(path)
    lp = lock_path(path, part)
    lp.parent.mkdir(parents=True, exist_ok=True)  # the caller checked the path first
    mine = me()
    for _ in range(3):
        if _create(lp, mine):
            break
        owner = read_owner(lp)
        if owner is None:
            continue  # released meanwhile
        if not stale(owner):
            raise LockError(describe(path, lp, owner))
        if _take_over(lp, owner):
            from ..term import clean

            print(
                f"marshall: taking over stale lock {clean(lp.name)} of dead process "
                f"{owner['pid']} (started {owner.get('started')})",
                file=sys.stderr,
            )
    else:
        raise LockError(describe(path, lp, read_owner(lp) or {}))
    try:
        # created ours first, then look for conflicting others: two racing runs both
        # see each other and both back off, never both proceed
        for other, owner in _conflicts(path, lp, part):
            raise LockError(describe(path, other, owner))
        yield mine
    finally:
        with contextlib.suppress(OSError):
            if (read_owner(lp) or {}).get("token") == mine["token"]:
                lp.unlink()
