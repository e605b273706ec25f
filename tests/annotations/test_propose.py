"""Which patches to annotate next: uncertainty-ranked boxes and the random baseline (no napari, no model weights)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from napari_vesselgraph.annotations import AnnotationStore, Proposal, propose_patches, random_patches
from napari_vesselgraph.annotations.propose import as_boxes, box_origins, box_sums
from napari_vesselgraph.errors import Cancelled, VesselGraphError

UNSURE, FLAKY, STABLE = 0.5, 0.95, 1.0
REGIONS = {UNSURE: (8, 8), FLAKY: (60, 8), STABLE: (8, 60)}  # corner of a 16 x 16 square of that value


class StubPredictor:
    """A 'model' with 32 px windows: a node every 4 px where the image is bright, its confidence the pixel value.
    Nodes of value FLAKY are only seen in the left half of a window, so overlapping windows disagree on them."""

    ndim = 2
    patch_size = (32, 32)

    def __init__(self):
        self.meta = {"thresholds": {"node": 0.5, "edge": 0.5}}
        self.calls = 0

    def prepare(self, image):
        image = np.asarray(image, np.float32)
        return (image.mean(axis=-1) if image.ndim == 3 else image)[None]  # RGB -> grey

    def predict_batch(self, patches):
        self.calls += 1
        out = []
        for p in patches:
            img = p[0]
            ys, xs = np.meshgrid(np.arange(1, 32, 4), np.arange(1, 32, 4), indexing="ij")
            v = img[ys, xs].ravel()
            pts = np.stack([ys.ravel(), xs.ravel()], 1).astype(float)
            keep = (v > 0.05) & ~(np.isclose(v, FLAKY) & (pts[:, 1] >= 16))
            out.append({"nodes": pts[keep], "node_score": v[keep], "radius": np.ones(int(keep.sum())),
                        "edges": np.zeros((0, 2), np.int64), "edge_score": np.zeros(0)})  # fmt: skip
        return out


def scene() -> np.ndarray:
    img = np.zeros((96, 96), np.float32)
    for value, (y, x) in REGIONS.items():
        img[y : y + 16, x : x + 16] = value
    return img


def contains(p: Proposal, corner) -> bool:
    y, x = corner
    return all(o <= c and c + 16 <= o + s for o, s, c in zip(p.origin, p.size, (y, x)))


def test_box_sums_match_counting():
    rng = np.random.default_rng(0)
    for d, shape, size in ((2, (50, 70), (16, 20)), (3, (12, 20, 18), (6, 8, 8))):
        pts = rng.uniform(-1, np.asarray(shape), (300, d))
        w = rng.uniform(0, 1, 300)
        origins = box_origins(shape, size)
        sums = box_sums(pts, w, origins, size)
        assert sums.shape == tuple(len(o) for o in origins)
        pix = np.floor(pts + 0.5)  # the pixel a point lies in
        for idx in itertools.product(*[range(len(o)) for o in origins]):
            o = np.array([origins[ax][i] for ax, i in enumerate(idx)])
            inside = np.all((pix >= o) & (pix < o + np.asarray(size)), axis=1)
            assert sums[idx] == pytest.approx(w[inside].sum())


def test_box_origins_cover_the_image():
    assert box_origins((100,), (32,)) == [[0, 8, 16, 24, 32, 40, 48, 56, 64, 68]]
    assert box_origins((20, 40), (32, 32)) == [[0], [0, 8]]


def test_uncertain_and_disagreeing_places_come_first_background_never():
    pred = StubPredictor()
    seen = []
    props = propose_patches(scene(), predictor=pred, patch_size=32, n=5, progress=lambda d, t, i: seen.append((d, t)))
    assert pred.calls > 0 and seen[-1][0] == seen[-1][1]
    # the near-threshold square and the square the windows disagree on; nothing where the model is sure or sees
    # nothing, so fewer than 5
    assert len(props) == 2
    assert any(contains(p, REGIONS[UNSURE]) for p in props)
    assert any(contains(p, REGIONS[FLAKY]) for p in props)
    by_kind = {("unsure" if contains(p, REGIONS[UNSURE]) else "flaky"): p for p in props}
    assert by_kind["unsure"].details["near_nodes"] > 0 and by_kind["unsure"].details["disagreement"] == 0
    assert by_kind["flaky"].details["disagreement"] > 0 and by_kind["flaky"].details["near_nodes"] == 0
    assert [p.details["rank"] for p in props] == [1, 2] and props[0].score >= props[1].score
    assert "thresholds (0.50/0.50)" in props[0].why and "disagree" in props[0].why
    assert props[0].box == tuple(slice(o, o + 32) for o in props[0].origin)
    assert set(props[0].to_dict()) >= {"origin", "size", "score", "why", "near_nodes", "disagreement"}


def test_exclude_and_no_overlap(tmp_path):
    store = AnnotationStore.create(tmp_path / "ann", ndim=2, channels=1)
    store.add_patch(np.zeros((32, 32), np.float32), (0, 0))  # covers the near-threshold square
    props = propose_patches(scene(), predictor=StubPredictor(), patch_size=32, n=5, exclude=store)
    assert len(props) == 1 and contains(props[0], REGIONS[FLAKY])
    assert as_boxes(store, 2) == [((0, 0), (32, 32))]
    assert as_boxes([(slice(4, 10), slice(0, 8))], 2) == [((4, 0), (6, 8))]
    props = propose_patches(scene(), predictor=StubPredictor(), patch_size=24, n=5, step=2)
    for a, b in itertools.combinations(props, 2):
        assert not all(oa < ob + sb and ob < oa + sa for oa, sa, ob, sb in zip(a.origin, a.size, b.origin, b.size))


def test_mask_and_cancel():
    mask = np.ones((96, 96), bool)
    mask[:48, :48] = False  # the near-threshold square is outside the field of view
    props = propose_patches(scene(), predictor=StubPredictor(), patch_size=32, n=5, mask=mask)
    assert [contains(p, REGIONS[FLAKY]) for p in props] == [True]

    class Now:
        def is_set(self):
            return True

    with pytest.raises(Cancelled):
        propose_patches(scene(), predictor=StubPredictor(), patch_size=32, cancel=Now())
    with pytest.raises(VesselGraphError):
        propose_patches(scene(), predictor=StubPredictor(), patch_size=32, band=0)


def test_random_patches_seeded_inside_the_mask_not_flat():
    img = np.random.default_rng(1).random((100, 120)).astype(np.float32)
    img[:, 100:] = 0.3  # flat strip: never proposed
    mask = np.ones(img.shape, bool)
    mask[:30] = False
    a = random_patches(img, 20, n=6, seed=3, mask=mask, exclude=[((40, 0), (20, 20))])
    b = random_patches(img, 20, n=6, seed=3, mask=mask, exclude=[((40, 0), (20, 20))])
    c = random_patches(img, 20, n=6, seed=4, mask=mask)
    assert [p.origin for p in a] == [p.origin for p in b] != [p.origin for p in c]
    assert len(a) == 6 and all(np.isnan(p.score) and p.size == (20, 20) for p in a)
    boxes = [(p.origin, p.size) for p in a] + [((40, 0), (20, 20))]
    for (oa, sa), (ob, sb) in itertools.combinations(boxes, 2):
        assert not all(x < y + t and y < x + s for x, s, y, t in zip(oa, sa, ob, sb))
    for p in a:
        assert mask[p.box].mean() >= 0.5
        assert p.origin[1] + 20 <= 100 or img[p.box].std() > 0.01  # a box mostly on the flat strip is skipped


def test_rgb_image_and_3d():
    rgb = np.repeat(scene()[..., None], 3, axis=-1)
    props = propose_patches(rgb, predictor=StubPredictor(), patch_size=32, n=5)
    assert len(props) == 2 and all(len(p.origin) == 2 for p in props)
    vol = np.random.default_rng(0).random((20, 30, 30)).astype(np.float32)
    r = random_patches(vol, (8, 10, 10), n=3, seed=0)
    assert len(r) == 3 and all(len(p.origin) == 3 and p.size == (8, 10, 10) for p in r)


def test_cli_prints_proposals(tmp_path, capsys):
    import json

    torch = pytest.importorskip("torch")
    from napari_vesselgraph.checkpoints import save_checkpoint
    from napari_vesselgraph.cli import main
    from napari_vesselgraph.io import save_tiff
    from napari_vesselgraph.model import ModelConfig
    from napari_vesselgraph.model.network import Relationformer

    torch.manual_seed(0)
    cfg = ModelConfig(ndim=2, patch_size=(32, 32), backbone_channels=(8, 16, 32), hidden=32, heads=2, enc_layers=1,
                      dec_layers=1, ffn=64, query_grid=(4, 4))  # fmt: skip
    # random weights score nodes about 0.1: a node threshold there makes them uncertain
    ckpt = save_checkpoint(tmp_path / "tiny.safetensors", Relationformer(cfg).eval(),
                           {"domain": "vessel2d-fluo", "thresholds": {"node": 0.1, "edge": 0.5}})  # fmt: skip
    img = tmp_path / "img.tif"
    save_tiff(img, np.random.default_rng(0).random((96, 96)).astype(np.float32))
    args = ["annotate", "propose", str(img), "--checkpoint", str(ckpt), "-n", "2", "--device", "cpu"]
    assert main([*args, "--patch-size", "32", "--json"]) == 0
    boxes = json.loads(capsys.readouterr().out)
    assert 1 <= len(boxes) <= 2 and boxes[0]["size"] == [32, 32] and boxes[0]["rank"] == 1 and boxes[0]["why"]
    assert main([*args]) == 0  # default size: twice the model's window
    out = capsys.readouterr().out.splitlines()
    assert out and out[0].startswith("#1 origin") and "size [64, 64]" in out[0]
    assert main(["annotate", "propose", str(img), "--random", "--seed", "3", "--patch-size", "20", "-n", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and all("random (seed 3)" in line for line in out)


def test_without_a_checkpoint_the_relationformer_that_suits_the_image(monkeypatch):
    """No checkpoint: the installed Relationformer the picker ranks first for the image (a segmentation checkpoint
    has no window confidences to rank patches by)."""
    from napari_vesselgraph.checkpoints import list_bundled
    from napari_vesselgraph.checkpoints.meta import is_segmentation
    from napari_vesselgraph.checkpoints.suits import rank_checkpoints
    from napari_vesselgraph.model import predictor as predictor_mod

    if not list_bundled():
        pytest.skip("no bundled checkpoints installed")
    from skimage import data

    photo = data.retina()  # a colour fundus photo: the fundus model, not the package's first default (vessel2d-fluo)
    want = next(r for r in rank_checkpoints(photo) if not is_segmentation(r["entry"].get("meta")))
    assert want["name"] != "vessel2d-fluo"
    asked = []

    class Stop(Exception):
        pass

    def fake(checkpoint, device="cpu"):
        asked.append(checkpoint)
        raise Stop

    monkeypatch.setattr(predictor_mod, "make_predictor", fake)
    with pytest.raises(Stop):
        propose_patches(photo, n=2)
    assert asked == [want["entry"].get("path") or want["name"]]


def test_cli_propose_on_a_grey_stack_takes_a_relationformer(tmp_path, capsys):
    """The grey-stack default is a segmentation checkpoint, which has no windows to rank: the CLI takes the 3D
    Relationformer that suits the stack instead, and says so."""
    from napari_vesselgraph.checkpoints import list_bundled
    from napari_vesselgraph.checkpoints.meta import is_segmentation
    from napari_vesselgraph.cli import main

    bundled = {e["name"]: e for e in list_bundled()}
    if not any(not is_segmentation(e.get("meta")) and (e.get("meta") or {}).get("ndim") == 3 for e in bundled.values()):
        pytest.skip("no bundled 3D Relationformer")
    rng = np.random.default_rng(0)
    vol = rng.normal(10, 1, (32, 64, 64)).astype(np.float32)
    vol[14:17, 30:33, 4:60] += 40
    np.save(tmp_path / "stack.npy", vol)
    assert main(["annotate", "propose", str(tmp_path / "stack.npy"), "-n", "2", "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    name = err.split("using '")[1].split("'")[0]
    assert not is_segmentation(bundled[name].get("meta"))


def test_a_segmentation_checkpoint_is_refused_with_a_reason():
    from napari_vesselgraph.checkpoints import list_bundled
    from napari_vesselgraph.checkpoints.meta import is_segmentation

    seg = [e["name"] for e in list_bundled() if is_segmentation(e.get("meta"))]
    if not seg:
        pytest.skip("no bundled segmentation checkpoint")
    vol = np.random.default_rng(0).normal(10, 1, (16, 32, 32)).astype(np.float32)
    with pytest.raises(VesselGraphError, match="segmentation checkpoint has no node and edge confidences"):
        propose_patches(vol, checkpoint=seg[0], n=1, device="cpu")
