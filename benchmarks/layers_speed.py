"""How fast a 100,000-edge graph shows in napari: Points + Vectors, against a Shapes layer of lines.

Run under an X server (napari's vispy canvas needs one):

    xvfb-run -a python benchmarks/layers_speed.py [--edges 100000] [--shapes-limit 300]

It builds a jittered 2D grid graph with ``--edges`` edges and times

1. ``graph_to_layer_data`` (graph -> layer data tuples);
2. adding its Points + Vectors layers to a shown viewer, then processing Qt events and rendering the
   canvas once (``render()`` reads the frame back, so the GPU has finished) = "until drawn";
3. one more render (the cost of a frame while panning/zooming);
4. ``layers_to_graph`` on those layers (what saving or a widget does);
5. a Shapes layer alone holding the same lines (``add_shapes(..., shape_type="line")`` + draw), each
   size in its own process with a time limit: 10k, 20k, 50k and the full count, stopping once a size
   runs past ``--shapes-limit`` seconds (or would, judging from the previous sizes).

Prints a table and writes it as a Markdown section to ``docs/benchmarks.md (section layers-speed)``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

from _report import write_section

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def grid_graph(n_edges: int, seed: int = 0):
    """A jittered square grid with exactly ``n_edges`` edges (the last row of edges is cut)."""
    from napari_vesselgraph.graph import VesselGraph

    side = int(np.ceil(np.sqrt(n_edges / 2.0))) + 1
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side]
    nodes = np.stack([yy.ravel(), xx.ravel()], axis=1) * 10.0 + rng.uniform(-3, 3, (side * side, 2))
    idx = np.arange(side * side).reshape(side, side)
    horiz = np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()], axis=1)
    vert = np.stack([idx[:-1, :].ravel(), idx[1:, :].ravel()], axis=1)
    edges = np.concatenate([horiz, vert])[:n_edges]
    return VesselGraph(
        nodes,
        edges,
        node_attrs={"radius": rng.uniform(0.5, 2.0, len(nodes))},
        edge_attrs={"confidence": rng.uniform(0, 1, len(edges))},
    )


def _viewer():
    import napari

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1200, 900)
    _draw(viewer)
    return viewer


def _draw(viewer) -> None:
    """Process pending Qt events, then render the canvas once and read it back."""
    from qtpy.QtWidgets import QApplication

    QApplication.processEvents()
    viewer.window._qt_viewer.canvas._scene_canvas.render()
    QApplication.processEvents()


def _gl_renderer(viewer) -> str:
    try:
        from vispy.gloo import gl

        viewer.window._qt_viewer.canvas._scene_canvas.context.set_current()  # type: ignore[attr-defined]
        return str(gl.glGetParameter(gl.GL_RENDERER))
    except Exception:  # noqa: BLE001
        try:
            from vispy.gloo import gl

            return str(gl.glGetParameter(gl.GL_RENDERER))
        except Exception:  # noqa: BLE001
            return "unknown"


def bench_points_vectors(n_edges: int) -> dict:
    from napari.layers import Layer

    from napari_vesselgraph._napari.layers import graph_to_layer_data, layers_to_graph

    g = grid_graph(n_edges)
    viewer = _viewer()
    out = {"nodes": g.n_nodes, "edges": g.n_edges, "renderer": _gl_renderer(viewer)}
    # warm up: imports (pandas, colormaps) and shader compilation are not what is measured
    for t in graph_to_layer_data(grid_graph(50), name="warm-up"):
        viewer.add_layer(Layer.create(*t))
    _draw(viewer)
    viewer.layers.clear()
    _draw(viewer)

    t0 = time.perf_counter()
    tuples = graph_to_layer_data(g, name="grid")
    t1 = time.perf_counter()
    layers = [Layer.create(*t) for t in tuples]
    for layer in layers:
        viewer.add_layer(layer)
    t2 = time.perf_counter()
    _draw(viewer)
    t3 = time.perf_counter()
    _draw(viewer)
    t4 = time.perf_counter()
    vectors, points = layers
    back = layers_to_graph(points, vectors)
    t5 = time.perf_counter()
    assert back.n_edges == g.n_edges and back.n_nodes == g.n_nodes
    # which layer the frame time goes to
    points.visible = False
    _draw(viewer)
    t6 = time.perf_counter()
    _draw(viewer)
    t7 = time.perf_counter()
    points.visible, vectors.visible = True, False
    _draw(viewer)
    t8 = time.perf_counter()
    _draw(viewer)
    t9 = time.perf_counter()
    out.update(frame_vectors_only=t7 - t6, frame_points_only=t9 - t8)
    out.update(
        to_layer_data=t1 - t0,
        add_layers=t2 - t1,
        first_draw=t3 - t2,
        until_drawn=t3 - t0,
        redraw=t4 - t3,
        layers_to_graph=t5 - t4,
    )
    viewer.close()
    return out


def bench_shapes_worker(n_lines: int) -> dict:
    """Run in a child process: a Shapes layer of ``n_lines`` lines from the same grid graph."""
    g = grid_graph(n_lines)
    lines = np.stack([g.nodes[g.edges[:, 0]], g.nodes[g.edges[:, 1]]], axis=1)
    viewer = _viewer()
    viewer.add_shapes(list(lines[:20]), shape_type="line", name="warm-up")  # shaders, imports
    _draw(viewer)
    viewer.layers.clear()
    _draw(viewer)
    t0 = time.perf_counter()
    viewer.add_shapes(list(lines), shape_type="line", edge_color="magenta", edge_width=1, name="lines")
    t1 = time.perf_counter()
    _draw(viewer)
    t2 = time.perf_counter()
    _draw(viewer)
    t3 = time.perf_counter()
    viewer.close()
    return {"lines": int(len(lines)), "add_layer": t1 - t0, "first_draw": t2 - t1, "until_drawn": t2 - t0, "redraw": t3 - t2}


def bench_shapes(n_edges: int, limit: float) -> list[dict]:
    sizes = sorted({s for s in (10_000, 20_000, 50_000) if s < n_edges} | {n_edges})
    results: list[dict] = []
    for n in sizes:
        if results:
            last = results[-1]
            if "until_drawn" in last:
                predicted = last["until_drawn"] * n / last["lines"]
                if predicted > limit:
                    results.append({"lines": n, "skipped": f"not run: ~{predicted:.0f} s expected from the {last['lines']:,} run"})
                    break
            else:
                break
        cmd = [sys.executable, os.path.abspath(__file__), "--shapes-worker", str(n)]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit + 60)
        except subprocess.TimeoutExpired:
            results.append({"lines": n, "skipped": f"stopped after {time.perf_counter() - t0:.0f} s"})
            break
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not line:
            results.append({"lines": n, "skipped": f"failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}"})
            break
        results.append(json.loads(line[-1][len("RESULT ") :]))
        print(f"  shapes {n:>7,}: {results[-1]['until_drawn']:.2f} s", flush=True)
    return results


def markdown(pv: dict, shapes: list[dict], args) -> str:
    import napari

    cpu = os.cpu_count()
    rows = [
        "## napari layers for a large graph",
        "",
        f"A jittered 2D grid graph, {pv['nodes']:,} nodes and {pv['edges']:,} edges, shown in a napari "
        f"{napari.__version__} viewer (1200x900 window) under Xvfb; OpenGL renderer: {pv['renderer']}; "
        f"{cpu} CPU cores (shared), Python {platform.python_version()}. Command: "
        f"`xvfb-run -a python benchmarks/layers_speed.py --edges {args.edges} --shapes-limit {args.shapes_limit:g}`.",
        "\"Until drawn\" = from the graph to a rendered frame read back from the canvas (Qt events processed), "
        "after a warm-up with a small graph (imports and shader compilation not counted). "
        "Software OpenGL (Xvfb/llvmpipe) makes the draw columns slower than on a desktop GPU, and the "
        "machine is shared: repeated runs differ by tens of percent.",
        "",
        "| what | items | until drawn (s) | of which: build / add layer / first draw (s) | next frame (s) |",
        "|---|---:|---:|---|---:|",
        f"| Points + Vectors (`graph_to_layer_data`) | {pv['edges']:,} edges | {pv['until_drawn']:.2f} | "
        f"{pv['to_layer_data']:.2f} / {pv['add_layers']:.2f} / {pv['first_draw']:.2f} | {pv['redraw']:.3f} |",
    ]
    for r in shapes:
        if "skipped" in r:
            rows.append(f"| Shapes, `line` shapes only | {r['lines']:,} lines | — | {r['skipped']} | — |")
        else:
            rows.append(
                f"| Shapes, `line` shapes only | {r['lines']:,} lines | {r['until_drawn']:.2f} | "
                f"— / {r['add_layer']:.2f} / {r['first_draw']:.2f} | {r['redraw']:.3f} |"
            )
    rows += [
        "",
        f"`layers_to_graph` (Points + Vectors back to a VesselGraph, {pv['edges']:,} edges): "
        f"{pv['layers_to_graph']:.2f} s. Next frame with one layer shown: Vectors alone "
        f"{pv['frame_vectors_only']:.3f} s, Points ({pv['nodes']:,}) alone {pv['frame_points_only']:.3f} s.",
        "",
    ]
    done = [r for r in shapes if "until_drawn" in r]
    if done:
        big = done[-1]
        ratio = big["until_drawn"] / max(pv["until_drawn"], 1e-9)
        scale = pv["edges"] / big["lines"]
        note = (
            f"At {big['lines']:,} lines the Shapes layer took {ratio:.0f}x as long as Points + Vectors with "
            f"{pv['edges']:,} edges"
        )
        note += "." if big["lines"] == pv["edges"] else f" ({scale:.0f}x as many edges)."
        rows += [note + " Hence the design: Vectors for all edges, Shapes only for the region being edited.", ""]
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edges", type=int, default=100_000)
    ap.add_argument("--shapes-limit", type=float, default=300.0, help="seconds one Shapes size may take")
    ap.add_argument("--no-write", action="store_true", help="print only, do not write docs/benchmarks.md (section layers-speed)")
    ap.add_argument("--shapes-worker", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.shapes_worker is not None:
        print("RESULT " + json.dumps(bench_shapes_worker(args.shapes_worker)), flush=True)
        return 0

    print(f"Points + Vectors, {args.edges:,} edges ...", flush=True)
    pv = bench_points_vectors(args.edges)
    print(f"  until drawn {pv['until_drawn']:.2f} s", flush=True)
    print("Shapes lines ...", flush=True)
    shapes = bench_shapes(pv["edges"], args.shapes_limit)
    text = markdown(pv, shapes, args)
    print()
    print(text)
    if not args.no_write:
        print(f"wrote {write_section('layers-speed', text)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
