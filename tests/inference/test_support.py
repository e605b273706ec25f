"""Image support of predicted edges (inference.support) and the clean-up setting min_support."""

import numpy as np
import pytest

from napari_vesselgraph.graph import VesselGraph
from napari_vesselgraph.inference import predict
from napari_vesselgraph.inference.postprocess import CleanupSettings, finish_graph
from napari_vesselgraph.inference.support import N_SAMPLES, drop_unsupported, sample_support


def _line_image():
    img = np.zeros((40, 60), np.float32)
    img[20, 5:55] = 1.0  # a bright one-pixel line on row 20
    return img


def _two_edges():
    """One edge on the line (one pixel off it: the maximum filter still finds it), one across the dark."""
    nodes = np.array([[21.0, 10.0], [21.0, 40.0], [5.0, 10.0], [5.0, 50.0], [30.0, 30.0]])
    edges = np.array([[0, 1], [2, 3]])
    return VesselGraph(nodes, edges, edge_attrs={"confidence": np.array([0.9, 0.9])})


def test_sample_support_bright_on_the_line_zero_in_the_dark():
    g = _two_edges()
    a, b = g.nodes[g.edges[:, 0]], g.nodes[g.edges[:, 1]]
    s = sample_support(_line_image(), a, b)
    assert s == pytest.approx([1.0, 0.0])
    # half of the samples on the line: half the support; an offset shifts the image, not the graph
    half = sample_support(_line_image(), np.array([[20.0, 30.0]]), np.array([[20.0, 70.0]]))
    assert half[0] == pytest.approx(np.mean(np.linspace(30, 70, N_SAMPLES).round() < 55 + 1))
    shifted = sample_support(_line_image()[10:], a, b, offset=(10, 0))
    assert shifted == pytest.approx(s)


def test_drop_unsupported_drops_dark_edges_and_the_nodes_they_leave_alone():
    g = _two_edges()
    g.edge_attrs["support"] = np.array([0.8, 0.1])
    out = drop_unsupported(g, 0.5)
    assert out.n_edges == 1 and out.n_nodes == 3  # the isolated node 4 had no edge: kept
    assert np.allclose(out.nodes[out.edges[0]], g.nodes[[0, 1]])
    assert drop_unsupported(g, 0.0) is g  # off
    del g.edge_attrs["support"]
    assert drop_unsupported(g, 0.5) is g  # nothing measured: nothing dropped
    # through the clean-up: the setting, its default (off) and its record in the metadata
    g.edge_attrs["support"] = np.array([0.8, 0.1])
    off = finish_graph(g, 0.5, 0.5, CleanupSettings.off())
    on = finish_graph(g, 0.5, 0.5, CleanupSettings.off().replace(min_support=0.5))
    assert (off.n_edges, on.n_edges) == (2, 1) and on.metadata["postprocess"]["min_support"] == 0.5
    assert CleanupSettings().min_support == 0.0


def _tiny_predictor():
    pytest.importorskip("torch")
    from napari_vesselgraph.model import ModelConfig
    from napari_vesselgraph.model.network import Relationformer
    from napari_vesselgraph.model.predictor import PatchPredictor

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)  # the random weights do not depend on the tests run before
    cfg = ModelConfig(ndim=2, patch_size=(32, 32), backbone_channels=(8, 16, 32), hidden=32, heads=2,
                      enc_layers=1, dec_layers=1, ffn=64, query_grid=(4, 4))  # fmt: skip
    return PatchPredictor(Relationformer(cfg), {"name": "tiny-random"}, device="cpu")


