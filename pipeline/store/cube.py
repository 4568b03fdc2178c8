"""The cube on disk: created whole or not at all, written block by block, marked done.

Layout of a store ``X.zarr`` (zarr format 3)::

    X.zarr/            the cube: one array per variable, read by xarray.open_zarr
    X.zarr/_marshall/  a zarr group whose attributes mark the directory as a marshall
                       cube (format, config, hash): the only kind of directory that
                       marshall ever replaces (``--overwrite``)
        done/<block>.json   written after the block's data: the block is finished;
                            holds a digest of every variable's block as written
    X.zarr.lock        present while a run writes the store (store/lock.py)

A store is created whole or not at all: the template is written to a temporary
sibling ``X.zarr.partial-<token>`` (its owner recorded beside it) and renamed into place.
Blocks are disjoint and chunk-aligned, so no two writers ever touch one zarr chunk; a
block counts as done only once its marker exists, and the marker is written
(atomically) after its data. Every chunk carries a CRC-32C checksum.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from ..config import SweepSpec
from ..grid import Plan
from ..models._spec import regime_name
from . import lock as _lock
from .errors import StoreError
from .schema import FORMAT_VERSION, encoding, schema, template

STATE = "_marshall"
PARTIAL = ".partial-"
OWNER = ".owner.json"


# ----------------------------------------------------------------------- identity


def state(path: Path) -> dict | None:
    """The run state of a marshall cube (its ``_marshall`` attributes), or ``None`` if
    ``path`` is not one (a marshall cube has both, and a config hash in them)."""
    path = Path(path)
    f = path / STATE / "zarr.json"
    try:
        if path.is_symlink() or not (path / "zarr.json").is_file() or not f.is_file():
            return None
        attrs = json.loads(f.read_text()).get("attributes", {})
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(attrs, dict) or "config_hash" not in attrs or "format" not in attrs:
        return None
    return attrs


def is_cube(path: Path) -> bool:
    return state(path) is not None


def _what(path: Path) -> str:
    if path.is_symlink():
        return "a symbolic link"
    if path.is_file():
        return "a file"
    if path.is_dir():
        return "a directory that is not a marshall cube"
    return "something that is not a marshall cube"


def check_target(path: Path, overwrite: bool = False) -> None:
    """Refuse an output path that marshall must not write: an existing file, link or
    directory that is not a marshall cube (never deleted, ``--overwrite`` or not),
    or a path under a file. Called before anything is written, the lock included."""
    path = Path(path)
    if not path.name or path.name in (".", ".."):
        raise StoreError(f"output {str(path)!r} does not name a cube; give a path such as "
                         "results/cubes/sweep.zarr")  # fmt: skip
    if path.exists() or path.is_symlink():
        if not is_cube(path):
            raise StoreError(
                f"{path} exists and is {_what(path)}; marshall writes only into a new path "
                "or a marshall cube, and never deletes anything else. Choose another "
                "output path."
            )
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise StoreError(f"cannot write {path}: {parent} is a file, not a directory")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise StoreError(f"cannot write {path}: {parent} is not writable "
                                 "(permission denied); choose another output path")  # fmt: skip
            fs = os.statvfs(parent)
            if fs.f_flag & os.ST_RDONLY or fs.f_blocks == 0:
                raise StoreError(f"cannot write {path}: {parent} is on a read-only or "
                                 "virtual filesystem; choose another output path")  # fmt: skip
            break


def diff_configs(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Human list of what differs between two canonical configs."""
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k, "<absent>"), new.get(k, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += diff_configs(a, b, f"{prefix}{k}.")
        elif a != b:
            sa, sb = json.dumps(a), json.dumps(b)
            if len(sa) > 60:
                sa = sa[:57] + "..."
            if len(sb) > 60:
                sb = sb[:57] + "..."
            out.append(f"{prefix}{k}: {sa} -> {sb}")
    return out


def remove_cube(path: Path) -> None:
    """Delete a marshall cube (and nothing else: anything else is refused)."""
    path = Path(path)
    if not is_cube(path):
        raise StoreError(f"{path} is {_what(path)}; marshall removes only its own cubes")
    shutil.rmtree(path)


# ------------------------------------------------------------------------ create


def _clean_partials(path: Path) -> None:
    """Remove templates left by killed creations of this store: names matched
    literally (``X.zarr.partial-<token>``), each with an owner record beside it
    (``...partial-<token>.owner.json``) of a process on this host that is gone.
    Another host's, a live process's, or one without a record is left alone."""
    prefix = _lock.stem(path) + PARTIAL  # a long name: cut and hashed (lock.stem)
    with contextlib.suppress(OSError):
        for rec in path.parent.iterdir():
            if not (rec.name.startswith(prefix) and rec.name.endswith(OWNER)):
                continue
            owner = _lock.read_owner(rec)
            if owner is None or "damaged" in owner or not _lock.stale(owner):
                continue
            tmp = rec.with_name(rec.name[: -len(OWNER)])
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp, ignore_errors=True)
            rec.unlink(missing_ok=True)


