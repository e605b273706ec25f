"""Pairing files by a key taken from their names (``{id}`` templates, one-``*`` globs, ``re:`` regexes).

Pattern syntax (matched against the file *name*, not the folder, case-sensitively, the whole name):

* ``None``: the key is the file's stem (name without its last suffix), so ``a.tif`` pairs with ``a.png``.
* a template with ``{id}``: ``"{id}_training.tif"`` matches ``21_training.tif`` with key ``21``. The rest
  may hold glob wildcards ``*`` and ``?`` (``"{id}_*.gif"``).
* a glob with exactly one ``*`` and no ``{id}``: the ``*`` is the key (``"*_manual1.gif"``).
* ``"re:<regex>"``: a Python regular expression; the key is the group named ``id``, else group 1
  (``"re:(\\d+)_training\\.tif"``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import VesselGraphError

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".gif", ".jpg", ".jpeg", ".bmp", ".npy")


def compile_pattern(pattern: str | None) -> re.Pattern | None:
    """A regex whose group ``id`` (or group 1) is the key; None for stem matching."""
    if pattern is None:
        return None
    pattern = str(pattern)
    if pattern.startswith("re:"):
        try:
            rx = re.compile(pattern[3:])
        except re.error as e:
            raise VesselGraphError(f"bad regular expression {pattern[3:]!r}: {e}") from None
        if rx.groups < 1:
            raise VesselGraphError(f"the regular expression {pattern[3:]!r} needs a group for the id, e.g. (\\d+)")
        return rx
    if "{id}" in pattern:
        if pattern.count("{id}") > 1:
            raise VesselGraphError(f"pattern {pattern!r} names {{id}} more than once")
        head, tail = pattern.split("{id}")
        return re.compile(_glob_rx(head) + "(?P<id>.+?)" + _glob_rx(tail) + r"\Z")
    if pattern.count("*") == 1:
        head, tail = pattern.split("*")
        return re.compile(_glob_rx(head) + "(?P<id>.+?)" + _glob_rx(tail) + r"\Z")
    raise VesselGraphError(
        f"pattern {pattern!r} must contain {{id}} (e.g. '{{id}}_training.tif'), exactly one '*', "
        "or start with 're:' (a regular expression with a group)"
    )


def _glob_rx(text: str) -> str:
    out = []
    for ch in text:
        out.append(".*?" if ch == "*" else "." if ch == "?" else re.escape(ch))
    return "".join(out)


def key_of(name: str, rx: re.Pattern | None) -> str | None:
    if rx is None:
        return Path(name).stem
    m = rx.fullmatch(name)
    if m is None:
        return None
    return m.groupdict().get("id") or m.group(1)


def list_keyed(source, pattern: str | None, what: str) -> dict[str, Path]:
    """``{key: path}`` of the files in folder ``source`` (or the single file ``source``) matching ``pattern``."""
    src = Path(source)
    if not src.exists():
        raise VesselGraphError(f"{what} {src} does not exist")
    rx = compile_pattern(pattern)
    if src.is_file():
        key = key_of(src.name, rx)
        return {key if key is not None else src.stem: src}
    out: dict[str, Path] = {}
    for p in sorted(src.iterdir()):
        if not p.is_file() or p.name.startswith("."):
            continue
        if rx is None and p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        key = key_of(p.name, rx)
        if key is None:
            continue
        if key in out:
            raise VesselGraphError(
                f"{what}: {out[key].name} and {p.name} both give the id {key!r}; use a pattern that tells them apart"
            )
        out[key] = p
    return out


def describe(source, pattern) -> str:
    return f"{os.fspath(source)}" + (f" with pattern {pattern!r}" if pattern else "")
