"""Cross-domain adaptation of a Relationformer checkpoint to the user's (target) domain.

``adapt(config, progress=None, cancel=None, log=print) -> Path`` of the adapted checkpoint. Methods
(:data:`METHODS`):

- ``contrastive``: task loss on source and K labelled target patches + cross-domain supervised contrastive
  alignment of object tokens (node / background) and relation embeddings (edge / no edge) (:mod:`.losses`);
- ``finetune``: the same loop without the alignment term;
- ``adversarial``: the same loop + gradient-reversal image-level and graph-level domain discriminators
  (Berger et al. 2024);
- ``translation``: an unpaired CycleGAN translator (target -> source appearance) trained on unlabelled target
  images and bundled into the checkpoint; inference applies it first (:mod:`.translate`);
- ``calibrate``: no training: the node/edge thresholds and the clean-up settings ``min_support`` and
  ``min_brightness`` chosen on the labelled shots, the source weights kept (:mod:`.calibrate`). A segmentation
  checkpoint (:mod:`napari_vesselgraph.model.segment`) adapts by this method only: its probability threshold and
  ``min_brightness`` (:mod:`.segcalibrate`); it is fine-tuned by ``vesselgraph train-seg --init``.

The output checkpoint keeps the source metadata and adds ``adaptation`` (method, K, the shot and held-out ids,
source, target, settings, ``before``/``after`` metrics on the held-out target samples), ``target_domain`` and
the ``command``. ``vesselgraph adapt ...`` is :func:`main`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import VesselGraphError
from .config import METHODS, TRAIN_LAYERS, AdaptConfig

__all__ = ["METHODS", "TRAIN_LAYERS", "AdaptConfig", "adapt", "main"]


def adapt(
    config: dict | AdaptConfig,
    progress: Callable[[int, int, dict], None] | None = None,
    cancel=None,
    log: Callable[[str], None] = print,
) -> Path:
    """Adapt ``config.checkpoint`` to the target; returns the path of the adapted checkpoint. A config dict with a
    ``target`` folder and no ``checkpoint`` starts from the installed checkpoint that suits the folder's images
    (:func:`.data.choose_source`, said through ``log``).

    ``progress(step, total, info)`` is called every step (``info["loss"]``; ``info["val"]`` after each
    held-out validation). ``cancel.is_set()`` is checked every step: the run then stops and the last good
    checkpoint (written atomically) is returned.
    """
    import torch

    from ..checkpoints import load_checkpoint
    from ..model.predictor import select_device
    from . import calibrate, loop, translate
    from .data import load_target

    if not isinstance(config, AdaptConfig):
        from .data import choose_source

        config = choose_source(dict(config), lambda line: log(f"adapt: {line}"))
    cfg = config if isinstance(config, AdaptConfig) else AdaptConfig.from_dict(dict(config))
    cfg.validate()
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    device = select_device(cfg.device)
    from ..checkpoints import read_metadata
    from ..checkpoints.store import resolve
    from ..checkpoints.meta import is_segmentation

    first = read_metadata(resolve(cfg.checkpoint))
    if is_segmentation(first):
        return _adapt_segmentation(cfg, first, device, progress, cancel, log)
    model, meta = load_checkpoint(cfg.checkpoint, device="cpu")
    if progress is not None:  # the first update comes before the target is read (seconds for big images)
        progress(0, cfg.steps, {"phase": "reading the target samples"})
    data = load_target(cfg, model.cfg.ndim, log=log, meta=meta)
    out = loop.output_path(cfg, meta, data)
    from ..io import check_writable

    check_writable(out, suffixes=(".safetensors",), parents=True)  # before the run, not after it
    try:
        runner = {"translation": translate.run, "calibrate": calibrate.run}.get(cfg.method, loop.run)
        path = runner(cfg, model, meta, data, out, device, progress=progress, cancel=cancel, log=log)
    finally:
        model.to("cpu")
        del model
        loop.free_device(device)
    log(f"adapted checkpoint: {path}")
    return path


def _adapt_segmentation(cfg: AdaptConfig, meta: dict, device, progress, cancel, log) -> Path:
    """A segmentation checkpoint (metadata ``meta``) adapts by ``calibrate`` (:mod:`.segcalibrate`); it is
    fine-tuned by ``vesselgraph train-seg --init``."""
    from ..model.segment import SegConfig
    from . import loop, segcalibrate
    from .data import load_target

    if cfg.method != "calibrate":
        raise VesselGraphError(
            f"{cfg.checkpoint} is a segmentation checkpoint: it adapts by --method calibrate (threshold and "
            "brightness chosen on the shots), or is fine-tuned on them by `vesselgraph train-seg --init`"
        )
    seg_cfg = SegConfig.from_dict(meta.get("segmentation"), str(cfg.checkpoint))
    if progress is not None:
        progress(0, 1, {"phase": "reading the target samples"})
    data = load_target(cfg, seg_cfg.ndim, log=log, meta=meta)
    out = loop.output_path(cfg, meta, data)
    from ..io import check_writable

    check_writable(out, suffixes=(".safetensors",), parents=True)
    path = segcalibrate.run(cfg, data, out, device, progress=progress, cancel=cancel, log=log)
    log(f"adapted checkpoint: {path}")
    return path


def main(argv: list[str] | None = None) -> int:
    """``vesselgraph adapt`` (see :mod:`.cli`)."""
    from .cli import main as cli_main

    return cli_main(argv)