def create(spec: SweepSpec, overwrite: bool = False, sole: bool = False) -> str:
    """Make sure ``spec.output`` holds this sweep's store; returns what was done:
    ``"created"``, ``"resumed"`` (a cube of this config: its finished blocks are kept)
    or ``"overwritten"`` (``overwrite``: a marshall cube of another config was replaced;
    nothing but a marshall cube is ever removed). Call under the writer lock; ``sole``:
    the whole-store lock (no part of a split run writes beside this one), so the
    temporary files of killed writes are removed on resuming
    (:func:`pipeline.store.integrity.leftovers`).
    """
    import zarr

    path = Path(spec.output)
    check_target(path)
    action = "created"
    st = state(path)
    if st is not None:
        if st.get("config_hash") == spec.config_hash:
            if sole:
                from .integrity import remove_leftovers

                remove_leftovers(path)
            return "resumed"  # the same sweep: nothing to replace (--overwrite or not)
        if overwrite:
            remove_cube(path)
            action = "overwritten"
        else:
            changes = diff_configs(json.loads(st["config_canonical"]), dict(spec.canonical))
            raise StoreError(
                f"{path} holds a sweep with a different config; resuming would mix two sweeps."
                "\n  changed: "
                + "; ".join(changes or ["(formatting only)"])
                + "\n  Use --overwrite to start again, or another output path."
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    _clean_partials(path)
    owner = _lock.me()
    tmp = path.with_name(f"{_lock.stem(path)}{PARTIAL}{owner['token'][:12]}")
    rec = tmp.with_name(tmp.name + OWNER)
    _atomic_write(rec, json.dumps(owner))  # first: whatever follows is known to be ours
    try:
        if spec.refine is None:
            ds = template(spec)
            ds.to_zarr(tmp, mode="w-", compute=False, zarr_format=3, consolidated=False,
                       encoding=encoding(spec))  # fmt: skip
        else:  # a refined sweep: a group per level (store/levels.py)
            from .levels import write_template

            write_template(spec, tmp)
        grp = zarr.open_group(tmp, mode="r+").create_group(STATE)
        grp.attrs.update(_state_attrs(spec))
        (tmp / STATE / "done").mkdir()
        from .meta import record

        record(tmp, spec)  # coordinates, attributes, arrays' metadata (store/meta.py)
        os.rename(tmp, path)  # atomic; fails if another part created the store first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        st = state(path)
        if st is not None and st.get("config_hash") == spec.config_hash:
            return "resumed"
        raise
    finally:
        rec.unlink(missing_ok=True)
    return action


def _state_attrs(spec: SweepSpec) -> dict:
    """The ``_marshall`` attributes of a new store (a refined one adds ``refine``)."""
    if spec.refine is not None:
        from ..grid import level_plan

        n_blocks = level_plan(spec, 0).n_blocks  # level 0's; the others are planned later
        extra = {"refine": spec.refine.canonical()}
    else:
        n_blocks, extra = Plan.of(spec).n_blocks, {}
    return {
        "format": FORMAT_VERSION,
        "config_hash": spec.config_hash,
        "config_canonical": json.dumps(spec.canonical, sort_keys=True),
        "n_blocks": n_blocks,
    } | extra


# ------------------------------------------------------------------------ blocks


def marker(path: Path, block: int) -> Path:
    return Path(path) / STATE / "done" / f"{block}.json"


def done_blocks(path: Path) -> set[int]:
    """Blocks whose data is fully on disk (their marker exists)."""
    d = Path(path) / STATE / "done"
    if not d.is_dir():
        return set()
    return {int(p.stem) for p in d.glob("*.json") if p.stem.isdigit()}


def read_marker(path: Path, block: int) -> dict | None:
    try:
        return json.loads(marker(path, block).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def digest(a: np.ndarray) -> str:
    """A block's content as written (dtype, shape and bytes; NaN payloads included)."""
    a = np.ascontiguousarray(a)
    h = hashlib.blake2b(digest_size=12)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def _atomic_write(target: Path, text: str) -> None:
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


class CubeWriter:
    """Writes blocks into a created store: owns its open zarr arrays and a few writer
    threads (compression releases the GIL). One per run or task; use as a context
    manager or call :meth:`close`."""

    def __init__(self, spec: SweepSpec, plan: Plan | None = None):
        from concurrent.futures import ThreadPoolExecutor

        import zarr

        self.spec = spec
        self.plan = plan or Plan.of(spec)
        self.schema = schema(spec)
        root = zarr.open_group(spec.output, mode="r+", zarr_format=3)
        # every chunk is written, also one that equals the fill value throughout (zarr
        # skips those by default): a chunk missing from a done block is then damage
        self.arrays = {name: root[name].with_config({"write_empty_chunks": True})
                       for name in self.schema}  # fmt: skip
        self.pool = ThreadPoolExecutor(4, thread_name_prefix="marshall-write")
        from .integrity import layouts

        self.layouts = layouts(Path(spec.output), self.schema, len(spec.dims))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    def write(self, block: int, out: dict[str, np.ndarray], seconds: float = 0.0) -> dict:
        """Write one block's outputs into its chunk-aligned region, then its marker.

        The template was written once by :func:`create`; here each variable's region is
        assigned through the store's zarr arrays (what ``to_zarr(region=...)`` does,
        minus reopening and re-validating the store for every block), variables in
        parallel threads. ``done`` is written last, then the marker, atomically.
        """
        from .integrity import written

        region = self.plan.region(block)
        shape = out["regime"].shape
        digests: dict[str, str] = {}

        def put(name: str) -> None:
            v = self.schema[name]
            if name == "done":
                data = np.ones(shape, bool)
            else:
                data = np.asarray(out[name], dtype=v.dtype)
            self.arrays[name][region + (slice(None),) * len(v.extra)] = data
            digests[name] = digest(data)

        for fut in [self.pool.submit(put, n) for n in self.schema if n != "done"]:
            fut.result()
        put("done")  # a point reads as computed only after everything else is written
        summary = {
            "block": block,
            "points": int(np.prod(shape)),
            "regimes": sorted(int(x) for x in np.unique(out["regime"])),
            "knife_edge": int(np.count_nonzero(out["knife_edge"])),
            "seconds": round(seconds, 4),
            "digests": dict(sorted(digests.items())),
            "crc32c": written(self.layouts, region),  # where each chunk belongs (integrity.py)
        }
        _atomic_write(marker(self.spec.output, block), json.dumps(summary))
        return summary


def finalize(spec: SweepSpec) -> dict:
    """After every block: name the regimes that occur (CF ``flag_values`` and
    ``flag_meanings``, and ``regime_labels`` as JSON) and mark the cube complete."""
    import zarr

    if spec.refine is not None:
        from .levels import finalize as finalize_levels

        return finalize_levels(spec)
    path = Path(spec.output)
    plan = Plan.of(spec)
    missing = sorted(set(range(plan.n_blocks)) - done_blocks(path))
    if missing:
        raise StoreError(f"{len(missing)} blocks not done (first: {missing[:5]}); resume the run")
    codes: set[int] = set()
    knife = 0
    for b in range(plan.n_blocks):
        m = read_marker(path, b)
        if m is None:
            raise StoreError(f"the completion mark of block {b} is unreadable; run "
                             f"`marshall verify {path} --repair`")  # fmt: skip
        codes.update(m["regimes"])
        knife += m["knife_edge"]
    labs = spec.decl.labels(spec.J)
    codes_sorted = sorted(codes)
    names = [regime_name(c, labs) for c in codes_sorted]
    root = zarr.open_group(path, mode="r+")
    root["regime"].attrs.update(
        {
            "flag_values": codes_sorted,
            "flag_meanings": " ".join(names),
            "regime_labels": json.dumps({str(c): n for c, n in zip(codes_sorted, names)}),
        }
    )
    root.attrs.update({"complete": 1, "knife_edge_points": knife})
    from .meta import consolidate, record

    consolidate(path, spec)
    record(path, spec)
    return {"regimes": dict(zip(codes_sorted, names)), "knife_edge_points": knife}


def reopen_for_repair(path: Path, spec: SweepSpec | None = None) -> None:
    """Mark a finalized cube incomplete again (before blocks are recomputed); its
    metadata must be whole (:func:`pipeline.store.meta.restore` first): consolidating
    never drops an array."""
    import zarr

    from .meta import consolidate, record

    root = zarr.open_group(path, mode="r+")
    root.attrs.update({"complete": 0})
    consolidate(path, spec)
    if spec is not None:
        record(path, spec)
