"""``vesselgraph annotate propose IMAGE``: the patches to annotate next, as the *Annotate patches* widget proposes
them (:func:`napari_vesselgraph.annotations.propose_patches`), printed one per line or as JSON."""

from __future__ import annotations

import argparse
import json


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vesselgraph annotate", description="Help choose what to annotate.")
    sub = p.add_subparsers(dest="command", required=True)
    pr = sub.add_parser(
        "propose",
        help="the patches the model is least sure about (or random ones), best first",
        description="Run the model over IMAGE and print the patches it is least sure about: node and edge "
        "confidences near its thresholds, overlapping windows that disagree. Boxes are in pixels, napari axis "
        "order (origin = corner).",
    )
    pr.add_argument("image")
    pr.add_argument("--checkpoint", default=None, help="bundled name or .safetensors (default: the one that suits)")
    pr.add_argument("-n", type=int, default=5, help="how many patches (default 5)")
    pr.add_argument("--patch-size", type=int, nargs="+", default=None, help="default: twice the model's window")
    pr.add_argument("--exclude", default=None, help="an annotation project folder: never overlap its patches")
    pr.add_argument("--mask", default=None, help="an image of the pixels that may be annotated (e.g. a field of view)")
    pr.add_argument("--channel", type=int, default=None)
    pr.add_argument("--random", action="store_true", help="random patches instead (same rules), with --seed")
    pr.add_argument("--seed", type=int, default=0)
    pr.add_argument("--device", default="auto")
    pr.add_argument("--json", action="store_true", help="print JSON (a list of boxes)")
    return p


def main(argv: list[str] | None = None) -> int:
    from ..io import load_image
    from .propose import propose_patches, random_patches
    from .store import AnnotationStore

    args = build_parser().parse_args(argv)
    exclude = AnnotationStore.open(args.exclude) if args.exclude else None
    mask = load_image(args.mask)[0] if args.mask else None
    size = None if args.patch_size is None else tuple(args.patch_size)
    if args.random:
        if size is None:
            size = 128
        props = random_patches(args.image, size, n=args.n, exclude=exclude, seed=args.seed, mask=mask,
                               channel=args.channel)  # fmt: skip
    else:
        from ..cli_common import pick_and_say

        ckpt = args.checkpoint
        if ckpt is None:  # a Relationformer (its window confidences rank the patches), as predict's tiles need
            ckpt = pick_and_say(args.image, args.channel, tiled=True)
        props = propose_patches(args.image, checkpoint=ckpt, patch_size=size, n=args.n, exclude=exclude, mask=mask,
                                channel=args.channel, device=args.device)  # fmt: skip
    if args.json:
        print(json.dumps([p.to_dict() for p in props], indent=1))
    else:
        for p in props:
            score = "random" if args.random else f"score {p.score:.2f}"
            print(f"#{p.details.get('rank')} origin {list(p.origin)} size {list(p.size)} {score}: {p.why}")
        if not props:
            print("no patch to propose (nothing uncertain outside the excluded patches)")
    return 0