def test_predict_measures_support_on_the_image_the_model_saw():
    """The raw graph's ``support`` is what ``sample_support`` gives on the checkpoint's normalised image, and
    ``min_support`` removes exactly the edges below it."""
    pred = _tiny_predictor()
    rng = np.random.default_rng(0)
    img = (rng.random((70, 90)) * 255).astype(np.uint8)
    raw = predict(img, predictor=pred, keep_raw=True, tile_size=40)  # several tiles
    assert raw.n_edges > 0 and raw.metadata["n_tiles"] > 1
    norm = np.asarray(pred.prepare(img), np.float32).mean(axis=0)
    a, b = raw.nodes[raw.edges[:, 0]], raw.nodes[raw.edges[:, 1]]
    assert raw.edge_attrs["support"] == pytest.approx(sample_support(norm, a, b), abs=1e-5)
    cut = float(np.median(raw.edge_attrs["support"]))
    plain = predict(img, predictor=pred, node_threshold=0.0, edge_threshold=0.0, postprocess=False)
    assert "support" not in plain.edge_attrs  # not measured when nothing uses it
    kept = predict(img, predictor=pred, node_threshold=0.0, edge_threshold=0.0, postprocess=False, min_support=cut)
    assert kept.metadata["postprocess"]["min_support"] == cut
    assert 0 < kept.n_edges < plain.n_edges
    assert np.all(kept.edge_attrs["support"] >= cut)


def test_threshold_selection_chooses_min_support_where_it_pays():
    """Held-out selection (adapt): with a ``support`` column, min_support is searched at the chosen thresholds;
    a true edge on the line and a false one in the dark -> a support threshold that drops the false one."""
    from napari_vesselgraph.model.thresholds import select_thresholds

    raw = _two_edges()
    raw.node_attrs["confidence"] = np.full(raw.n_nodes, 0.9)
    raw.edge_attrs["support"] = np.array([1.0, 0.0])
    gt = VesselGraph(raw.nodes[:2], np.array([[0, 1]]))
    off = CleanupSettings.off().to_dict()
    *_, out = select_thresholds([raw], [gt], ((0.5,), (0.5,)), off, shapes=[(40, 60)])
    assert out["min_support"] == 0.3 and out["edge_f1"] == pytest.approx(1.0)
    *_, nothing = select_thresholds([raw], [gt], ((0.5,), (0.5,)), off, shapes=[(40, 60)], support_grid=())
    assert "min_support" not in nothing and nothing["edge_f1"] < 1.0
    del raw.edge_attrs["support"]
    *_, plain = select_thresholds([raw], [gt], ((0.5,), (0.5,)), off, shapes=[(40, 60)])
    assert "min_support" not in plain


def test_brightness_is_image_wide_and_tells_a_dim_fibre_from_a_bright_one():
    """``brightness``: the raw image stretched from its median to its brightest structures, the same for every
    tile; a dim fibre keeps a low brightness where a locally normalised model (and ``support``) sees it as
    bright as the bright one. ``min_brightness`` drops it; off by default; recorded in the metadata."""
    from napari_vesselgraph.inference.reader import ImageSource
    from napari_vesselgraph.inference.support import BRIGHT_PERCENTILE, brightness_stats, edge_brightness

    img = np.zeros((40, 60), np.float32)
    img[20, 5:55] = 100.0  # the bright fibre
    img[5, 5:55] = 10.0  # a dim one
    src = ImageSource(img, 2, False)
    lo, hi = brightness_stats(src)
    assert lo == 0.0 and hi == pytest.approx(np.percentile(img, BRIGHT_PERCENTILE))
    nodes = np.array([[20.0, 10.0], [20.0, 40.0], [5.0, 10.0], [5.0, 50.0]])
    g = VesselGraph(nodes, np.array([[0, 1], [2, 3]]), edge_attrs={"confidence": np.array([0.9, 0.9])})
    whole = edge_brightness(g, src, [((0, 40), (0, 60))])
    assert whole == pytest.approx([1.0, 0.1])
    tiled = edge_brightness(g, src, [((0, 12), (0, 60)), ((12, 40), (0, 60))])  # each edge in its own box
    assert tiled == pytest.approx(whole)
    # an RGB image: the channels are averaged, as for support
    rgb = ImageSource(np.repeat(img[..., None], 3, axis=-1), 2, True)
    assert edge_brightness(g, rgb, [((0, 40), (0, 60))]) == pytest.approx(whole)
    g.edge_attrs["brightness"] = whole
    assert CleanupSettings().min_brightness == 0.0
    on = finish_graph(g, 0.5, 0.5, CleanupSettings.off().replace(min_brightness=0.5))
    assert on.n_edges == 1 and np.allclose(on.nodes[on.edges[0]], nodes[[0, 1]])
    assert on.metadata["postprocess"]["min_brightness"] == 0.5
    assert drop_unsupported(g, 0.5) is g  # the support step does not read the brightness column


