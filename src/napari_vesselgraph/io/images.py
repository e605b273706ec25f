"""Loading images together with their voxel size, and saving TIFFs that keep it.

``load_image(path) -> (array, scale)`` understands

* TIFF (``.tif``/``.tiff``, ImageJ and OME-TIFF included) through tifffile. The voxel size comes from
  OME-XML ``PhysicalSizeX/Y/Z`` when present, else from the ImageJ description (``spacing`` for z,
  ``unit``) and the ``XResolution``/``YResolution`` tags. Plain TIFFs whose resolution is in
  centimetres are converted; resolutions per inch (print DPI) are ignored.
* PNG, JPEG, BMP, GIF through imageio (scale 1).
* ``.npy`` files (scale 1).
* Zarr and OME-Zarr folders (``.zarr``, v2 or v3), opened lazily as a dask array: for OME-Zarr the
  highest-resolution level, with the scale from the ``multiscales`` ``coordinateTransformations``.
* TIFFs larger than :data:`LAZY_TIFF_BYTES` (or any TIFF with ``lazy=True``) are opened lazily too: a
  memory map when the pixels are stored contiguously and uncompressed, else a dask array over
  tifffile's Zarr view of the tiles/strips (level 0 of a pyramid). ``.npy`` files are memory-mapped
  with ``lazy=True``.

Damaged, absurd or incomplete files end in one clear :class:`~napari_vesselgraph.errors.VesselGraphError`
naming the file, for lazy reads too (a chunk or tile that cannot be decoded is reported when it is read):

* a TIFF whose pixel data would end past the end of the file is *truncated* and refused when it is opened;
* a TIFF that declares far more pixels than its size can hold (over :data:`BOMB_RATIO` times its size in
  bytes, and over :data:`BOMB_MIN_BYTES`: a crafted or broken "decompression bomb"), and an eager read that
  needs more memory than the machine has available, are refused unless ``allow_large=True`` (CLI
  ``--allow-large-image``; environment ``NAPARI_VESSELGRAPH_ALLOW_LARGE_IMAGE=1``);
* a Zarr chunk missing from the store is an error when the region holding it is read, not zeros, unless
  ``allow_missing_chunks=True`` (CLI ``--allow-missing-chunks``; environment
  ``NAPARI_VESSELGRAPH_ALLOW_MISSING_CHUNKS=1``): Zarr writers may skip chunks that hold only the fill value,
  and such stores need the option.

Arrays come back as stored (no intensity normalisation) in napari axis order, with singleton axes
removed and a channel axis moved last, so a 2D image is ``(Y, X)`` or ``(Y, X, C)`` and a volume is
``(Z, Y, X)``. ``scale`` has one entry per *spatial* axis (2 for an RGB ``(Y, X, 3)`` image) and is in
micrometres wherever the file names its unit; it is all ones when the file carries no voxel size.
"""

from __future__ import annotations

import math
import os
import re
from xml.etree import ElementTree as ET

import numpy as np

from ..errors import VesselGraphError
from .atomic import atomic_write

__all__ = ["load_image", "save_tiff", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".npy", ".zarr")
LAZY_TIFF_BYTES = 2**30  # TIFFs above this many bytes of pixels are not read into memory by default
BOMB_RATIO = 1000  # declared pixel bytes per byte of file above which a TIFF is refused ...
BOMB_MIN_BYTES = 64 * 2**20  # ... when it also declares more than this
ALLOW_LARGE_ENV = "NAPARI_VESSELGRAPH_ALLOW_LARGE_IMAGE"
ALLOW_MISSING_ENV = "NAPARI_VESSELGRAPH_ALLOW_MISSING_CHUNKS"
_TIFF = (".tif", ".tiff")
_IMAGEIO = (".png", ".jpg", ".jpeg", ".bmp", ".gif")

