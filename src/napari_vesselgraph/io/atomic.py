"""Atomic file writes: a reader never sees a half-written file.

The data goes to a temporary file in the destination folder (same file system, so the final
rename is atomic), is flushed and fsynced, and only then replaces the destination with
:func:`os.replace`. If anything fails before that, the temporary file is deleted and the original
file (if any) is left exactly as it was.
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from typing import IO, Iterator

__all__ = ["atomic_write"]

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
