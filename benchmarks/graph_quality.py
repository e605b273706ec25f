"""Graph quality of every available method on every synthetic domain (fixed test seeds).

For each domain in ``synth.DOMAINS`` the test split is the seeds ``10_000_000 + i`` for ``i < n``.
Every method is run on every image and compared with the ground truth by ``metrics.evaluate``:

* ``skeleton``: the classical baseline (``baseline.skeleton_graph``) with the per-domain defaults of
  ``baseline.PRESETS`` -- picked on VALIDATION seeds ``20_000_000 + i`` with ``--tune``, never on the
  test seeds.
* ``model:<checkpoint>``: ``inference.predict(image, checkpoint=..., method="model")`` for every
  bundled checkpoint trained on the domain or on its source domain (source-only; skipped, with a note,
  while inference or the bundled checkpoints do not exist).

Prints a Markdown table (method x domain, mean ± std over the seeds) and writes it, with the exact
command, date, machine and seeds, to ``docs/benchmarks.md (section graph-quality)``.

    python benchmarks/graph_quality.py            # 10 test images per domain
    python benchmarks/graph_quality.py --quick    # 3 per domain
    python benchmarks/graph_quality.py --tune     # search baseline defaults on validation seeds
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from _report import cpu_name, write_section

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

TEST_SEED0 = 10_000_000
VAL_SEED0 = 20_000_000

#: columns of the table (``s_per_image`` is the prediction time only, not the evaluation)
COLUMNS = [
    "smd",
    "node_f1",
    "edge_f1",
    "apls",
    "topo_f1",
    "betti0_error",
    "betti1_error",
    "length_quality",
    "s_per_image",
]


# ----------------------------------------------------------------------------- helpers
def spatial_shape(image: np.ndarray, gt) -> tuple[int, ...]:
    return tuple(image.shape[: gt.ndim])


def image_channels(image: np.ndarray, gt) -> int:
    return int(image.shape[-1]) if image.ndim > gt.ndim else 1


def run_skeleton(image, gt, params):
    from napari_vesselgraph.baseline import skeleton_graph

    return skeleton_graph(image, scale=gt.scale, **params)


def model_methods(domain_spec) -> tuple[list[tuple[str, str]], list[str]]:
    """``[(label, checkpoint name)]`` of bundled checkpoints that fit the domain, and notes."""
    notes: list[str] = []
    try:
        from napari_vesselgraph.inference import predict  # noqa: F401
    except Exception as e:  # inference not there yet
        return [], [f"`model` skipped: napari_vesselgraph.inference.predict is not available ({type(e).__name__}: {e})"]
    try:
        from napari_vesselgraph.checkpoints import list_bundled

        entries = list_bundled()
    except Exception as e:
        return [], [f"`model` skipped: cannot list bundled checkpoints ({type(e).__name__}: {e})"]
    if not entries:
        return [], ["`model` skipped: no bundled checkpoints yet"]
    out = []
    for entry in entries:
        meta = entry.get("meta") or {}
        if entry.get("error"):
            notes.append(f"checkpoint {entry['name']} skipped: {entry['error']}")
            continue
        nd = int(meta.get("ndim", 0) or 0)
        trained = meta.get("domain")
        # a checkpoint runs on its training domain and on that domain's target (source-only transfer);
        # a grey model reads colour images by luminance
        from napari_vesselgraph.synth import DOMAIN_PAIRS

        from napari_vesselgraph.synth import DOMAINS

        pair = [tgt for src, tgt in DOMAIN_PAIRS if src == trained]
        spec = DOMAINS.get(trained)
        robust = spec is not None and spec.style == "random"  # a randomised model runs on every domain of its kind
        if nd == domain_spec.ndim and domain_spec.name in (trained, *pair):
            label = "model" if domain_spec.name == trained else "model (source-only)"
            out.append((f"{label}:{entry['name']}", entry["name"]))
        elif nd == domain_spec.ndim and robust and spec.kind == domain_spec.kind:
            out.append((f"model (robust):{entry['name']}", entry["name"]))
    if not out:
        notes.append(
            f"no bundled checkpoint fits {domain_spec.name} ({domain_spec.ndim}D, {domain_spec.channels} channel(s))"
        )
    return out, notes


def run_model(image, gt, checkpoint, device):
    from napari_vesselgraph.inference import predict

    return predict(image, checkpoint=checkpoint, method="model", scale=gt.scale, device=device)


def evaluate_one(pred, gt, image, radius, groups=None):
    from napari_vesselgraph.metrics import evaluate

    kw = {"image_shape": spatial_shape(image, gt)}
    if groups is not None:
        kw["metrics"] = groups
    return evaluate(pred, gt, radius=radius, **kw)


# ----------------------------------------------------------------------------- benchmark
def benchmark(domains, n, radius, methods, device, overlay_dir=None, log=print):
    from napari_vesselgraph import synth
    from napari_vesselgraph.baseline import preset
    from napari_vesselgraph.metrics import aggregate

    rows, notes = [], []
    seeds = [TEST_SEED0 + i for i in range(n)]
    for domain in domains:
        spec = synth.DOMAINS[domain]
        runners = []
        if "skeleton" in methods:
            params = preset(domain)
            runners.append(("skeleton", lambda img, gt, p=params: run_skeleton(img, gt, p)))
        if "model" in methods:
            found, why = model_methods(spec)
            notes.extend(w for w in why if w not in notes)
            for label, ckpt in found:
                runners.append((label, lambda img, gt, c=ckpt: run_model(img, gt, c, device)))
        per_method: dict[str, list[dict]] = {label: [] for label, _ in runners}
        failed: dict[str, str] = {}
        for seed in seeds:
            try:
                image, gt = synth.make_sample(domain, seed)
            except Exception as e:
                msg = f"{domain} seed {seed}: make_sample failed ({type(e).__name__}: {e})"
                log("  " + msg)
                notes.append(msg)
                continue
            for label, fn in runners:
                if label in failed:
                    continue
                t0 = time.perf_counter()
                try:
                    pred = fn(image, gt)
                except Exception as e:
                    failed[label] = f"{type(e).__name__}: {e}"
                    log(f"  {label} on {domain} failed: {failed[label]}")
                    traceback.print_exc()
                    continue
                sec = time.perf_counter() - t0
                m = evaluate_one(pred, gt, image, radius)
                m["s_per_image"] = sec
                per_method[label].append(m)
                log(
                    f"  {domain:20s} {seed} {label:24s} {sec:6.2f}s  nodes {pred.n_nodes:5d}/{gt.n_nodes:5d}  "
                    f"smd {m['smd']:.4f} apls {m['apls']:.3f} topo {m['topo_f1']:.3f} lenQ {m['length_quality']:.3f}"
                )
                if overlay_dir is not None and seed == seeds[0]:
                    save_overlay(
                        Path(overlay_dir) / f"overlay_{domain}_{label.replace(':', '-')}_{seed}.png", image, gt, pred
                    )
        for label, _ in runners:
            if label in failed:
                notes.append(f"{label} on {domain} failed: {failed[label]}")
            ms = per_method[label]
            if not ms:
                continue
            agg = aggregate(ms)
            rows.append(
                {
                    "method": label,
                    "domain": domain,
                    **{k: agg[k] for k in agg if k.split("_std")[0] in COLUMNS},
                    "n": agg["n"],
                }
            )
    return rows, notes, seeds


def save_overlay(path: Path, image, gt, pred):
    """Image with the ground truth (green) and the prediction (red) drawn on it (3D: z max projection)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    show = image if gt.ndim == 2 else image.max(axis=0)
    fig, axs = plt.subplots(1, 2, figsize=(12, 6))
    for ax in axs:
        ax.imshow(show, cmap="gray")
        ax.axis("off")
    for g, col in ((gt, "lime"), (pred, "red")):
        p = g.nodes if g.ndim == 2 else g.nodes[:, 1:]
        for i, j in g.edges:
            axs[1].plot([p[i, 1], p[j, 1]], [p[i, 0], p[j, 0]], "-", color=col, lw=1.2)
        axs[1].plot(p[:, 1], p[:, 0], ".", color=col, ms=3)
    axs[0].set_title(path.stem)
    axs[1].set_title("ground truth (green) vs prediction (red)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write_report(table: str, notes, seeds, n, command, elapsed, radius):
    from napari_vesselgraph.baseline import PRESETS

    lines = [
        "# Graph quality on the synthetic domains",
        "",
        f"- Command: `{command}`",
        f"- Date: {dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- Machine: {os.cpu_count()} CPU cores (nproc), {cpu_name()}, Python {platform.python_version()}, "
        f"numpy {np.__version__}",
        f"- Test seeds: {seeds[0]} … {seeds[-1]} ({n} images per domain, `synth.make_sample(domain, seed)` at the "
        "domain's default shape)",
        f"- Matching radius: {radius} px; SMD normalised by the image shape; mean ± std over the images; "
        f"wall time {elapsed:.0f} s",
        "- `s_per_image`: prediction only (seconds per image, single process), not the evaluation.",
        "- Baseline (`skeleton`) defaults per domain (`baseline.PRESETS`) were chosen on validation seeds "
        f"{VAL_SEED0} + i (`--tune`), never on the test seeds:",
        "",
    ]
    for dom, p in PRESETS.items():
        lines.append(f"  - `{dom}`: `{p}`")
    lines += bundled_checkpoint_lines()
    lines += ["", table.rstrip(), ""]
    if notes:
        lines += ["Notes:", ""] + [f"- {x}" for x in notes] + [""]
    return write_section("graph-quality", "\n".join(lines).replace("# Graph quality", "## Graph quality", 1))


def bundled_checkpoint_lines() -> list[str]:
    """How each bundled checkpoint was made (the command and seed recorded in its metadata)."""
    try:
        from napari_vesselgraph.checkpoints import list_bundled

        entries = list_bundled()
    except Exception:
        return []
    out = ["- Bundled checkpoints (`model:NAME` rows; `model (source-only)` = the same checkpoint on its target domain):"]
    for e in entries:
        m = e.get("meta") or {}
        tr = m.get("training") or {}
        c = tr.get("config") or {}
        budget = f"{c.get('max_minutes', '?')} min wall-clock budget (shared machine)"
        if c.get("max_steps") and int(c["max_steps"]) < 100_000:  # a step budget, the minutes only a cap
            budget = f"budget {c['max_steps']} steps (cap {c.get('max_minutes', '?')} min)"
        val = m.get("validation") or {}
        best = f", best at step {val['step']} ({val.get('minutes', '?')} min)" if "step" in val else ""
        out.append(
            f"  - `{e['name']}`: trained on `{m.get('domain')}` by `{m.get('command')}` (seed {m.get('seed', tr.get('seed'))}"
            f", {budget}, {c.get('threads', '?')} thread(s){best})"
        )
    return out if entries else []


# ----------------------------------------------------------------------------- tuning
TUNE_GRID = {
    "sigmas": [(1.0, 2.0, 3.0), (1.0, 2.0), (1.5, 2.5), (2.0, 3.0), (2.0, 3.0, 4.0)],
    "flatten": [None, 16.0, 32.0],
    "threshold": ["otsu", "li", "triangle"],
    "threshold_factor": [0.7, 1.0, 1.5, 2.0, 3.0],
    "hysteresis": [0.5, None],
    "min_object_size": [32, 64, 150, 400],
    "prune_length": [5.0, 8.0, 12.0],
}


def tune_score(m: dict) -> float:
    """Density-independent quality used to pick the baseline defaults (higher is better)."""
    return (m["length_quality"] + m["apls"] + m["topo_f1"]) / 3.0


def tune(domains, n, radius, rounds=2, log=print):
    """Coordinate search over ``TUNE_GRID`` on validation seeds, starting from the current presets."""
    from napari_vesselgraph import synth
    from napari_vesselgraph.baseline import preset

    seeds = [VAL_SEED0 + i for i in range(n)]
    groups = ["apls", "topo", "length"]
    best_all = {}
    for domain in domains:
        data = [synth.make_sample(domain, s) for s in seeds]
        cache: dict[str, float] = {}

        def score(params):
            key = repr(sorted(params.items()))
            if key not in cache:
                vals = []
                for image, gt in data:
                    pred = run_skeleton(image, gt, params)
                    vals.append(tune_score(evaluate_one(pred, gt, image, radius, groups)))
                cache[key] = float(np.mean(vals))
            return cache[key]

        best = preset(domain)
        best_s = score(best)
        log(f"{domain}: start {best} -> {best_s:.4f}")
        for _ in range(rounds):
            improved = False
            for name, values in TUNE_GRID.items():
                for v in values:
                    cand = {**best, name: v}
                    s = score(cand)
                    if s > best_s + 1e-4:
                        best, best_s, improved = cand, s, True
                        log(f"  {domain}: {name}={v!r} -> {s:.4f}")
            if not improved:
                break
        log(f"{domain}: best {best} -> {best_s:.4f}")
        best_all[domain] = (best, best_s)
    return best_all


# ----------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10, help="test images per domain (default 10)")
    ap.add_argument("--quick", action="store_true", help="3 images per domain")
    ap.add_argument("--domains", nargs="*", default=None, help="domains (default: all of synth.DOMAINS)")
    ap.add_argument("--methods", nargs="*", default=["skeleton", "model"], choices=["skeleton", "model"])
    ap.add_argument("--radius", type=float, default=3.0, help="matching radius in pixels (default 3)")
    ap.add_argument("--device", default="auto", help="device for the model (default auto)")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--overlays", default=None, help="folder for ground truth vs prediction PNGs (first seed)")
    ap.add_argument("--tune", action="store_true", help="search baseline defaults on validation seeds instead")
    ap.add_argument("--tune-n", type=int, default=5, help="validation images per domain for --tune (default 5)")
    ap.add_argument("--tune-rounds", type=int, default=2, help="coordinate-search rounds for --tune (default 2)")
    args = ap.parse_args(argv)

    from napari_vesselgraph import synth
    from napari_vesselgraph.metrics import format_table

    domains = args.domains or list(synth.DOMAINS)
    unknown = [d for d in domains if d not in synth.DOMAINS]
    if unknown:
        ap.error(f"unknown domain(s) {unknown}; choose from {list(synth.DOMAINS)}")
    if args.tune:
        best = tune(domains, args.tune_n, args.radius, rounds=args.tune_rounds)
        print("\nPRESETS = {")
        for d, (p, s) in best.items():
            print(f"    {d!r}: {p!r},  # validation score {s:.4f}")
        print("}")
        return 0
    n = 3 if args.quick else args.n
    t0 = time.perf_counter()
    rows, notes, seeds = benchmark(domains, n, args.radius, args.methods, args.device, args.overlays)
    elapsed = time.perf_counter() - t0
    cols = ["method", "domain"] + COLUMNS + ["n"]
    table = format_table(rows, columns=cols) if rows else "(no results)\n"
    print()
    print(table)
    for x in notes:
        print("note:", x)
    if not args.no_write:
        command = "python " + " ".join([os.path.relpath(__file__, ROOT)] + (argv if argv is not None else sys.argv[1:]))
        print(f"written {write_report(table, notes, seeds, n, command, elapsed, args.radius)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
