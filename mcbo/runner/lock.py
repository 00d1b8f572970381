"""One writer per results database: an exclusive lock on the file ``<database>.lock`` next to it.

A process that writes a results database (``mcbo bench``) holds :class:`WriterLock` while the database is
open; a second process asking for it gets :class:`DatabaseBusy`, whose message names the holder (process
id, host, start time and command) read from the lock file.

Where the file system supports ``flock`` (local disks, NFS through its byte-range locks) the kernel holds
the lock and releases it when its process ends however it ends, so a lock file left by a killed process is
simply taken over. Where it does not, the lock is the file itself, created exclusively, and a stale one
is recognised by its holder: on the same host, a process id that no longer runs, or runs a process started
at another time (a reused id), is stale and the lock is taken over; on another host it cannot be checked
and the message says which file to remove once that process is known to be gone.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shlex
import socket
import sys
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

try:  # POSIX; elsewhere only the exclusive-create lock is used
    import fcntl
except ImportError:  # pragma: no cover - not on the platforms mcbo is tested on
    fcntl = None  # type: ignore[assignment]

#: ``flock`` errors meaning "this file system does not support it" (fall back to the exclusive-create lock).
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


class DatabaseBusy(ValueError):
    """Another process writes the results database; the message names it and what to do."""


def lock_path(db_path: str | Path) -> Path:
    """The lock file of the results database at ``db_path``: ``<db_path>.lock``."""
    path = Path(db_path)
    return path.with_name(path.name + ".lock")


def process_start_time(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks since boot (Linux ``/proc``), or ``None`` if unknown."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:  # the command name (field 2) may hold spaces and parentheses: fields restart after the last ')'
        return int(text[text.rindex(")") + 2:].split()[19])
    except (ValueError, IndexError):
        return None


def holder_alive(holder: dict[str, Any]) -> bool | None:
    """Whether the process described by a lock file still runs: ``None`` when that cannot be told (another host)."""
    if holder.get("host") != socket.gethostname():
        return None
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        pass
    started = holder.get("process_start")
    now = process_start_time(pid)
    return started is None or now is None or started == now


def describe_holder(holder: dict[str, Any] | None) -> str:
    """``pid 1234 on host h since 2024-05-01 12:00:03, running `mcbo bench quick` ``, or what is known of it."""
    if not holder:
        return "a process that has not yet written its name"
    since = holder.get("started_at")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if isinstance(since, (int, float)) else "?"
    command = holder.get("command")
    return (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} since {when}"
            + (f", running `{command}`" if command else ""))


def _command_line() -> str:
    """This process's command line, ``mcbo ...`` when it is the mcbo command (at most 300 characters)."""
    argv = list(sys.argv) or ["python"]
    if Path(argv[0]).name in ("mcbo", "__main__.py", "cli.py"):
        argv[0] = "mcbo"
    return shlex.join(argv)[:300]


class WriterLock:
    """The exclusive writer lock of the results database at ``db_path`` (see the module docstring).

    Use :meth:`acquire` / :meth:`release`, or ``with WriterLock(path):``.
    """

    def __init__(self, db_path: str | Path) -> None:
        self.db_path = Path(db_path)
        self.path = lock_path(db_path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`DatabaseBusy` naming the process that holds it.

        Raises:
            DatabaseBusy: another live process holds the lock.
            OSError: the lock file cannot be created (a read-only folder, a full disk).
        """
        if self._fd is not None:
            return
        for _ in range(20):  # the holder may remove the file between our open and our lock: try again
            try:
                fd, created = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644), True
            except FileExistsError:
                try:
                    fd, created = os.open(self.path, os.O_RDWR), False
                except FileNotFoundError:
                    continue
            try:
                locked = self._flock(fd)
            except BaseException:
                os.close(fd)
                raise
            if not locked and created:  # no flock here, and the file is ours: created exclusively
                self._fd = fd
                self._write_holder()
                return
            if not locked:
                os.close(fd)
                self._acquire_exclusive_create()
                return
            if self._same_file(fd):
                self._fd = fd
                self._write_holder()
                return
            os.close(fd)
        raise DatabaseBusy(f"results database {str(self.db_path)!r}: could not take its lock {str(self.path)!r} "
                           f"(another process keeps replacing it); run the command again")

    def _flock(self, fd: int) -> bool:
        """Lock ``fd``; ``False`` when the file system has no ``flock``. Raises :class:`DatabaseBusy` if held."""
        if fcntl is None:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise self._busy(self._read_holder()) from None
        except OSError as err:
            if err.errno in _NO_FLOCK:
                return False
            raise
        return True

    def _same_file(self, fd: int) -> bool:
        try:
            return os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    def _acquire_exclusive_create(self) -> None:
        """The lock as a file created exclusively; a stale one (its process gone, same host) is taken over."""
        for _ in range(20):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = self._read_holder()
                alive = holder_alive(holder) if holder else None
                if alive is False:
                    logger.warning("results database %s: taking over the lock of %s, which no longer runs",
                                   self.db_path, describe_holder(holder))
                    try:
                        self.path.unlink()
                    except FileNotFoundError:
                        pass
                    continue
                if holder is None and self._age() > 60.0:  # an empty lock file nobody finished writing
                    self.path.unlink(missing_ok=True)
                    continue
                raise self._busy(holder, checked=alive is not None) from None
            self._fd = fd
            self._write_holder()
            return
        raise DatabaseBusy(f"results database {str(self.db_path)!r}: could not take its lock {str(self.path)!r}; "
                           f"run the command again")

    def _age(self) -> float:
        try:
            return time.time() - self.path.stat().st_mtime
        except OSError:
            return 0.0

    def _busy(self, holder: dict[str, Any] | None, checked: bool = True) -> DatabaseBusy:
        advice = ("wait for it to finish, or stop it and run this command again (it resumes from what is stored); "
                  "use another --db to run alongside it")
        if not checked:
            advice += f". If that process no longer runs, remove {str(self.path)!r}"
        return DatabaseBusy(f"results database {str(self.db_path)!r} is being written by another mcbo process "
                            f"({describe_holder(holder)}); {advice}")

    def _read_holder(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text() or "null")
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _write_holder(self) -> None:
        assert self._fd is not None
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": time.time(),
                  "process_start": process_start_time(os.getpid()), "command": _command_line()}
        data = json.dumps(holder).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def release(self) -> None:
        """Remove the lock file and let the lock go (the file first, so nobody locks a file being removed)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            self.path.unlink(missing_ok=True)
        except OSError as err:  # a read-only folder: the lock still goes with the descriptor
            logger.debug("could not remove %s: %s", self.path, err)
        os.close(fd)

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


__all__ = ["DatabaseBusy", "WriterLock", "describe_holder", "holder_alive", "lock_path", "process_start_time"]
