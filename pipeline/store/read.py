"""Reading a cube: a partly written or damaged cube reads as missing, never as data.

:func:`open_cube` returns the cube lazily (dask-backed). When the cube is not complete
(a run may be writing it) it reads ``done`` first, as one snapshot, and masks every
other variable by it: a point reads as computed only if it was complete before the
other variables were read, because a block's data is written before its ``done``. A
block marked done whose chunk files are missing (deleted, lost) or not the ones written
there (copied or swapped from another block: store/integrity.py) is masked too, with a
warning naming ``marshall verify --repair``. A corrupted chunk (whole, its bytes
changed) fails its CRC-32C check when it is read: it reads as its fill value (NaN, -1,
False) with the same warning, never as data (``done`` of its block, read before, is not
cleared: ``marshall verify`` names the block).

A refined cube (store/levels.py) opens as the dense view of its finest grid, built
from its levels on access.

A plain ``xarray.open_zarr`` reader of a cube that is being written stays safe by doing
the same: ``done = ds.done.load()`` first, then ``ds.where(done)`` (or keep to points
where ``done`` is true); on a complete cube (``ds.attrs["complete"] == 1``) nothing is
needed.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from .cube import STATE, done_blocks


class DamagedCubeWarning(UserWarning):
    """Blocks marked done whose data is missing: read as not computed."""


def damaged_blocks(path: Path, ds: xr.Dataset, blocks) -> set[int]:
    """Blocks among ``blocks`` (marked done) whose chunk of some variable is missing or
    is not the chunk written there (store/integrity.py)."""
    from .cube import read_marker
    from .integrity import check

    missing, misplaced = check(path, list(ds.data_vars), len(ds["done"].dims), blocks,
                               lambda b: read_marker(path, b))  # fmt: skip
    return missing | misplaced


def _block_mask(ds: xr.Dataset, chunks: tuple[int, ...], blocks: set[int]) -> np.ndarray:
    done = ds["done"]
    mask = np.ones(done.shape, bool)
    nch = [math.ceil(s / c) for s, c in zip(done.shape, chunks)]
    for b in blocks:
        idx = np.unravel_index(b, nch)
        mask[tuple(slice(i * c, (i + 1) * c) for i, c in zip(idx, chunks))] = False
    return mask


def open_cube(path: str | Path, *, check: bool = True) -> xr.Dataset:
    """Open a cube (lazily, dask-backed). Points not yet computed have ``done == False``
    and read as NaN (floats), -1 (integer codes) or False; see the module docstring
    for partly written and damaged cubes. ``check=False`` skips the chunk check."""
    path = Path(path)
    if not (path / "zarr.json").is_file():
        raise FileNotFoundError(f"no marshall cube at {path}")
    from .integrity import tolerant
    from .levels import is_refined, open_view

    if is_refined(path):  # the finest grid of a refined sweep, as a lazy dense view
        return open_view(path, check=check)
    with warnings.catch_warnings():  # a cube still being written has no consolidated metadata
        warnings.simplefilter("ignore", category=RuntimeWarning)
        warnings.filterwarnings("ignore", message="Consolidated metadata")
        # dask chunks of whole zarr chunks, ~128 MB each: a cube of many small chunks
        # reads as few large tasks (values are the same)
        with tolerant():  # a chunk failing its checksum reads as missing (integrity.py)
            ds = xr.open_zarr(path, chunks="auto")
    if "done" not in ds or not (path / STATE).is_dir():
        return ds
    complete = bool(ds.attrs.get("complete"))
    damaged: set[int] = set()
    if check:
        chunks = tuple(int(c) for c in ds["done"].encoding.get("chunks", ds["done"].shape))
        damaged = damaged_blocks(path, ds, done_blocks(path))
        if damaged:
            warnings.warn(
                f"{path}: {len(damaged)} block(s) marked done have missing data (chunks "
                f"absent or not the ones written there; first: {sorted(damaged)[:5]}); they "
                f"read as not computed. Run "
                f"`marshall verify {path} --repair` to recompute them.",
                DamagedCubeWarning,
                stacklevel=2,
            )
    if complete and not damaged:
        return ds
    done = ds["done"].load()  # the snapshot: read before any other variable
    if damaged:
        done = done & xr.DataArray(_block_mask(ds, chunks, damaged), dims=done.dims)
    out = ds.copy()
    fills = {name: v.encoding.get("_FillValue", v.attrs.get("_FillValue")) for name, v in
             ds.data_vars.items()}  # fmt: skip
    for name, v in ds.data_vars.items():
        if name == "done" or not set(done.dims) <= set(v.dims):
            continue
        fill = _fill(v, fills.get(name))
        out[name] = xr.where(done, v, fill, keep_attrs=True).astype(v.dtype)
        out[name].encoding = v.encoding
    out["done"] = done.astype(bool)
    out["done"].attrs = ds["done"].attrs
    out.attrs = dict(ds.attrs) | ({"damaged_blocks": len(damaged)} if damaged else {})
    return out


def _fill(v: xr.DataArray, fill):
    if v.dtype == bool:
        return False
    if np.issubdtype(v.dtype, np.floating):
        return np.nan
    if fill is not None and not (isinstance(fill, float) and math.isnan(fill)):
        return np.asarray(fill).astype(v.dtype)[()]
    return np.asarray(-1).astype(v.dtype)[()]
