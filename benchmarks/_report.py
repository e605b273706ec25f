"""Shared helpers of the benchmark scripts: machine description and writing their section of
docs/benchmarks.md (between ``<!-- BEGIN key -->`` and ``<!-- END key -->``; other sections are kept)."""

from __future__ import annotations

import os
import platform
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))
BENCHMARKS_MD = os.path.join(ROOT, "docs", "benchmarks.md")

HEADER = """# Benchmarks

Every figure on this page was written by a script in `benchmarks/`, run on the date and machine it
states; each section names the command that reproduces it. Speed figures are ratios measured in one
run (these machines are shared and noisy). Sections are rewritten in place when a script runs again.
"""


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def write_section(key: str, markdown: str, path: str = BENCHMARKS_MD) -> str:
    """Replace (or append) the section ``key`` of docs/benchmarks.md with ``markdown``; atomic."""
    from napari_vesselgraph.io import atomic_write

    begin, end = f"<!-- BEGIN {key} -->", f"<!-- END {key} -->"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else HEADER
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path
