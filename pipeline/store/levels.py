r"""Refined cubes on disk: one zarr store, one group per level, a lazy dense view.

Layout of a refined store ``X.zarr`` (zarr format 3; :mod:`pipeline.refine` has the
rules, :func:`pipeline.grid.level_spec` the level grids)::

    X.zarr/                 root group: the cube's attributes (config, hash, model, ...)
    X.zarr/levels/<l>/      level l = 0..L: every variable of a dense cube of the level's
                            grid (dims named as the swept parameters, coordinates the
                            finest grid's values subsampled), ``done`` = the level holds
                            the point (computed, or copied from level l - 1); only the
                            chunks of blocks that hold points are written, the others
                            read as the fill value
    X.zarr/_marshall/       run state (attributes: format, config hash, ``refine``)
        levels/<l>/plan.json       level l's blocks, a pure function of level l - 1
        levels/<l>/done/<b>.json   block b of level l is on disk (digests as written)

``xarray.open_datatree(X.zarr, engine="zarr")`` opens every level, and
``xarray.open_zarr(X.zarr, group="levels/<l>")`` one; :func:`open_view` (what
:func:`pipeline.open_cube` returns for a refined cube) is the finest grid as a lazy
dense view.

A level is written block by block, as a dense cube is: a block is one chunk of the
level's grid (:meth:`pipeline.refine.Step.blocks`); its data goes first, ``done``
next, then its completion mark, atomically. Level ``l + 1`` is planned only once
level ``l`` is complete, from level ``l``'s stored ``on`` codes, knife-edge flags and
``done``, and its plan is recorded: a resumed run, another part of a split run and
``marshall verify`` recompute it and must find the same.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import refine as rf
from ..config import SweepSpec
from ..grid import level_chunks, level_plan, level_spec
from ..models._spec import regime_name
from .errors import StoreError
from .schema import encoding, schema, template

LEVELS = "levels"
STATE = "_marshall"


# ------------------------------------------------------------------------ layout


def is_refined(path: Path) -> bool:
    """A refined cube: its run state says so."""
    from .cube import state

    st = state(Path(path))
    return st is not None and "refine" in st


def group(level: int) -> str:
    return f"{LEVELS}/{level}"


def level_dir(path: Path, level: int) -> Path:
    return Path(path) / LEVELS / str(level)


def state_dir(path: Path, level: int) -> Path:
    return Path(path) / STATE / LEVELS / str(level)


def marker(path: Path, level: int, block: int) -> Path:
    return state_dir(path, level) / "done" / f"{block}.json"


def done_blocks(path: Path, level: int) -> set[int]:
    d = state_dir(path, level) / "done"
    if not d.is_dir():
        return set()
    return {int(p.stem) for p in d.glob("*.json") if p.stem.isdigit()}


def read_marker(path: Path, level: int, block: int) -> dict | None:
    try:
        return json.loads(marker(path, level, block).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def read_plan(path: Path, level: int) -> dict | None:
    try:
        return json.loads((state_dir(path, level) / "plan.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def write_template(spec: SweepSpec, tmp: Path) -> None:
    """The refined store's template in ``tmp``: the root's attributes and every level's
    variables at their fill value (metadata only; no chunk is written)."""
    import zarr

    g = spec.refine.grid
    finest = template(level_spec(spec, g.levels))  # once: coordinates and attributes
    attrs = dict(finest.attrs)
    attrs |= {
        "refine_levels": g.levels,
        "refine_on": list(spec.refine.on),
        "refine_neighbours": spec.refine.neighbours,
        "refine_coarse_shape": list(g.shape(0)),
        "refine_finest_shape": list(g.finest_shape),
        "dense_points": g.n_dense,
        "comment": attrs["comment"] + "; a refined sweep: open it with pipeline.open_cube "
        "(the finest grid as a dense view), or one level with xarray.open_zarr(path, "
        "group='levels/<l>')",
    }
    root = zarr.open_group(tmp, mode="w-", zarr_format=3)
    root.attrs.update(attrs)
    # level 0 as xarray writes a template; the others are its metadata with their own
    # shapes and coordinates (xarray per level costs ~0.2 s each, most of a small run)
    ls = level_spec(spec, 0)
    ds = finest.isel({n: sl for n, sl in zip(g.names, g.finest_slices(0))})
    enc = encoding(ls)  # the level's zarr chunks (the template: one lazy dask chunk each)
    for name, v in schema(ls).items():
        enc[name]["chunks"] = v.chunks
    ds.attrs = {"refine_level": 0, "refine_levels": g.levels, "config_hash": spec.config_hash}
    with warnings.catch_warnings():  # label strings: zarr's "no V3 specification" note
        warnings.simplefilter("ignore")
        ds.to_zarr(tmp, group=group(0), mode="w-", compute=False, zarr_format=3,
                   consolidated=False, encoding=enc, safe_chunks=False)  # fmt: skip
    (tmp / STATE / LEVELS / "0" / "done").mkdir(parents=True)
    for level in range(1, g.levels + 1):
        _clone_level(spec, tmp, level)
        (tmp / STATE / LEVELS / str(level) / "done").mkdir(parents=True)


def _clone_level(spec: SweepSpec, tmp: Path, level: int) -> None:
    """Level ``level``'s template from level 0's: the same arrays (codecs, fill values,
    attributes, dimension names), with the level's shapes and chunks, and its swept
    coordinates written again."""
    import shutil

    import zarr

    g = spec.refine.grid
    src, dst = tmp / LEVELS / "0", tmp / LEVELS / str(level)
    shutil.copytree(src, dst)
    size = dict(zip(g.names, g.shape(level)))
    chunk = dict(zip(g.names, level_chunks(spec, level)))
    gmeta = json.loads((dst / "zarr.json").read_text())
    gmeta["attributes"]["refine_level"] = level
    (dst / "zarr.json").write_text(json.dumps(gmeta))
    for node in dst.iterdir():
        f = node / "zarr.json"
        if not f.is_file():
            continue
        meta = json.loads(f.read_text())
        dims = meta.get("dimension_names") or []
        if meta.get("node_type") != "array" or not set(dims) & set(size):
            continue
        meta["shape"] = [size.get(d, n) for d, n in zip(dims, meta["shape"])]
        if node.name in size:  # a swept coordinate: one chunk, written below
            meta["chunk_grid"]["configuration"]["chunk_shape"] = [size[node.name]]
            shutil.rmtree(node / "c", ignore_errors=True)
        else:
            cs = meta["chunk_grid"]["configuration"]["chunk_shape"]
            meta["chunk_grid"]["configuration"]["chunk_shape"] = [
                chunk.get(d, c) for d, c in zip(dims, cs)
            ]
        f.write_text(json.dumps(meta, indent=2))
    coords = g.coords(level)
    grp = zarr.open_group(dst, mode="r+", zarr_format=3)
    for name, values in coords.items():
        grp[name][...] = values


def _atomic_write(target: Path, text: str) -> None:
    from .cube import _atomic_write as write

    target.parent.mkdir(parents=True, exist_ok=True)
    write(target, text)


# ------------------------------------------------------------------------- plans


@dataclass(frozen=True, eq=False)
class Work:
    """One block of one level: its chunk ``region`` (level indices) and, derived on
    demand (:meth:`points`), the points it computes and copies. Level 0 computes every
    point of its region; level ``l + 1`` those of :class:`pipeline.refine.Block`."""

    level: int
    id: int
    region: tuple[slice, ...]
    block: rf.Block | None = field(default=None, repr=False)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(s.stop - s.start for s in self.region)

    def points(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(compute, copy_to, copy_from, mask)``: level indices ``(k, d)`` of the points
        to compute (C order), of the copied points here and at the level below, and
        the bool mask over the region of the points the block holds."""
        off = np.array([s.start for s in self.region], dtype=np.int64)
        d = len(self.region)
        if self.block is None:
            mask = np.ones(self.shape, dtype=bool)
            compute = np.indices(self.shape).reshape(d, -1).T.astype(np.int64) + off
            empty = np.zeros((0, d), dtype=np.int64)
            return compute, empty, empty, mask
        new, old, _ = self.block._masks()
        compute = np.argwhere(new).astype(np.int64) + off
        to = np.argwhere(old).astype(np.int64) + off
        frm = np.where(np.array(self.block.step.grid.refined), to // 2, to)
        return compute, to, frm, new | old


def read_level(spec: SweepSpec, level: int, names) -> dict[str, np.ndarray]:
    """Level ``level``'s stored arrays ``names`` in full (those a next level is planned
    from: the ``on`` codes, knife-edge flags and ``done``)."""
    import zarr

    grp = zarr.open_group(level_dir(spec.output, level), mode="r", zarr_format=3)
    return {n: np.asarray(grp[n][...]) for n in names}


def step_from(spec: SweepSpec, level: int) -> rf.Step:
    """The marks of level ``level`` (complete on disk) and what they make of the next."""
    r = spec.refine
    names = [*r.on, "done"] + ([r.knife] if r.knife else [])
    a = read_level(spec, level, list(dict.fromkeys(names)))
    return r.grid.step(
        level,
        {n: a[n] for n in r.on},
        knife=a[r.knife] if r.knife else None,
        computed=a["done"],
        neighbours=r.neighbours,
        knife_rule="change",
    )


def plan_level(spec: SweepSpec, level: int, step: rf.Step | None = None) -> list[Work]:
    """Level ``level``'s blocks, in id order (level 0: every chunk of the coarse grid;
    level ``l + 1``: the chunks holding points of :meth:`pipeline.refine.Step.points`)."""
    if level == 0:
        plan = level_plan(spec, 0)
        return [Work(0, b, plan.region(b)) for b in plan.blocks()]
    if step is None:
        step = step_from(spec, level - 1)
    return [Work(level, b.id, b.region, b) for b in step.blocks(level_chunks(spec, level))]


def record_plan(spec: SweepSpec, level: int, works: list[Work], step: rf.Step | None) -> dict:
    """Record level ``level``'s plan, or check it against the one recorded (a resumed run
    or another part must plan the same blocks from the same stored level)."""
    from .cube import digest

    rec: dict = {"level": level, "blocks": [w.id for w in works]}
    if step is not None:
        rec |= {
            "compute": int(step.n_compute),
            "points": int(step.n_points),
            "active": digest(step.active),
        }
    else:
        rec |= {"compute": math.prod(spec.refine.grid.shape(0))}
        rec["points"] = rec["compute"]
    old = read_plan(spec.output, level)
    if old is None:
        _atomic_write(state_dir(spec.output, level) / "plan.json", json.dumps(rec))
        return rec
    if old != rec:
        raise StoreError(
            f"{spec.output}: level {level}'s blocks, planned again from level {level - 1}, "
            "differ from the plan recorded when it was first planned: level "
            f"{level - 1} changed on disk. Run `marshall verify {spec.output} --repair`."
        )
    return old


# ------------------------------------------------------------------------ writer


class LevelWriter:
    """Writes blocks of one level: copies from the level below, the computed values,
    ``done`` on the block's points, then the completion mark (each step one concurrent
    pass over the variables' zarr arrays); use as a context manager."""

    def __init__(self, spec: SweepSpec, level: int):
        import zarr

        self.spec, self.level = spec, level
        self.schema = schema(level_spec(spec, level))
        grp = zarr.open_group(level_dir(spec.output, level), mode="r+", zarr_format=3)
        self.arrays = {n: grp[n].with_config({"write_empty_chunks": True}) for n in self.schema}
        from .integrity import layouts

        self.layouts = layouts(level_dir(spec.output, level), self.schema, spec.refine.grid.ndim)
        self.below = None
        if level > 0:
            low = zarr.open_group(level_dir(spec.output, level - 1), mode="r", zarr_format=3)
            self.below = {n: low[n] for n in self.schema if n != "done"}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        pass

    def write(self, work: Work, values: dict[str, np.ndarray], seconds: float = 0.0) -> dict:
        """Write ``work``'s region: its computed points' ``values`` (``(k, ...)`` per
        output, in the order of :meth:`Work.points`), its copies, ``done``; then its mark."""
        from .cube import digest
        from .integrity import written

        compute, to, frm, mask = work.points()
        shape = work.shape
        off = np.array([s.start for s in work.region], dtype=np.int64)
        at = tuple((compute - off).T)
        cto = tuple((to - off).T)
        if len(frm):
            lo = frm.min(axis=0)
            box = tuple(slice(int(a), int(b) + 1) for a, b in zip(lo, frm.max(axis=0)))
            cfrom = tuple((frm - lo).T)
        names = [n for n in self.schema if n != "done"]
        below = _read_all(self.below, names, box) if len(frm) else {}
        datas = {}
        for name in names:
            v = self.schema[name]
            data = np.full(shape + v.shape[len(shape) :], v.fill, dtype=v.dtype)
            if len(frm):
                data[cto] = below[name][cfrom]
            if len(compute):
                data[at] = np.asarray(values[name], dtype=v.dtype)
            datas[name] = data
        _write_all(self.arrays, datas, work.region)
        # a point reads as held only after everything else is written
        _write_all(self.arrays, {"done": mask}, work.region)
        datas["done"] = mask
        digests = {n: digest(np.ascontiguousarray(d)) for n, d in datas.items()}
        reg = np.asarray(values["regime"]) if len(compute) else np.zeros(0, np.int32)
        knife = values.get("knife_edge")
        summary = {
            "level": self.level,
            "block": work.id,
            "points": int(np.count_nonzero(mask)),
            "computed": int(len(compute)),
            "regimes": sorted(int(x) for x in np.unique(reg)),
            "knife_edge": int(np.count_nonzero(knife)) if knife is not None and len(compute) else 0,
            "seconds": round(seconds, 4),
            "digests": dict(sorted(digests.items())),
            "crc32c": written(self.layouts, work.region),  # store/integrity.py
        }
        _atomic_write(marker(self.spec.output, self.level, work.id), json.dumps(summary))
        return summary


def _full(region, arr) -> tuple:
    return tuple(region) + (slice(None),) * (arr.ndim - len(region))


def _read_all(arrays, names, box) -> dict[str, np.ndarray]:
    """A box of several zarr arrays, read concurrently (one pass of zarr's event loop:
    about 3x faster than a thread per array for small chunks)."""
    try:
        import asyncio

        from zarr.core.sync import sync

        async def go():
            return await asyncio.gather(
                *[arrays[n]._async_array.getitem(_full(box, arrays[n])) for n in names]
            )

        return {n: np.asarray(x) for n, x in zip(names, sync(go()))}
    except (ImportError, AttributeError):  # another zarr: one array at a time
        return {n: np.asarray(arrays[n][_full(box, arrays[n])]) for n in names}


def _write_all(arrays, datas: dict[str, np.ndarray], region) -> None:
    """Write a region of several zarr arrays concurrently (as :func:`_read_all`)."""
    try:
        import asyncio

        from zarr.core.sync import sync

        async def go():
            await asyncio.gather(
                *[
                    arrays[n]._async_array.setitem(_full(region, arrays[n]), d)
                    for n, d in datas.items()
                ]
            )

        sync(go())
    except (ImportError, AttributeError):
        for n, d in datas.items():
            arrays[n][_full(region, arrays[n])] = d


# ---------------------------------------------------------------------- finalize


def level_status(spec: SweepSpec) -> list[tuple[list[int] | None, set[int]]]:
    """Per level: the planned block ids (None: not planned yet) and the blocks done."""
    out = []
    for level in range(spec.refine.grid.levels + 1):
        plan = read_plan(spec.output, level)
        out.append(
            (None if plan is None else list(plan["blocks"]), done_blocks(spec.output, level))
        )
    return out


def markers(spec: SweepSpec):
    """Every completion mark of the store: ``(level, block, mark)``."""
    for level in range(spec.refine.grid.levels + 1):
        for b in sorted(done_blocks(spec.output, level)):
            yield level, b, read_marker(spec.output, level, b)


def points_computed(path: Path, levels: int) -> list[int]:
    """Points computed at each level (from the completion marks)."""
    out = []
    for level in range(levels + 1):
        n = 0
        for b in done_blocks(path, level):
            m = read_marker(path, level, b)
            n += int((m or {}).get("computed", 0))
        out.append(n)
    return out


def finalize(spec: SweepSpec) -> dict:
    """After every level: name the regimes that occur (on every level's ``regime`` and
    the root), record the points computed and mark the cube complete."""
    import zarr

    path = Path(spec.output)
    for level, (planned, done) in enumerate(level_status(spec)):
        if planned is None:
            raise StoreError(f"level {level} is not planned yet; resume the run")
        missing = sorted(set(planned) - done)
        if missing:
            raise StoreError(
                f"level {level}: {len(missing)} blocks not done (first: "
                f"{missing[:5]}); resume the run"
            )
    codes: set[int] = set()
    knife = 0
    per_level = [0] * (spec.refine.grid.levels + 1)
    for level, b, m in markers(spec):
        if m is None:
            raise StoreError(
                f"the completion mark of level {level} block {b} is unreadable; "
                f"run `marshall verify {path} --repair`"
            )
        codes.update(m["regimes"])
        knife += m["knife_edge"]
        per_level[level] += m["computed"]
    labs = spec.decl.labels(spec.J)
    codes_sorted = sorted(codes)
    names = [regime_name(c, labs) for c in codes_sorted]
    flags = {
        "flag_values": codes_sorted,
        "flag_meanings": " ".join(names),
        "regime_labels": json.dumps({str(c): n for c, n in zip(codes_sorted, names)}),
    }
    root = zarr.open_group(path, mode="r+")
    for level in range(spec.refine.grid.levels + 1):
        root[f"{group(level)}/regime"].attrs.update(flags)
    root.attrs.update(
        {
            "complete": 1,
            "knife_edge_points": knife,
            "points_computed": int(sum(per_level)),
            "points_per_level": per_level,
            "regime_flags": json.dumps(flags),
        }
    )
    from .meta import consolidate, record

    consolidate(path, spec)
    record(path, spec)
    return {
        "regimes": dict(zip(codes_sorted, names)),
        "knife_edge_points": knife,
        "points_computed": int(sum(per_level)),
        "points_per_level": per_level,
    }


# ------------------------------------------------------------------------- view


class _Masked:
    """A level's ``done`` with the blocks whose data is missing cleared."""

    def __init__(self, arr, chunks, blocks):
        self.arr, self.chunks = arr, chunks
        self.blocks = {tuple(int(i) for i in np.unravel_index(b, self._nch())) for b in blocks}
        self.shape, self.dtype = arr.shape, arr.dtype

    def _nch(self):
        return tuple(math.ceil(n / c) for n, c in zip(self.arr.shape, self.chunks))

    def __getitem__(self, box):
        out = np.array(self.arr[box], dtype=bool)
        for idx in self.blocks:
            sl = []
            for i, c, b in zip(idx, self.chunks, box):
                a0, a1 = max(i * c, b.start), min((i + 1) * c, b.stop)
                if a0 >= a1:
                    break
                sl.append(slice(a0 - b.start, a1 - b.start))
            else:
                out[tuple(sl)] = False
        return out


def damaged_blocks(path: Path, level: int, names, ndim: int, blocks) -> set[int]:
    """Blocks of a level marked done for which some variable's chunk is missing or is
    not the chunk written there (store/integrity.py)."""
    from .integrity import check

    missing, misplaced = check(level_dir(path, level), names, ndim, blocks,
                               lambda b: read_marker(path, level, b))  # fmt: skip
    return missing | misplaced


def spec_of(path: Path) -> SweepSpec:
    """The sweep of a stored cube (its own config; output = the cube)."""
    import zarr

    from ..config import parse_config

    attrs = dict(zarr.open_group(path, mode="r").attrs)
    return parse_config(attrs["config"], output=path)


def open_view(path: Path, check: bool = True):
    """The finest grid of a refined cube as a lazy dense view (an xarray Dataset).

    Dimensions: the swept parameters; coordinates: the finest grid's values. Every
    variable takes, at each point, the value of the finest level that holds a point
    nearest to it (:func:`pipeline.refine.dense_view`); ``level`` says which (-1: not
    even level 0 yet), ``computed`` is true where the point's values were computed
    there (not taken from a neighbour), ``done`` where it has a value (``level >= 0``).
    Attributes: the cube's, ``points_computed`` and ``points_per_level``. A block
    marked done with missing data reads as not held (with a warning), as in a dense
    cube; a level still being written is read ``done`` first."""
    import xarray as xr
    import zarr

    from .integrity import tolerant
    from .read import DamagedCubeWarning

    path = Path(path)
    spec = spec_of(path)
    g = spec.refine.grid
    root = zarr.open_group(path, mode="r")
    attrs = dict(root.attrs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        top = xr.open_zarr(path, group=group(g.levels), consolidated=False)
    names = [n for n in schema(level_spec(spec, g.levels)) if n != "done" and n in top]
    sources = []
    damaged_total = 0
    for level in range(g.levels + 1):
        with tolerant():  # a chunk failing its checksum reads as missing (integrity.py)
            grp = zarr.open_group(level_dir(path, level), mode="r", zarr_format=3)
            src = {n: grp[n] for n in [*names, "done"]}
        if check:
            bad = damaged_blocks(path, level, [*names, "done"], g.ndim, done_blocks(path, level))
            if bad:
                damaged_total += len(bad)
                warnings.warn(
                    f"{path}: level {level}: {len(bad)} block(s) marked done have missing "
                    f"data (chunks absent or not the ones written there; first: "
                    f"{sorted(bad)[:5]}); they read as not computed. Run "
                    f"`marshall verify {path} --repair` to recompute them.",
                    DamagedCubeWarning,
                    stacklevel=3,
                )
                src["done"] = _Masked(grp["done"], level_chunks(spec, level), bad)
        sources.append(src)
    cache = rf._LevelCache()
    data = {}
    for n in names:
        arr = rf.lazy_view(g, sources, n, None, "done", cache)
        data[n] = xr.Variable(top[n].dims, arr, attrs=top[n].attrs)
    dims = g.names
    data["level"] = xr.Variable(
        dims,
        rf.lazy_view(g, sources, "level", None, "done", cache),
        attrs={
            "long_name": "finest level holding the point's nearest point (-1: none yet)",
            "units": "1",
            "comment": f"0..{g.levels}; see pipeline.refine",
        },
    )
    data["computed"] = xr.Variable(
        dims,
        rf.lazy_view(g, sources, "exact", None, "done", cache),
        attrs={
            "long_name": "the point's values were computed at "
            "the point (not taken from its nearest computed "
            "point)"
        },
    )
    data["done"] = xr.Variable(
        dims,
        rf.lazy_view(g, sources, "has", None, "done", cache),
        attrs=dict(top["done"].attrs) | {"long_name": "point has a value (level >= 0)"},
    )
    coords = {k: v for k, v in top.coords.items()}
    out_attrs = {k: v for k, v in attrs.items()}
    if "points_computed" not in out_attrs or not attrs.get("complete"):
        per = points_computed(path, g.levels)
        out_attrs |= {"points_computed": int(sum(per)), "points_per_level": per}
    if damaged_total:
        out_attrs["damaged_blocks"] = damaged_total
    if attrs.get("regime_flags") and "regime" in data:
        flags = json.loads(attrs["regime_flags"])
        data["regime"].attrs.update(flags)
    ds = xr.Dataset(data, coords=coords, attrs=out_attrs)
    return ds


# ------------------------------------------------------------------------ verify


@dataclass
class Report:
    """``marshall verify`` of a refined cube: blocks keyed ``(level, block)``."""

    n_blocks: int = 0
    done: int = 0
    missing: list[tuple[int, int]] = field(default_factory=list)
    damaged: dict[tuple[int, int], list[str]] = field(default_factory=dict)
    unplanned: list[int] = field(default_factory=list)  # levels not planned yet
    regions: dict[tuple[int, int], tuple[slice, ...]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # of the store (store/verify.py)
    fix: dict | None = None
    spec: object = None

    @property
    def ok(self) -> bool:
        return not self.missing and not self.damaged and not self.unplanned and not self.problems


def _check(spec, level, arrays, sch, work: Work, mask) -> list[str]:
    from .cube import digest

    m = read_marker(spec.output, level, work.id)
    if m is None:
        return ["completion mark unreadable"]
    want = m.get("digests") or {}
    problems = []
    for name, v in sch.items():
        extra = v.shape[len(work.region) :]
        try:
            data = np.asarray(arrays[name][work.region + (slice(None),) * len(extra)])
        except Exception as exc:  # a chunk that does not decode: checksum, codec, truncation
            problems.append(f"{name}: chunk unreadable ({type(exc).__name__}: {exc})"[:200])
            continue
        if name == "done" and mask is not None and not np.array_equal(data, mask):
            problems.append("done: not set on exactly the block's planned points")
        if (
            name in want
            and digest(np.ascontiguousarray(data.astype(v.dtype, copy=False))) != (want[name])
        ):
            problems.append(f"{name}: data differ from what was written (missing or altered)")
    return problems


def verify(spec: SweepSpec) -> Report:
    """Check every level: its plan (recomputed from the level below when that level is
    intact, else as recorded), every planned block marked done, its chunks readable,
    ``done`` on exactly its planned points and the data as written."""
    import zarr

    from .verify import store_problems

    spec, problems, fix, lost = store_problems(spec)
    rep = Report(problems=problems, fix=fix, spec=spec)
    g = spec.refine.grid
    intact = True  # the level below is complete and undamaged: its plan can be recomputed
    for level in range(g.levels + 1):
        recorded = read_plan(spec.output, level)
        works = None
        if level == 0 or intact:
            try:
                step = None if level == 0 else step_from(spec, level - 1)
                works = plan_level(spec, level, step)
            except Exception:  # a level below that cannot be read: use the record
                works = None
            if works is not None and recorded is not None:
                if [w.id for w in works] != list(recorded["blocks"]):
                    rep.damaged[(level, -1)] = [
                        "the blocks planned from the level below differ from the recorded plan"
                    ]
        if recorded is None and level > 0:
            rep.unplanned.append(level)
            intact = False
            continue
        if works is None:
            chunks = level_chunks(spec, level)
            from ..grid import Plan

            plan = Plan(g.shape(level), chunks)
            works = [Work(level, b, plan.region(b)) for b in recorded["blocks"]]
            masks_known = False
        else:
            masks_known = True
        done = done_blocks(spec.output, level)
        rep.n_blocks += len(works)
        rep.done += len(done & {w.id for w in works})
        sch = schema(level_spec(spec, level))
        grp = zarr.open_group(level_dir(spec.output, level), mode="r", zarr_format=3)
        arrays = {}
        for name in sch:
            try:
                arrays[name] = grp[name]
            except KeyError:
                if name in lost:  # restored first (store/meta.py), then checked
                    continue
                for w in works:
                    rep.damaged[(level, w.id)] = [f"variable {name} is missing from the store"]
                intact = False
                break
        else:
            sch = {n: v for n, v in sch.items() if n in arrays}
            bad_here = False
            for w in works:
                rep.regions[(level, w.id)] = w.region
                if w.id not in done:
                    rep.missing.append((level, w.id))
                    bad_here = True
                    continue
                mask = w.points()[3] if masks_known else None
                problems = _check(spec, level, arrays, sch, w, mask)
                if problems:
                    rep.damaged[(level, w.id)] = problems
                    bad_here = True
            intact = intact and not bad_here
    return rep


def repair(spec: SweepSpec, report: Report, **run_kw) -> dict:
    """Recompute the damaged blocks of ``report`` (and whatever is missing) and finalize:
    their marks are dropped and the run resumes level by level."""
    from ..run import run
    from .cube import reopen_for_repair

    if report.ok:
        raise StoreError("nothing to repair")
    reopen_for_repair(Path(spec.output), spec)
    replan = min((lv for lv, b in report.damaged if b < 0), default=None)
    for level, b in report.damaged:
        if b >= 0 and (replan is None or level < replan):
            marker(spec.output, level, b).unlink(missing_ok=True)
    if replan is not None:  # a level planned from other data: it and those above start again
        for level in range(replan, spec.refine.grid.levels + 1):
            reset_level(spec, level)
    return run(spec, **run_kw)


def reset_level(spec: SweepSpec, level: int) -> None:
    """Forget a level: its plan, marks and written chunks (read as the fill value again)."""
    import shutil

    sd = state_dir(spec.output, level)
    with contextlib.suppress(OSError):
        os.unlink(sd / "plan.json")
    shutil.rmtree(sd / "done", ignore_errors=True)
    (sd / "done").mkdir(parents=True, exist_ok=True)
    for name in schema(level_spec(spec, level)):
        shutil.rmtree(level_dir(spec.output, level) / name / "c", ignore_errors=True)
