"""Copy a trained checkpoint into the package's bundled checkpoints, saying what it is for.

    python scripts/bundle_checkpoint.py runs/vessel2d_robust_s0/best.safetensors --name vessel2d-random \
        --images "2D vessel images of any kind: fundus photos, ..." --kinds fundus fluorescence \
        --polarity any --rgb any --reference-data runs/data/drive-shots

- keeps the weights and every metadata entry the training wrote (command, seed, config, validation figures);
- adds ``name``, ``description`` and ``suits`` (what images the model suits: ``ndim``, ``images`` text,
  ``kinds``, ``polarity``, ``rgb``), read by the widgets and ``vesselgraph predict`` to pick a model for an
  image and to warn on a mismatch;
- with ``--reference-data``, records ``scale_reference.radius_p90``: the median over that dataset folder's
  train images of :func:`napari_vesselgraph.inference.autozoom.structure_radius` (the width of the structures
  the model does best on), which ``predict`` uses to shrink images with wider structures (automatic zoom);
- with ``--test-figures`` (adapted checkpoints), records ``adaptation.test``: the test-split figures of the
  checkpoint, its source and the skeleton from ``benchmarks/adapted_checkpoints.py``;
- re-bundling a bundled checkpoint (its own file as the source, e.g. to correct ``suits``) keeps the weights and the
  earlier ``bundled`` records (``bundled_history``);
- with ``--source-checkpoint`` (a checkpoint fine-tuned by ``vesselgraph train-seg --init``), checks that this file
  is the one the fine-tune started from (its SHA-256 against ``init.sha256``) and records its command and seed as
  ``source_checkpoint``, so the bundled file says how both steps were made.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", help="a trained checkpoint (e.g. runs/NAME/best.safetensors)")
    p.add_argument("--name", required=True, help="bundled name (file stem)")
    p.add_argument("--images", required=True, help="plain-language text: the images this model suits")
    p.add_argument("--kinds", nargs="*", default=[], help="image kinds, e.g. fundus fluorescence two-photon aerial")
    p.add_argument("--polarity", choices=["bright", "dark", "any"], default="any")
    p.add_argument("--rgb", choices=["yes", "no", "any"], default="any")
    p.add_argument("--structures", default="vessels", help="vessels | neurites | roads | ...")
    p.add_argument("--reference-data", default=None, help="dataset folder: the scale reference is measured on it")
    p.add_argument("--reference-radius", type=float, default=None, help="or give the scale reference (px) directly")
    p.add_argument("--test-figures", default=None,
                   help="JSON from benchmarks/adapted_checkpoints.py: recorded as adaptation.test (adapted checkpoints)")
    p.add_argument("--source-checkpoint", default=None,
                   help="the checkpoint a train-seg --init fine-tune started from: checked and recorded")
    a = p.parse_args(argv)

    from napari_vesselgraph.checkpoints import bundled_dir
    from napari_vesselgraph.checkpoints.store import load_tensors, save_tensors
    from napari_vesselgraph.errors import VesselGraphError

    try:
        tensors, meta = load_tensors(a.source)
    except VesselGraphError as e:
        print(f"bundle_checkpoint: {e}", file=sys.stderr)
        return 2
    ndim = int(meta.get("ndim") or (meta.get("model") or {}).get("ndim") or 2)
    meta["name"] = a.name
    meta["suits"] = {
        "ndim": ndim,
        "images": a.images,
        "kinds": list(a.kinds),
        "polarity": a.polarity,
        "rgb": {"yes": True, "no": False, "any": None}[a.rgb],
        "structures": a.structures,
    }
    meta["description"] = a.images
    ref = a.reference_radius
    if a.reference_data:
        from napari_vesselgraph import synth
        from napari_vesselgraph.inference.autozoom import structure_radius

        radii = []
        for r in synth.read_dataset(a.reference_data, split="train"):
            v = structure_radius(np.asarray(r["image"], dtype=np.float32)) if r["image"].ndim - (
                1 if r["image"].shape[-1] in (3, 4) else 0) == 2 else None  # fmt: skip
            if v is not None:
                radii.append(v)
        if radii:
            ref = float(np.median(radii))
            print(f"scale reference: median radius_p90 {ref:.2f} px over {len(radii)} images of {a.reference_data}")
    if ref:
        meta["scale_reference"] = {
            "radius_p90": round(float(ref), 3),
            "measured_on": a.reference_data or "given",
            "how": "napari_vesselgraph.inference.autozoom.structure_radius",
        }
    if a.test_figures:
        import json

        if not meta.get("adaptation"):
            print("bundle_checkpoint: --test-figures is for adapted checkpoints (no 'adaptation')", file=sys.stderr)
            return 2
        meta["adaptation"]["test"] = json.loads(Path(a.test_figures).read_text())
    if a.source_checkpoint:
        import hashlib

        from napari_vesselgraph.checkpoints import read_metadata

        digest = hashlib.sha256(Path(a.source_checkpoint).read_bytes()).hexdigest()
        if (meta.get("init") or {}).get("sha256") != digest:
            print(f"bundle_checkpoint: {a.source_checkpoint} is not the checkpoint {a.source} was fine-tuned from",
                  file=sys.stderr)  # fmt: skip
            return 2
        src = read_metadata(a.source_checkpoint)
        sp = Path(a.source_checkpoint)
        meta["source_checkpoint"] = {"name": src.get("name") or f"{sp.parent.name}/{sp.stem}", "path": str(sp),
                                     "sha256": digest, "command": src.get("command"), "seed": src.get("seed"),
                                     "validation": src.get("validation")}  # fmt: skip
        meta["init"].update(name=meta["source_checkpoint"]["name"], command=src.get("command"), seed=src.get("seed"))
        if isinstance(meta.get("adaptation"), dict):
            meta["adaptation"]["source"] = meta["source_checkpoint"]["name"]
            target = meta["adaptation"].get("target") or []
            meta.setdefault("target_domain", ", ".join(Path(t).name for t in target) if isinstance(target, list)
                            else str(target))  # fmt: skip
    if isinstance(meta.get("bundled"), dict):  # re-bundling a bundled checkpoint (e.g. to correct what it suits)
        meta["bundled_history"] = [*(meta.get("bundled_history") or []), meta["bundled"]]
    meta["bundled"] = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "from": str(a.source),
                       "command": "python scripts/bundle_checkpoint.py " + " ".join(argv or sys.argv[1:])}  # fmt: skip
    out = bundled_dir() / f"{a.name}.safetensors"
    save_tensors(out, tensors, meta)
    print(f"wrote {out} (+ {out.with_suffix('.json').name})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
