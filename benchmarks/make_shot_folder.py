"""A training folder from a real set's SHOT split (never its test split), for ``extra_data`` of a training config.

``python benchmarks/make_shot_folder.py SET OUT [--val ID ...]``: copies the shot-split samples of the set that
``benchmarks/real_data.py`` imported (``runs/realdata/data/SET``; run that first) to ``OUT`` in the dataset layout,
the ``--val`` ids as the validation split and the rest as training. The test split is not copied.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make(name: str, out: Path, val: list[str], work: Path = ROOT / "runs" / "realdata" / "data") -> list[tuple[str, str]]:
    src = work / name
    manifest = json.loads((src / "manifest.json").read_text())
    shots = [s for s in manifest["samples"] if s["split"] == "train"]  # real_data's shot split
    unknown = sorted(set(val) - {s["id"] for s in shots})
    if unknown:
        raise SystemExit(f"error: --val ids not in the shot split of {name}: {unknown}")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    samples = []
    for s in shots:
        s = {**s, "split": "val" if s["id"] in val else "train"}
        for key in ("image", "graph", "mask"):
            if s.get(key):
                (tmp / s[key]).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(src / s[key], tmp / s[key])
        samples.append(s)
    (tmp / "manifest.json").write_text(json.dumps({**manifest, "domain": f"{name}-shots", "samples": samples}, indent=1))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return [(s["id"], s["split"]) for s in samples]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("set")
    ap.add_argument("out", type=Path)
    ap.add_argument("--val", nargs="*", default=[])
    args = ap.parse_args(argv)
    if not (ROOT / "runs" / "realdata" / "data" / args.set / "manifest.json").exists():
        print(f"error: runs/realdata/data/{args.set} not found: run benchmarks/real_data.py --sets {args.set} first",
              file=sys.stderr)
        return 1
    for sid, split in make(args.set, args.out, args.val):
        print(sid, split)
    return 0


if __name__ == "__main__":
    sys.exit(main())