# factors to micrometres
_UNITS = {
    "m": 1e6, "meter": 1e6, "metre": 1e6,
    "cm": 1e4, "centimeter": 1e4, "centimetre": 1e4,
    "mm": 1e3, "millimeter": 1e3, "millimetre": 1e3,
    "um": 1.0, "µm": 1.0, "μm": 1.0, "micron": 1.0, "microns": 1.0, "micrometer": 1.0, "micrometre": 1.0,
    "\\u00b5m": 1.0, "nm": 1e-3, "nanometer": 1e-3, "nanometre": 1e-3,
    "å": 1e-4, "angstrom": 1e-4, "pm": 1e-6, "picometer": 1e-6, "inch": 25400.0, "in": 25400.0,
}  # fmt: skip


def _unit_factor(unit) -> float | None:
    """Factor that turns ``unit`` into micrometres; None when the unit is unknown or 'pixel'."""
    if unit is None:
        return 1.0
    u = str(unit).strip().lower()
    if u in ("", "pixel", "pixels", "px"):
        return None
    return _UNITS.get(u)


def _broken(path, problem: str) -> VesselGraphError:
    return VesselGraphError(f"{os.fspath(path)}: {problem}")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else ""


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation now (None when unknown)."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - psutil missing or unsupported platform: /proc/meminfo
        psutil = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _human(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PB"  # pragma: no cover


def _is_zarr(path: str) -> bool:
    if path.rstrip("/\\").lower().endswith(".zarr"):
        return True
    return os.path.isdir(path) and any(
        os.path.exists(os.path.join(path, f)) for f in (".zarray", ".zgroup", ".zattrs", "zarr.json")
    )


# ================================================================ loading
def load_image(
    path, lazy: bool | None = None, allow_large: bool | None = None, allow_missing_chunks: bool | None = None
) -> tuple[np.ndarray, tuple[float, ...]]:
    """Load an image file and its voxel size.

    ``lazy``: ``True`` opens TIFF and ``.npy`` files without reading their pixels (memory map or dask
    array); ``None`` (default) does so for TIFFs above :data:`LAZY_TIFF_BYTES`; Zarr is always lazy.

    ``allow_large``: accept a TIFF that declares far more pixels than its file size can hold, and an eager
    read larger than the memory available (default: the ``NAPARI_VESSELGRAPH_ALLOW_LARGE_IMAGE`` environment
    variable, else refused). ``allow_missing_chunks``: read chunks missing from a Zarr store as its fill value
    (default: ``NAPARI_VESSELGRAPH_ALLOW_MISSING_CHUNKS``, else reading them is an error).

    Returns
    -------
    (array, scale)
        ``array`` is a numpy array, or a dask array for Zarr; ``scale`` is a tuple of floats, one per
        spatial axis, in micrometres per pixel where the file says so (else 1.0).

    Raises
    ------
    VesselGraphError
        The file is missing, of an unsupported kind, or cannot be decoded.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise _broken(path, "file not found")
    if allow_large is None:
        allow_large = _env_flag(ALLOW_LARGE_ENV)
    if allow_missing_chunks is None:
        allow_missing_chunks = _env_flag(ALLOW_MISSING_ENV)
    low = path.rstrip("/\\").lower()
    suffix = os.path.splitext(low)[1]
    try:
        if _is_zarr(path):
            return _load_zarr(path, bool(allow_missing_chunks))
        if os.path.isdir(path):
            raise _broken(path, "is a folder but not a Zarr store")
        if os.path.getsize(path) == 0:
            raise _broken(path, "file is empty")
        if suffix in _TIFF:
            return _load_tiff(path, lazy, bool(allow_large))
        if suffix in _IMAGEIO:
            return _load_imageio(path)
        if suffix == ".npy":
            return _load_npy(path, bool(lazy))
    except VesselGraphError:
        raise
    except MemoryError:
        raise
    except Exception as e:  # decoders raise all sorts of things on broken files
        raise _broken(path, f"cannot read the image ({type(e).__name__}: {_first_line(e)})") from e
    known = ", ".join(IMAGE_SUFFIXES)
    raise _broken(path, f"unsupported image file type {suffix or '(no suffix)'!r}; supported: {known}")


def _channels_last_guess(shape: tuple[int, ...]) -> bool:
    """napari's rule of thumb: a trailing axis of length 3 or 4 holds colour channels."""
    return len(shape) in (3, 4) and shape[-1] in (3, 4)


def _finish(arr, spatial_scale: list[float] | None, channels: bool):
    n_spatial = arr.ndim - (1 if channels else 0)
    if n_spatial < 2:
        raise VesselGraphError(f"the image has shape {tuple(arr.shape)}; expected a 2D or 3D image")
    scale = [1.0] * n_spatial
    if spatial_scale:
        k = min(len(spatial_scale), n_spatial)
        scale[n_spatial - k :] = spatial_scale[len(spatial_scale) - k :]
    scale = [float(s) if (s and math.isfinite(s) and s > 0) else 1.0 for s in scale]
    return arr, tuple(scale)


def _load_npy(path: str, lazy: bool = False):
    try:
        arr = np.load(path, allow_pickle=False, mmap_mode="r" if lazy else None)
    except (ValueError, OSError, EOFError) as e:
        raise _broken(path, f"not a valid .npy file ({_first_line(e)})") from None
    if not isinstance(arr, np.ndarray):
        raise _broken(path, "not a .npy array file")
    if arr.dtype.kind not in "biuf":
        raise _broken(path, f"holds {arr.dtype} values, not an image")
    return _finish(arr, None, _channels_last_guess(arr.shape))


def _load_imageio(path: str):
    import imageio.v3 as iio

    arr = np.asarray(iio.imread(path))
    channels = arr.ndim == 3 and arr.shape[-1] in (2, 3, 4)
    if arr.ndim == 4 and arr.shape[-1] in (3, 4):  # animated GIF: frames x Y x X x C
        channels = True
    return _finish(arr, None, channels)


def _rational(value) -> float | None:
    try:
        if isinstance(value, tuple) and len(value) == 2:
            num, den = value
            return float(num) / float(den) if den else None
        return float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None


def _ome_sizes(xml: str) -> dict[str, float]:
    """PhysicalSizeX/Y/Z of the first OME image, in micrometres."""
    out: dict[str, float] = {}
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return out
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] != "Pixels":
            continue
        for ax in "XYZ":
            v = el.get(f"PhysicalSize{ax}")
            if v is None:
                continue
            factor = _unit_factor(el.get(f"PhysicalSize{ax}Unit", "µm"))
            try:
                size = float(v)
            except ValueError:
                continue
            if factor is not None and size > 0:
                out[ax] = size * factor
        break
    return out


