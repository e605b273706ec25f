"""Throughput of the synthetic generators (samples per second on one core).

Run: ``python benchmarks/synth_speed.py [--n N] [--domains a,b]``. Targets: >= 50 samples/s for
2D 128x128 domains and >= 5 samples/s for 3D 64x64x64 domains, on one CPU core.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from _report import cpu_name, write_section

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")


def main(argv=None) -> int:
    from napari_vesselgraph.synth import DOMAINS, make_geometry, make_sample, render

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=40, help="samples per domain (3D: a quarter)")
    ap.add_argument("--domains", default=",".join(DOMAINS))
    ap.add_argument("--no-write", action="store_true", help="print only; do not update docs/benchmarks.md")
    args = ap.parse_args(argv)
    rows = []
    print("samples/s from wall-clock time and from this process's CPU time (the CPU figure is what one")
    print("free core gives when the machine is shared); geometry/render: CPU ms per sample")
    head = f"{'domain':<22}{'shape':<12}{'wall /s':>9}{'CPU /s':>8}"
    print(head + f"{'geometry':>10}{'render':>8}{'nodes':>7}{'edges':>7}")
    for name in args.domains.split(","):
        spec = DOMAINS[name]
        n = args.n if spec.ndim == 2 else max(4, args.n // 4)
        make_sample(name, 0)  # warm-up (imports, caches)
        t0, c0 = time.perf_counter(), time.process_time()
        nodes = edges = 0
        for s in range(1, n + 1):
            _, g = make_sample(name, s)
            nodes += g.n_nodes
            edges += g.n_edges
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        c0 = time.process_time()
        geoms = [make_geometry(spec.kind, s, spec.shape) for s in range(1, n + 1)]
        t_geom = (time.process_time() - c0) / n
        c0 = time.process_time()
        for s, geom in zip(range(1, n + 1), geoms):
            render(geom, name, s)
        t_render = (time.process_time() - c0) / n
        shape = "x".join(map(str, spec.shape))
        rows.append(
            f"| {name} | {shape} | {n} | {n / wall:.1f} | {n / cpu:.1f} | {1000 * t_geom:.1f} | {1000 * t_render:.1f} "
            f"| {nodes / n:.0f} / {edges / n:.0f} |"
        )
        print(
            f"{name:<22}{shape:<12}{n / wall:>9.1f}{n / cpu:>8.1f}{1000 * t_geom:>10.1f}{1000 * t_render:>8.1f}"
            f"{nodes / n:>7.0f}{edges / n:>7.0f}"
        )
    if not args.no_write:
        command = "python benchmarks/synth_speed.py " + " ".join(argv if argv is not None else sys.argv[1:])
        md = [
            "## Synthetic generator throughput",
            "",
            f"Command: `{command.strip()}`. Machine: {os.cpu_count()} CPU cores (shared), {cpu_name()}. "
            "Samples/s from wall-clock time and from this process's CPU time (what one free core gives when "
            "the machine is shared). Targets: >= 50/s for 2D 128x128, >= 5/s for 3D 64x64x64.",
            "",
            "| domain | shape | samples | wall /s | CPU /s | geometry ms | render ms | nodes / edges |",
            "|---|---|---:|---:|---:|---:|---:|---|",
            *rows,
        ]
        print("written to", write_section("synth-speed", "\n".join(md)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
