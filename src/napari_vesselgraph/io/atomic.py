"""Atomic file writes: a reader never sees a half-written file.

The data goes to a temporary file in the destination folder (same file system, so the final
rename is atomic), is flushed and fsynced, and only then replaces the destination with
:func:`os.replace`. If anything fails before that, the temporary file is deleted and the original
file (if any) is left exactly as it was.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from contextlib import contextmanager
from typing import IO, Iterator

__all__ = ["atomic_write", "check_writable"]

#: what :func:`atomic_write` adds to a file name for its temporary file: ``"." + name + ".1234abcd.tmp"``
TEMP_EXTRA = len(".") + len(".12345678.tmp")
#: temporary files of a destination older than this (seconds) were left by a write that was killed
STALE_TMP_SECONDS = 3600

_ALLOWED_MODES = {"w", "wt", "wb", "w+", "w+b", "wb+", "w+t", "wt+"}


@contextmanager
def atomic_write(path, mode: str = "w", encoding: str | None = None, newline: str | None = None) -> Iterator[IO]:
    """Open ``path`` for writing so that it is replaced only if the ``with`` block succeeds.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file. Its folder must exist.
    mode : str
        A write mode: ``"w"`` (text, the default) or ``"wb"`` (binary); ``"+"`` variants are accepted.
    encoding : str, optional
        Text encoding for text modes (default UTF-8, whatever the platform's locale says).
    newline : str, optional
        Passed to :func:`open` in text modes (use ``""`` for the :mod:`csv` module).

    Yields
    ------
    file object
        Write to it inside the ``with`` block. On normal exit the data is flushed, fsynced and moved
        over ``path``; on an exception the temporary file is removed, ``path`` is untouched and the
        exception propagates.

    The new file gets the permissions of the file it replaces, or the usual permissions for a new
    file (``0o666`` less the umask) when there was none.
    """
    if mode not in _ALLOWED_MODES:
        raise ValueError(f"atomic_write needs a write mode such as 'w' or 'wb', got {mode!r}")
    binary = "b" in mode
    if binary and (encoding is not None or newline is not None):
        raise ValueError("encoding and newline are only for text modes")
    path = os.fspath(path)
    if os.path.islink(path):  # write through a symlink, keeping the link itself
        path = os.path.realpath(path)
    folder, name = os.path.split(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(21, "Is a directory", path)

    _clean_stale(folder, name)
    # A random name in the same folder, opened in exclusive-create mode ("x"): we never clobber
    # anything, the umask decides the permissions as for any new file, and ``f.name`` is a real path
    # (some writers, tifffile for one, want that).
    xmode = mode.replace("w", "x")
    for _ in range(100):
        tmp = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            if binary:
                f = open(tmp, xmode)
            else:
                f = open(tmp, xmode, encoding=encoding or "utf-8", newline=newline)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - would need 100 collisions of 32 random bits
        raise FileExistsError(f"could not create a temporary file next to {path}")

    try:
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        try:
            os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        except FileNotFoundError:
            pass
        except OSError:  # pragma: no cover - e.g. file systems without chmod
            pass
        os.replace(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise
    _fsync_folder(folder)


def _clean_stale(folder: str, name: str, age: float = STALE_TMP_SECONDS) -> None:
    """Remove the temporary files of ``name`` (exactly ``.NAME.<8 hex>.tmp``) older than ``age`` seconds, left
    in ``folder`` by writes that were killed before they could clean up. Younger ones may belong to a write in
    progress in another process and are left alone; failures are ignored."""
    pattern = re.compile(re.escape(f".{name}.") + r"[0-9a-f]{8}\.tmp")
    cutoff = time.time() - age
    try:
        with os.scandir(folder) as it:
            for entry in it:
                if not pattern.fullmatch(entry.name):
                    continue
                try:
                    if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        os.unlink(entry.path)
                except OSError:
                    pass
    except OSError:
        pass


def _remove_quietly(p: str) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable (POSIX); silently skipped where folders cannot be opened."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ------------------------------------------------------------------ checking an output before the work
def _name_max(folder: str) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):  # pragma: no cover - e.g. Windows
        return 255


def check_writable(path, suffixes=None, folder: bool = False, parents: bool = False):
    """Check, before any long work, that ``path`` can be written; raise a one-line
    :class:`~napari_vesselgraph.errors.VesselGraphError` saying why not. Returns ``path`` unchanged.

    - ``suffixes``: the accepted file suffixes (lower case, with the dot), when the suffix chooses the format;
    - ``folder=True``: ``path`` is a folder the work creates if needed (with its parents) and writes into;
    - ``parents=True``: missing folders above ``path`` are created by the work (as for ``mkdir -p``).

    The nearest existing folder must be a folder, be writable (a temporary file is created and removed there,
    which also catches read-only file systems), and every name to be created, including the temporary name
    :func:`atomic_write` uses (``.NAME.1234abcd.tmp``), must fit the file system's name limit.
    """
    from ..errors import VesselGraphError

    p = os.fspath(path)
    full = os.path.abspath(os.path.expanduser(p))

    def fail(why: str):
        raise VesselGraphError(f"cannot write {p}: {why}")

    if suffixes is not None and not folder:
        suffix = os.path.splitext(full)[1].lower()
        if suffix not in tuple(suffixes):
            what = f"suffix {suffix!r}" if suffix else "no suffix"
            fail(f"unknown {what}; use one of {', '.join(suffixes)}")
    if os.path.isdir(full) and not folder:
        fail("is a folder; give a file name")
    if folder and os.path.exists(full) and not os.path.isdir(full):
        fail("exists and is not a folder")
    # the folders that must exist or be created, and the names to be made in them
    to_make: list[str] = []
    cur = full if folder else os.path.dirname(full)
    while not os.path.isdir(cur):
        if os.path.lexists(cur) and not os.path.isdir(cur):
            fail(f"{cur} exists and is not a folder")
        parent = os.path.dirname(cur)
        if parent == cur:  # pragma: no cover - a missing root
            fail(f"{cur} does not exist")
        to_make.append(os.path.basename(cur))
        cur = parent
    if not folder and to_make and not parents:
        fail(f"the folder {os.path.dirname(full)} does not exist")
    name_max = _name_max(cur)
    for n in reversed(to_make):
        if len(os.fsencode(n)) > name_max:
            fail(f"the folder name {n[:40]!r}... is too long ({len(os.fsencode(n))} bytes; at most {name_max} here)")
    if not folder:
        n = os.path.basename(full)
        size = len(os.fsencode(n)) + TEMP_EXTRA
        if size > name_max:
            fail(
                f"the file name is too long ({len(os.fsencode(n))} bytes; at most {name_max - TEMP_EXTRA} here, "
                f"as the safe write uses a temporary name {TEMP_EXTRA} bytes longer)"
            )
    if not os.access(cur, os.W_OK | os.X_OK):
        fail(f"the folder {cur} is not writable")
    import tempfile

    try:
        fd, probe = tempfile.mkstemp(prefix=".vesselgraph-probe-", dir=cur)
    except OSError as e:
        fail(f"the folder {cur} is not writable ({e.strerror or e})")
    os.close(fd)
    _remove_quietly(probe)
    return path