def _tiff_sizes(tif) -> dict[str, float]:
    """Voxel size (µm) per axis letter from OME-XML, else ImageJ metadata and resolution tags."""
    if getattr(tif, "is_ome", False) and tif.ome_metadata:
        sizes = _ome_sizes(tif.ome_metadata)
        if sizes:
            return sizes
    sizes: dict[str, float] = {}
    page = tif.pages[0]
    tags = page.tags
    ij = tif.imagej_metadata if getattr(tif, "is_imagej", False) else None
    if ij is not None:
        factor = _unit_factor(ij.get("unit"))
        if factor is None:
            return sizes
    else:
        unit_tag = tags.get("ResolutionUnit")
        unit = int(unit_tag.value) if unit_tag is not None else 2
        # 1 = none, 2 = inch (print DPI: no physical meaning for microscopy), 3 = centimetre
        factor = {3: 1e4, 4: 1e3, 5: 1.0}.get(unit)
        if factor is None:
            return sizes
    for ax, tagname in (("X", "XResolution"), ("Y", "YResolution")):
        tag = tags.get(tagname)
        if tag is None:
            continue
        per_unit = _rational(tag.value)
        if per_unit and per_unit > 0:
            sizes[ax] = factor / per_unit
    if ij is not None and ij.get("spacing") is not None:
        try:
            z = float(ij["spacing"])
        except (TypeError, ValueError):
            z = 0.0
        if z > 0:
            sizes["Z"] = z * factor
    return sizes