def test_predict_measures_brightness_and_selection_chooses_min_brightness():
    from napari_vesselgraph.inference.support import brightness_stats, sample_support
    from napari_vesselgraph.inference.reader import ImageSource
    from napari_vesselgraph.model.thresholds import select_thresholds

    pred = _tiny_predictor()
    rng = np.random.default_rng(1)
    img = (rng.random((70, 90)) * 255).astype(np.uint8)
    raw = predict(img, predictor=pred, keep_raw=True, tile_size=40)
    lo, hi = brightness_stats(ImageSource(img, 2, False))
    norm = np.clip((img.astype(np.float32) - lo) / (hi - lo), 0, 1)
    a, b = raw.nodes[raw.edges[:, 0]], raw.nodes[raw.edges[:, 1]]
    assert raw.edge_attrs["brightness"] == pytest.approx(sample_support(norm, a, b), abs=1e-5)
    plain = predict(img, predictor=pred, node_threshold=0.0, edge_threshold=0.0, postprocess=False)
    assert "brightness" not in plain.edge_attrs
    cut = float(np.median(raw.edge_attrs["brightness"]))
    kept = predict(img, predictor=pred, node_threshold=0.0, edge_threshold=0.0, postprocess=False,
                   min_brightness=cut)  # fmt: skip
    assert np.all(kept.edge_attrs["brightness"] >= cut) and kept.n_edges < plain.n_edges
    # held-out selection: a true edge on a bright fibre, a false one on a dim fibre that support calls bright
    sel = _two_edges()
    sel.node_attrs["confidence"] = np.full(sel.n_nodes, 0.9)
    sel.edge_attrs["support"] = np.array([1.0, 1.0])
    sel.edge_attrs["brightness"] = np.array([1.0, 0.15])
    gt = VesselGraph(sel.nodes[:2], np.array([[0, 1]]))
    *_, out = select_thresholds([sel], [gt], ((0.5,), (0.5,)), CleanupSettings.off().to_dict(), shapes=[(40, 60)])
    assert out["min_support"] == 0.0 and out["min_brightness"] == 0.2 and out["edge_f1"] == pytest.approx(1.0)


def test_the_reader_keeps_the_brightness_reference_of_what_it_read():
    """Whole-image and tiled readers measure the brightness stretch on the pixels they read anyway (no second
    read of a lazy image), the same as :func:`brightness_stats` samples; strided alike for big images."""
    from napari_vesselgraph.inference.reader import ImageSource, PatchReader, _strided_sample, _strided_view
    from napari_vesselgraph.inference.support import brightness_stats

    pred = _tiny_predictor()
    img = (np.random.default_rng(2).random((70, 90)) * 255).astype(np.uint8)
    src = ImageSource(img, 2, False)
    ref = brightness_stats(src)
    assert PatchReader(src, pred, mode="whole").brightness_stats == pytest.approx(ref)
    assert PatchReader(src, pred, mode="tiles").brightness_stats == pytest.approx(ref)
    assert PatchReader(src, pred, mode="tiles", stats=None).brightness_stats is None  # stats from elsewhere
    np.testing.assert_array_equal(_strided_view(img, src, budget=500), _strided_sample(src, budget=500))
