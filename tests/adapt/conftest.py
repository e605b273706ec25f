import pytest

torch = pytest.importorskip("torch")

TINY = {
    "patch_size": [32, 32],
    "backbone_channels": [8, 16, 32],
    "stride": 4,
    "hidden": 32,
    "heads": 2,
    "ffn": 64,
    "query_grid": [4, 4],
    "enc_layers": 1,
    "dec_layers": 2,
}


def _tiny_checkpoint(folder, **model_kw):
    from napari_vesselgraph.checkpoints import save_checkpoint
    from napari_vesselgraph.model.config import ModelConfig
    from napari_vesselgraph.model.network import Relationformer
    from napari_vesselgraph.model.preprocess import input_meta

    torch.manual_seed(0)
    model = Relationformer(ModelConfig.from_dict({"ndim": 2, "in_channels": 1, **TINY, **model_kw}))
    meta = {
        "name": "tiny-fluo",
        "domain": "vessel2d-fluo",
        "input": input_meta(2, 1),
        "thresholds": {"node": 0.5, "edge": 0.5},
        "training": {"config": {"domain": "vessel2d-fluo", "image_shape": [64, 64]}},
        "validation": {"node_f1": 0.5},
    }
    return save_checkpoint(folder / "tiny-fluo.safetensors", model, meta)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A tiny grey 2D source checkpoint 'trained' on vessel2d-fluo (random weights, 64x64 source images)."""
    return _tiny_checkpoint(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="session")
def tiny_line_checkpoint(tmp_path_factory):
    """The same, with a relation head that samples the image between two nodes (as the bundled vessel models)."""
    return _tiny_checkpoint(tmp_path_factory.mktemp("ckpt_line"), relation_line=4)


@pytest.fixture(scope="session")
def fundus_folder(tmp_path_factory):
    """A small labelled target dataset folder (6 train samples of 64x64 RGB fundus images)."""
    from napari_vesselgraph.synth import write_dataset

    return write_dataset(tmp_path_factory.mktemp("target") / "fundus", "vessel2d-fundus", 6, shape=(64, 64))


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_VESSELGRAPH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def base_config(ckpt, target, **kw):
    d = {"checkpoint": str(ckpt), "target": str(target), "shots": 3, "steps": 2, "batch_size": 2, "val_every": 1}
    d.update(kw)
    return d