def _lazy_tiff(tif, series, path: str):
    """The pixels of ``series`` without reading them: a memory map, or a dask array over its Zarr view
    (the open ``tif`` stays referenced by the store)."""
    import tifffile

    if series.dataoffset is not None and len(tif.series) >= 1:
        try:
            return tifffile.memmap(path, series=0, mode="r")
        except (ValueError, OSError):  # not memory-mappable after all
            pass
    import zarr

    store = series.aszarr(level=0)
    return guarded_dask(zarr.open(store, mode="r"), path, check_missing=False)


def _tiff_data_end(series) -> int | None:
    """The byte just past the last pixel data of ``series`` (first and last page), or None if unknown."""
    if series.dataoffset is not None:
        return int(series.dataoffset) + int(series.nbytes)
    end = 0
    try:
        pages = series.pages
        for page in (pages[0], pages[-1]) if len(pages) > 1 else (pages[0],):
            for off, count in zip(page.dataoffsets, page.databytecounts):
                if count:
                    end = max(end, int(off) + int(count))
    except Exception:  # noqa: BLE001 - pages of unusual kinds: no check
        return None
    return end or None


def _check_tiff_size(path: str, series, lazy: bool, allow_large: bool) -> None:
    """Refuse a truncated TIFF, one that declares absurdly many pixels for its size, and an eager read larger
    than the memory available (the last two unless ``allow_large``)."""
    size = os.path.getsize(path)
    nbytes = int(series.nbytes)
    end = _tiff_data_end(series)
    if end is not None and end > size:
        raise _broken(
            path,
            f"the file is truncated: its pixel data runs to byte {end} but the file has {size} bytes "
            "(copy or download it again)",
        )
    what = f"declares {'x'.join(str(n) for n in series.shape)} {series.dtype} pixels ({_human(nbytes)})"
    hint = "if the file is genuine, pass --allow-large-image (Python: allow_large=True)"
    if allow_large:
        return
    if nbytes > BOMB_MIN_BYTES and nbytes > BOMB_RATIO * size:
        raise _broken(
            path,
            f"{what} in a {_human(size)} file, over {BOMB_RATIO}x compression: a damaged or crafted file? {hint}",
        )
    if not lazy:
        avail = available_memory()
        if avail is not None and nbytes > avail:
            raise _broken(path, f"{what}, more than the {_human(avail)} of memory available; {hint}")


def _load_tiff(path: str, lazy: bool | None = None, allow_large: bool = False):
    import tifffile

    tif = tifffile.TiffFile(path)
    keep_open = False
    try:
        if not tif.series:
            raise _broken(path, "the TIFF holds no image")
        series = tif.series[0]
        axes = series.axes.upper()
        if lazy is None:
            lazy = int(series.nbytes) > LAZY_TIFF_BYTES
        _check_tiff_size(path, series, bool(lazy), allow_large)
        if lazy:
            arr = _lazy_tiff(tif, series, path)
            keep_open = not isinstance(arr, np.ndarray)
        else:
            arr = series.asarray()
        sizes = _tiff_sizes(tif)
    finally:
        if not keep_open:
            tif.close()
    if len(axes) != arr.ndim:  # should not happen; fall back to the shape alone
        return _finish(arr, None, _channels_last_guess(arr.shape))
    # drop singleton axes, then move a channel axis last (indexing and transposing: lazy arrays stay lazy)
    keep = [i for i, n in enumerate(arr.shape) if n != 1 or axes[i] in "YX"]
    if len(keep) != arr.ndim:
        arr = arr[tuple(slice(None) if i in keep else 0 for i in range(arr.ndim))]
    axes = "".join(axes[i] for i in keep)
    channels = False
    for ch in "SC":
        if ch in axes:
            i = axes.index(ch)
            perm = [k for k in range(arr.ndim) if k != i] + [i]
            arr = arr.transpose(perm)
            axes = axes[:i] + axes[i + 1 :] + ch
            channels = True
            break
    spatial_axes = axes[:-1] if channels else axes
    # a plain multi-page TIFF gives 'I' (or 'Q') for its pages: that is the z axis of a stack
    spatial_axes = re.sub(r"[IQ](?=YX$)", "Z", spatial_axes)
    scale = [sizes.get(a, 1.0) for a in spatial_axes]
    return _finish(arr, scale, channels)


