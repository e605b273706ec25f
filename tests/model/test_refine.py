import numpy as np
import pytest

from napari_vesselgraph.errors import VesselGraphError
from napari_vesselgraph.model.refine import RefineSettings, refine_nodes, structure_signal


def _tube(shape, centre_y: float, sigma: float = 1.5, dark: bool = False):
    """A straight tube along the last axis, centred at ``centre_y`` on axis -2 (and mid-volume in 3D)."""
    grids = np.meshgrid(*[np.arange(s, dtype=float) for s in shape], indexing="ij")
    d2 = (grids[-2] - centre_y) ** 2
    if len(shape) == 3:
        d2 = d2 + (grids[0] - shape[0] / 2) ** 2
    img = np.exp(-d2 / (2 * sigma**2)).astype(np.float32)
    img = 0.1 + 0.8 * img
    return (1.0 - img if dark else img)[None]


@pytest.mark.parametrize("dark", [False, True])
def test_nodes_move_onto_the_centreline_2d(dark):
    patch = _tube((32, 32), centre_y=15.3, dark=dark)
    nodes = np.array([[14.0, 8.0], [16.5, 16.0], [15.0, 24.0]])
    out = refine_nodes(patch, nodes, np.ones(3))
    before, after = np.abs(nodes[:, 0] - 15.3), np.abs(out[:, 0] - 15.3)
    assert np.all(after < 0.5 * before), out
    assert np.allclose(out[:, 1], nodes[:, 1], atol=0.2)  # along the tube: hardly moves


def test_nodes_move_onto_the_centreline_3d():
    patch = _tube((16, 16, 16), centre_y=7.6)
    nodes = np.array([[8.9, 6.5, 8.0], [7.2, 8.8, 4.0]])  # centre is (8, 7.6, *)
    out = refine_nodes(patch, nodes)
    err_before = np.abs(nodes[:, :2] - [8.0, 7.6]).sum(1)
    err_after = np.abs(out[:, :2] - [8.0, 7.6]).sum(1)
    assert np.all(err_after < 0.5 * err_before), (out, err_before, err_after)


def test_max_shift_off_and_empty():
    patch = _tube((32, 32), centre_y=10.0)
    nodes = np.array([[20.0, 16.0]])  # far from the tube: the structure pulls, the cap holds
    out = refine_nodes(patch, nodes, settings=RefineSettings(max_shift=0.5, radius=3, sigma=3.0))
    assert np.linalg.norm(out - nodes) <= 0.5 + 1e-9
    assert np.array_equal(refine_nodes(patch, nodes, settings=RefineSettings.from_any(False)), nodes)
    assert refine_nodes(patch, np.zeros((0, 2))).shape == (0, 2)


def test_polarity_follows_the_confident_nodes():
    patch = _tube((32, 32), centre_y=16.0, dark=True)
    w = structure_signal(patch, np.array([[16.0, 5.0], [2.0, 2.0]]), np.array([0.9, 0.1]))
    assert w.shape == (32, 32) and w[16, 5] > 0.5 and w[2, 2] == 0  # the dark tube is the structure
    assert w.min() >= 0


def test_settings():
    assert RefineSettings.from_any(None) == RefineSettings()
    assert not RefineSettings.from_any(False).enabled
    assert RefineSettings.from_any({"iters": 1}).iters == 1
    with pytest.raises(VesselGraphError, match="unknown"):
        RefineSettings.from_any({"bogus": 1})
    with pytest.raises(VesselGraphError):
        RefineSettings(sigma=0)
    with pytest.raises(VesselGraphError):
        RefineSettings.from_any("yes")


def test_predictor_refines_unless_the_checkpoint_says_no():
    torch = pytest.importorskip("torch")
    from napari_vesselgraph.model.config import ModelConfig
    from napari_vesselgraph.model.network import Relationformer
    from napari_vesselgraph.model.predictor import PatchPredictor

    torch.manual_seed(0)
    m = Relationformer(ModelConfig(ndim=2, patch_size=32, backbone_channels=(8, 16, 32), hidden=32, heads=2, ffn=64,
                                   query_grid=4)).eval()  # fmt: skip
    with torch.no_grad():
        m.class_head.bias.copy_(torch.tensor([-3.0, 3.0]))  # every query is a confident node
    patch = _tube((32, 32), centre_y=12.5)[None]  # an untrained model puts nodes on its query grid (y 11.5, ...)
    raw = PatchPredictor(m, {"node_refinement": False}).predict_batch(patch)[0]
    ref = PatchPredictor(m, {}).predict_batch(patch)[0]
    assert PatchPredictor(m, {}).refine.enabled and not PatchPredictor(m, {"node_refinement": False}).refine.enabled
    near = np.abs(raw["nodes"][:, 0] - 12.5) < 3
    assert near.any()
    assert np.abs(ref["nodes"][near, 0] - 12.5).mean() < 0.6 * np.abs(raw["nodes"][near, 0] - 12.5).mean()
    assert np.array_equal(raw["edges"], ref["edges"]) and np.allclose(raw["edge_score"], ref["edge_score"])
