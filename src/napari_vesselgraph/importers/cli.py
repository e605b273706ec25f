"""`vesselgraph import masks|swc|geojson`: annotated real data -> dataset folders.

Bad input ends the command with one line (a VesselGraphError, printed by ``vesselgraph``'s main as
``vesselgraph: error: ...``, exit code 2). The output folder is checked to be writable before any work.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import VesselGraphError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one readable line instead of usage + message
        raise VesselGraphError(f"{message} (see `{self.prog} --help`)")


def _scale(text: str | None):
    if text is None:
        return None
    try:
        vals = [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise VesselGraphError(f"--scale takes numbers (one, or one per axis in z,y,x order), got {text!r}") from None
    return vals[0] if len(vals) == 1 else tuple(vals)


def _split(text: str):
    """``train`` / ``val`` / ``test``, or ``ID=SPLIT,ID=SPLIT,...`` (every imported id must be named)."""
    if "=" not in text:
        return text
    out = {}
    for part in text.split(","):
        k, sep, v = part.partition("=")
        if not sep or not k.strip():
            raise VesselGraphError(f"--split: expected ID=SPLIT pairs separated by commas, got {part!r}")
        out[k.strip()] = v.strip()
    return out


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vesselgraph import", description="Import annotated images into a dataset folder "
                "(images/, graphs/, manifest.json) for train, adapt --target and evaluate --dataset.")
    sub = p.add_subparsers(dest="kind", required=True)

    m = sub.add_parser("masks", help="images + binary vessel masks (DRIVE, vesselNN, ...)",
                       description="Pair images with binary vessel masks and turn each mask into its centre-line graph.")
    m.add_argument("images", help="folder of images (or one image file)")
    m.add_argument("masks", help="folder of masks (or one mask file)")
    m.add_argument("-o", "--output", required=True, help="dataset folder (new, empty, or a dataset to extend)")
    m.add_argument("--pattern", help="image names: '{id}_training.tif', a glob with one '*', or 're:REGEX' with a "
                   "group (default: files pair by stem)")
    m.add_argument("--mask-pattern", help="mask names, same syntax (e.g. '{id}_manual1.gif')")
    m.add_argument("--fov", help="folder (or file) of field-of-view masks: vessels outside are dropped")
    m.add_argument("--fov-pattern", help="field-of-view mask names, same syntax (e.g. '{id}_training_mask.gif')")
    m.add_argument("--ids", help="import only these ids (comma separated)")
    m.add_argument("--scale", help="pixel size: one number or one per axis (z,y,x); default from the TIFF")
    m.add_argument("--spacing", type=float, default=10.0, help="node spacing along paths in pixels (default 10)")
    m.add_argument("--prune-length", type=float, default=None,
                   help="remove spurs shorter than this (px); default 1 + 1.5 x the local radius")
    m.add_argument("--split", default="train", help="train, val, test, or ID=SPLIT,ID=SPLIT,... (default train)")
    m.add_argument("--domain", default=None, help="domain label written to the manifest")

    s = sub.add_parser("swc", help="an image stack + SWC traces (neurons)",
                       description="An image stack and its SWC traces (x = column, y = row, slice = z / z-step).")
    s.add_argument("stack", help="image stack (TIFF) the traces were drawn on")
    s.add_argument("swc", nargs="+", help="SWC file(s); several are joined into one graph")
    s.add_argument("-o", "--output", required=True, help="dataset folder (new, empty, or a dataset to extend)")
    s.add_argument("--z-step", default="1", help="one slice in x/y pixels, in the SWC's z units: 1 = z is the slice "
                   "index (default; DIADEM), or 'auto' (1 if the traces fit the stack, else the step that fits)")
    s.add_argument("--scale", help="voxel size: one number or z,y,x; default from the TIFF, else (z-step, 1, 1)")
    s.add_argument("--spacing", default="10", help="re-space nodes to ~this many px along the traces, or 'none' "
                   "to keep the SWC's nodes (default 10)")
    s.add_argument("--id", dest="sample_id", help="sample id (default: the stack's file stem)")
    s.add_argument("--split", default="train", choices=["train", "val", "test"])
    s.add_argument("--domain", default=None, help="domain label written to the manifest")

    g = sub.add_parser("geojson", help="a GeoTIFF + GeoJSON centre lines (roads)",
                       description="A GeoTIFF and GeoJSON LineStrings in the same CRS (default WGS84 lon/lat).")
    g.add_argument("geotiff", help="the GeoTIFF image")
    g.add_argument("geojson", help="GeoJSON with LineString / MultiLineString features")
    g.add_argument("-o", "--output", required=True, help="dataset folder (new, empty, or a dataset to extend)")
    g.add_argument("--tile", type=int, default=None, help="cut into TILE x TILE tiles (default: one sample)")
    g.add_argument("--region", default=None, help="left, right, top or bottom half, or Y0:Y1,X0:X1 (pixels)")
    g.add_argument("--spacing", type=float, default=10.0, help="node spacing along lines in pixels (default 10)")
    g.add_argument("--keep-empty", action="store_true", help="keep tiles that no line crosses")
    g.add_argument("--split", default="train", choices=["train", "val", "test"])
    g.add_argument("--domain", default=None, help="domain label written to the manifest")
    return p


def _region(text: str | None):
    if text is None or text.strip().lower() in ("left", "right", "top", "bottom"):
        return text
    try:
        ys, xs = text.split(",")
        sl = []
        for part in (ys, xs):
            a, b = part.split(":")
            sl.append(slice(int(a) if a.strip() else None, int(b) if b.strip() else None))
        return tuple(sl)
    except ValueError:
        raise VesselGraphError(f"--region must be left, right, top, bottom or Y0:Y1,X0:X1, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    """Run ``vesselgraph import ...``; raises VesselGraphError on bad input (the caller prints it)."""
    from ..progress import TextProgress
    from ._folder import check_writable

    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    check_writable(args.output, create=False)
    if args.kind == "masks":
        from .masks import import_masks

        out = import_masks(
            args.images, args.masks, args.output, pattern=args.pattern, mask_pattern=args.mask_pattern,
            fov=args.fov, fov_pattern=args.fov_pattern, scale=_scale(args.scale), spacing=args.spacing,
            prune_length=args.prune_length, split=_split(args.split), domain=args.domain,
            ids=[i.strip() for i in args.ids.split(",")] if args.ids else None,
            progress=TextProgress("import"),
        )
    elif args.kind == "swc":
        from .swc import import_swc

        z = args.z_step
        if z != "auto":
            try:
                z = float(z)
            except ValueError:
                raise VesselGraphError(f"--z-step must be a number or 'auto', got {z!r}") from None
        sp = None if args.spacing.lower() == "none" else args.spacing
        try:
            sp = None if sp is None else float(sp)
        except ValueError:
            raise VesselGraphError(f"--spacing must be a number or 'none', got {args.spacing!r}") from None
        out = import_swc(args.stack, args.swc, args.output, z_step=z, scale=_scale(args.scale), split=args.split,
                         domain=args.domain, spacing=sp, sample_id=args.sample_id)
    else:
        from .geojson import import_geojson

        region = _region(args.region)
        out = import_geojson(args.geotiff, args.geojson, args.output, tile=args.tile, split=args.split,
                             domain=args.domain, region=region, spacing=args.spacing, keep_empty=args.keep_empty)
    from ..synth.dataset import dataset_info

    info = dataset_info(out)
    counts = ", ".join(f"{k} {v}" for k, v in info["counts"].items() if v)
    print(f"{out}: {sum(info['counts'].values())} sample(s) ({counts}), {info['ndim']}D, domain {info.get('domain')}")
    return 0