# ------------------------------------------------------------------ lazy reads with clear errors
def _region(key) -> str:
    if not isinstance(key, tuple):
        key = (key,)
    parts = []
    for k in key:
        if isinstance(k, slice):
            parts.append(f"{'' if k.start is None else k.start}:{'' if k.stop is None else k.stop}")
        else:
            parts.append(str(k))
    return "[" + ", ".join(parts) + "]"


class GuardedChunks:
    """A Zarr array (a store's, or tifffile's view of a TIFF) seen by dask: reading a region first checks that
    its chunks exist in the store (``check_missing``), and a chunk that cannot be read or decoded becomes one
    :class:`VesselGraphError` naming the file instead of a decoder traceback."""

    def __init__(self, array, path: str, check_missing: bool = True):
        self.array = array
        self.path = os.fspath(path)
        self.check_missing = check_missing
        self.shape = tuple(int(n) for n in array.shape)
        self.dtype = np.dtype(array.dtype)
        self.ndim = len(self.shape)

    def __getitem__(self, key):
        if self.check_missing:
            self._check_chunks(key)
        try:
            return np.asarray(self.array[key])
        except (VesselGraphError, MemoryError):
            raise
        except Exception as e:  # noqa: BLE001 - decoders raise all sorts of things on broken chunks
            raise _broken(
                self.path,
                f"cannot read the pixels {_region(key)} ({type(e).__name__}: {_first_line(e)[:200]}); "
                "the file may be damaged",
            ) from None

    # -------------------------------------------------- missing chunks
    def _grid(self) -> tuple[int, ...] | None:
        shards = getattr(self.array, "shards", None)  # a shard is the unit stored under one key
        grid = shards or getattr(self.array, "chunks", None)
        return tuple(int(c) for c in grid) if grid else None

    def _chunk_key(self, coords: tuple[int, ...]) -> str | None:
        meta = getattr(self.array, "metadata", None)
        if meta is not None and hasattr(meta, "encode_chunk_key"):  # zarr-python 3 (formats 2 and 3)
            key = meta.encode_chunk_key(coords)
        elif hasattr(self.array, "_chunk_key"):  # zarr-python 2
            return self.array._chunk_key(coords)
        else:
            return None
        prefix = getattr(self.array, "path", "") or ""
        return f"{prefix}/{key}" if prefix else key

    def _exists(self, key: str) -> bool | None:
        store = getattr(self.array, "store", None)
        root = getattr(store, "root", None)
        if root is not None:  # a local folder: one stat per chunk
            return os.path.exists(os.path.join(os.fspath(root), *key.split("/")))
        if hasattr(store, "exists"):
            try:
                from zarr.core.sync import sync

                return bool(sync(store.exists(key)))
            except Exception:  # noqa: BLE001 - cannot tell: no check
                return None
        try:  # zarr-python 2: a mapping
            chunk_store = getattr(self.array, "chunk_store", None) or store
            return key in chunk_store
        except Exception:  # noqa: BLE001 - cannot tell: no check
            return None

    def _check_chunks(self, key) -> None:
        import itertools

        grid = self._grid()
        if grid is None or len(grid) != self.ndim:
            return
        if not isinstance(key, tuple):
            key = (key,)
        ranges = []
        for i, (n, c) in enumerate(zip(self.shape, grid)):
            k = key[i] if i < len(key) else slice(None)
            if isinstance(k, slice):
                lo, hi, _ = k.indices(n)
            else:
                lo = int(k) % n if n else 0
                hi = lo + 1
            if hi <= lo:
                return
            ranges.append(range(lo // c, (hi - 1) // c + 1))
        missing, total = [], 0
        for coords in itertools.product(*ranges):
            total += 1
            ck = self._chunk_key(tuple(coords))
            if ck is None:
                return
            found = self._exists(ck)
            if found is None:
                return
            if not found:
                missing.append(ck)
        if missing:
            fill = getattr(self.array, "fill_value", 0)
            raise _broken(
                self.path,
                f"{len(missing)} of the {total} chunk(s) holding the pixels {_region(key)} are missing from the "
                f"Zarr store (first: {missing[0]!r}): an incomplete copy? Writers may also skip chunks that hold "
                f"only the fill value ({fill}); if so, pass --allow-missing-chunks (Python: "
                "allow_missing_chunks=True) to read them as that value",
            )


def guarded_dask(array, path: str, check_missing: bool = True):
    """A dask array over the Zarr ``array`` (its chunks) whose reads go through :class:`GuardedChunks`."""
    import dask.array as da
    from dask.base import tokenize

    guard = GuardedChunks(array, path, check_missing)
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:  # pragma: no cover
        stamp = 0
    name = "vesselgraph-image-" + tokenize(os.path.abspath(path), stamp, guard.shape, str(guard.dtype),
                                           getattr(array, "path", ""), check_missing)  # fmt: skip
    return da.from_array(
        guard, chunks=tuple(int(c) for c in array.chunks), name=name, fancy=False,
        meta=np.empty((0,) * guard.ndim, guard.dtype),
    )  # fmt: skip


# ------------------------------------------------------------------ zarr
def _load_zarr(path: str, allow_missing_chunks: bool = False):
    import dask.array as da
    import zarr

    check = not allow_missing_chunks

    try:
        node = zarr.open(path, mode="r")
    except Exception as e:
        raise _broken(path, f"not a readable Zarr store ({type(e).__name__}: {_first_line(e)})") from None
    if isinstance(node, zarr.Array):
        arr = guarded_dask(node, path, check)
        return _finish(arr, None, _channels_last_guess(arr.shape))
    attrs = dict(node.attrs)
    ome = attrs.get("ome") if isinstance(attrs.get("ome"), dict) else attrs
    multiscales = ome.get("multiscales")
    if not multiscales:
        arrays = sorted(name for name, _ in node.arrays())
        if not arrays:
            raise _broken(path, "the Zarr group holds no arrays")
        name = "0" if "0" in arrays else arrays[0] if len(arrays) == 1 else None
        if name is None:
            raise _broken(path, f"the Zarr group holds several arrays ({', '.join(arrays)}); open one of them")
        arr = guarded_dask(node[name], path, check)
        return _finish(arr, None, _channels_last_guess(arr.shape))
    try:
        ms = multiscales[0]
        ds = ms["datasets"][0]
        zarr_arr = node[ds["path"]]
    except (KeyError, IndexError, TypeError) as e:
        raise _broken(path, f"malformed OME-Zarr 'multiscales' metadata ({e})") from None
    arr = guarded_dask(zarr_arr, path, check)
    ndim = arr.ndim
    names, types, units = _ome_axes(ms.get("axes"), ndim)
    scale = np.ones(ndim)
    for transforms in (ds.get("coordinateTransformations"), ms.get("coordinateTransformations")):
        for t in transforms or []:
            if isinstance(t, dict) and t.get("type") == "scale" and len(t.get("scale", ())) == ndim:
                scale = scale * np.asarray(t["scale"], dtype=float)
    for i in range(ndim):
        factor = _unit_factor(units[i]) if units[i] else 1.0
        if factor is not None:
            scale[i] *= factor
    # drop singleton non-spatial axes (lazily), move a channel axis last
    index = tuple(0 if (types[i] != "space" and arr.shape[i] == 1) else slice(None) for i in range(ndim))
    keep = [i for i in range(ndim) if not isinstance(index[i], int)]
    arr = arr[index]
    types = [types[i] for i in keep]
    scale = scale[keep]
    channels = False
    if "channel" in types:
        i = types.index("channel")
        arr = da.moveaxis(arr, i, -1)
        types = types[:i] + types[i + 1 :] + ["channel"]
        scale = np.concatenate([scale[:i], scale[i + 1 :], scale[i : i + 1]])
        channels = True
    spatial = [s for s, t in zip(scale, types) if t == "space"]
    return _finish(arr, spatial, channels)


def _ome_axes(axes, ndim: int) -> tuple[list[str], list[str], list[str | None]]:
    """(names, types, units) per axis; OME-Zarr 0.1/0.2 have no axes and mean (t, c, z, y, x)."""
    default = ["t", "c", "z", "y", "x"][-ndim:] if ndim <= 5 else [f"d{i}" for i in range(ndim)]
    names, types, units = [], [], []
    if not axes or len(axes) != ndim:
        axes = default
    for a in axes:
        if isinstance(a, dict):
            name = str(a.get("name", "")).lower()
            typ = a.get("type")
            unit = a.get("unit")
        else:
            name, typ, unit = str(a).lower(), None, None
        if typ is None:
            typ = "space" if name in ("z", "y", "x") else "time" if name == "t" else "channel" if name == "c" else ""
        names.append(name)
        types.append(str(typ).lower())
        units.append(unit)
    return names, types, units


# ================================================================ saving
_IMAGEJ_DTYPES = (np.uint8, np.uint16, np.float32)


def _imagej_dtype(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == bool:
        return arr.astype(np.uint8)
    if arr.dtype in _IMAGEJ_DTYPES:
        return arr
    if arr.dtype.kind in "iu":
        lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
        if lo >= 0 and hi <= 255:
            return arr.astype(np.uint8)
        if lo >= 0 and hi <= 65535:
            return arr.astype(np.uint16)
        return arr.astype(np.float32)
    if arr.dtype.kind == "f":
        return arr.astype(np.float32)
    raise VesselGraphError(f"cannot save {arr.dtype} data as TIFF")


def save_tiff(path, array, scale=None, rgb: bool | None = None) -> str:
    """Save ``array`` as an ImageJ-compatible TIFF that records the voxel size; returns the path.

    Parameters
    ----------
    array : (Y, X), (Y, X, C), (Z, Y, X) or (Z, Y, X, C) array (numpy or dask)
    scale : voxel size in micrometres, one value per spatial axis (napari order); default all 1.
    rgb : whether the last axis holds colour channels; by default guessed from ``scale``'s length,
        else from a trailing axis of length 3 or 4.

    ImageJ stores uint8, uint16 and float32 only: bool becomes uint8, other integers the smallest of
    uint8/uint16 that holds them (else float32), other floats float32. Colour uint8 data is written
    as RGB; other channel data as an ImageJ channel axis. The write is atomic.
    """
    import tifffile

    arr = np.asarray(array)
    if rgb is None:
        if scale is not None and len(np.ravel(scale)) == arr.ndim - 1 and arr.ndim >= 3:
            rgb = True
        elif scale is not None and len(np.ravel(scale)) == arr.ndim:
            rgb = False
        else:
            rgb = _channels_last_guess(arr.shape)
    n_spatial = arr.ndim - (1 if rgb else 0)
    if n_spatial not in (2, 3):
        raise VesselGraphError(f"save_tiff needs a 2D or 3D image, got shape {arr.shape}")
    if scale is None:
        scale = (1.0,) * n_spatial
    scale = tuple(float(s) for s in np.ravel(scale))
    if len(scale) != n_spatial or not all(math.isfinite(s) and s > 0 for s in scale):
        raise VesselGraphError(f"scale must be {n_spatial} positive numbers for shape {arr.shape}, got {scale}")
    arr = _imagej_dtype(arr)
    spatial_axes = "ZYX" if n_spatial == 3 else "YX"
    kwargs = {}
    if rgb and arr.dtype == np.uint8 and arr.shape[-1] in (3, 4):
        axes = spatial_axes + "S"
        kwargs["photometric"] = "rgb"
    elif rgb:
        arr = np.moveaxis(arr, -1, -3)  # channels before Y, X: ImageJ's order is (Z, C, Y, X)
        axes = spatial_axes[:-2] + "C" + "YX"
        kwargs["photometric"] = "minisblack"
    else:
        axes = spatial_axes
        kwargs["photometric"] = "minisblack"
    metadata = {"axes": axes, "unit": "um"}
    if n_spatial == 3:
        metadata["spacing"] = scale[0]
    sy, sx = scale[-2], scale[-1]
    path = os.fspath(path)
    with atomic_write(path, "wb") as f:
        tifffile.imwrite(f, arr, imagej=True, resolution=(1.0 / sx, 1.0 / sy), metadata=metadata, **kwargs)
    return path
