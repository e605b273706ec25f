"""Sample data and manifest."""

import subprocess
import sys


def test_retina_sample_opens(make_napari_viewer):
    viewer = make_napari_viewer()
    layers = viewer.open_sample("napari-vesselgraph", "retina")
    assert len(layers) == 1
    layer = layers[0]
    assert layer.name == "Retina (fundus photo)"
    assert layer.rgb and layer.data.shape == (1411, 1411, 3)


def test_manifest_validates_with_imports():
    out = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", "napari-vesselgraph", "--imports"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_plugin_modules_import_light():
    """napari imports the reader/writer/sample modules at start-up: they must not pull in heavy libraries."""
    code = (
        "import sys\n"
        "import napari_vesselgraph._napari._reader, napari_vesselgraph._napari._writer\n"
        "import napari_vesselgraph._napari._sample_data, napari_vesselgraph._napari\n"
        "heavy = [m for m in ('napari', 'torch', 'scipy', 'skimage', 'pandas', 'qtpy') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
