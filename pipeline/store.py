"""The cube on disk: template once, chunk-aligned region writes, completion marks.

Layout of a store ``X.zarr`` (zarr format 3)::

    X.zarr/            the cube: one array per variable, read by xarray.open_zarr
    X.zarr/_marshall/  a zarr group holding run state (config, hash) in its attributes
        done/<block>.json   written after the block's data: the block is finished
    X.zarr.lock        present while a run writes the store (owner pid, host, start)

A store is created whole or not at all: the template is written to a temporary
sibling and renamed into place. Blocks are disjoint and chunk-aligned, so no two
writers ever touch one zarr chunk; a block counts as done only once its marker
exists, and the marker is written (atomically) after its data.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import socket
import subprocess
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .config import SweepSpec
from .grid import Plan
from .kernels import claims as model_claims
from .kernels import labels as model_labels
from .models._common import regime_name

STATE = "_marshall"
FORMAT_VERSION = 1


class StoreError(RuntimeError):
    """A store that cannot be created, resumed or written as asked."""


# ----------------------------------------------------------------------- schema


@dataclass(frozen=True)
class Var:
    extra: tuple[str, ...]  # dims after the swept ones
    dtype: str
    fill: Any
    long_name: str
    units: str | None = None


def schema(spec: SweepSpec) -> dict[str, Var]:
    """Every variable of a sweep's cube (MODEL.md section 6)."""
    eq = ("equilibrium",)
    v = {
        "exists": Var(eq, "bool", False, "equilibrium exists"),
        "stable": Var(eq, "bool", False, "equilibrium is stable (Marshallian adjustment)"),
        "wage": Var(eq, "float64", np.nan, "South's wage in the equilibrium", "North wage = 1"),
        "rank": Var(eq, "int8", -1, "welfare rank (1 = highest wage; 0 = does not exist)"),
        "n_equilibria": Var((), "int8", -1, "number of equilibria (continua not counted)"),
        "n_stable": Var((), "int8", -1, "number of stable equilibria"),
        "regime": Var((), "int32", -1, "set of stable equilibria (bitmask over equilibrium)"),
        "best": Var((), "int8", -1, "highest-wage equilibrium"),
        "worst": Var((), "int8", -1, "lowest-wage equilibrium"),
        "knife_edge": Var((), "bool", False, "a defining condition holds with equality"),
        "claims": Var(("claim",), "int8", -1, "paper's claim where its assumptions hold"),
        "done": Var((), "bool", False, "point computed (false: not yet written)"),
    }
    if spec.model == "dynamic":
        t, s = ("target",), ("sector",)
        v |= {
            "a_hat": Var(
                s, "float64", np.nan, "steady-state relative productivity without a cluster", "1"
            ),
            "jump": Var(t, "float64", np.nan, "static wage jump w(0+)/w_B on coordinating", "1"),
            "half_life": Var(t, "float64", np.nan, "time until the gap 1 - x_k halves", "years"),
            "t99": Var(t, "float64", np.nan, "time until x_k reaches 99% of its limit", "years"),
            "pv_gain": Var(
                t, "float64", np.nan, "annuity-equivalent income gain over B1", "baseline income"
            ),
            "breakeven_kappa": Var(
                t,
                "float64",
                np.nan,
                "Bastable break-even cost pv_gain/rho",
                "years of baseline income",
            ),
            "path_feasible": Var(t, "bool", False, "C_k is an equilibrium at every saved time"),
            "status": Var(t, "int8", -1, "transition status code (0 = ok)"),
        }
        if spec.save_paths:
            v |= {
                "x_path": Var(
                    ("target", "time"),
                    "float64",
                    np.nan,
                    "relative productivity x_k(t) = A_kS/A_kN",
                    "1",
                ),
                "wage_path": Var(
                    ("target", "time"),
                    "float64",
                    np.nan,
                    "South's wage on the transition",
                    "North wage = 1",
                ),
            }
    return v


PARAM_NAMES = {
    "r": ("relative productivity lam_jS/lam_jN", "r_{j}"),
    "theta": ("gain from a full cluster", "\\theta_{j}"),
    "lam": ("raw productivity", "\\lambda_{j}"),
    "Lbar": ("labour at which a cluster is complete", "\\bar L_{j}"),
    "g": ("learning-by-doing rate", "g_{j}"),
    "eps": ("international spillovers", "\\varepsilon_{j}"),
    "alpha": ("clustering externality", "\\alpha"),
    "beta": ("modern technology without cluster", "\\beta"),
    "L_S": ("South's labour force", "L_S"),
    "rho": ("discount rate", "\\rho"),
    "Tc": ("coordination ramp", "T_c"),
}


def param_attrs(name: str) -> dict[str, str]:
    """CF-style attributes of a parameter coordinate, with the paper's symbol (LaTeX)."""
    base, _, idx = name.partition("_")
    if name in PARAM_NAMES:
        base, idx = name, ""
    if base == "lam":
        j, country = idx[:-1], idx[-1:]
        return {
            "long_name": f"raw productivity of {country} in sector {j}",
            "symbol": f"\\lambda_{{{j}{country}}}",
            "units": "1",
        }
    meaning, sym = PARAM_NAMES.get(base, (name, name))
    sector = f" in sector {idx}" if idx else ""
    sym = sym.replace("_{j}", f"_{{{idx}}}" if idx else "").replace("{j}", idx)
    units = {"Tc": "years", "rho": "1/year", "g": "1/year", "eps": "1/year"}.get(base, "1")
    return {"long_name": meaning + sector, "symbol": sym, "units": units}


# -------------------------------------------------------------------- template


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for pkg in (
        "marshall",
        "jax",
        "jaxlib",
        "numpy",
        "xarray",
        "zarr",
        "dask",
        "distributed",
        "diffrax",
    ):
        with contextlib.suppress(md.PackageNotFoundError):
            out[pkg] = md.version(pkg)
    return out


def _git_commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        res = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        commit = res.stdout.strip() if res.returncode == 0 else "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return commit + ("-dirty" if dirty and commit != "unknown" else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def template(spec: SweepSpec) -> xr.Dataset:
    """The cube with every variable lazily at its fill value (nothing computed)."""
    import dask.array as da

    labs = model_labels(spec.model, spec.J)
    claim_labels, claim_text = model_claims(spec.model)
    sizes = {
        "equilibrium": len(labs),
        "claim": len(claim_labels),
        "sector": spec.J,
        "target": spec.J,
    }
    coords: dict[str, Any] = {}
    for a in spec.axes:
        coords[a.name] = xr.Variable(
            (a.name,), a.values, attrs=param_attrs(a.name) | {"spacing": a.spacing}
        )
    coords["equilibrium"] = (
        "equilibrium",
        np.array(labs, dtype=object),
        {"long_name": "equilibrium label (MODEL.md)"},
    )
    coords["claim"] = (
        "claim",
        np.array(claim_labels, dtype=object),
        {"long_name": "claim of the paper", "statements": json.dumps(claim_text)},
    )
    if spec.model == "dynamic":
        coords["sector"] = ("sector", np.arange(1, spec.J + 1), {"long_name": "sector j"})
        coords["target"] = (
            "target",
            np.arange(1, spec.J + 1),
            {"long_name": "sector k where South coordinates at t = 0"},
        )
        if spec.save_paths:
            n_time = int(spec.fixed["n_time"])
            coords["time"] = (
                "time",
                np.linspace(0.0, spec.fixed["T"], n_time),
                {"long_name": "time since coordination", "units": "years"},
            )
            sizes["time"] = n_time
    for k, val in spec.fixed.items():
        coords[k] = xr.Variable((), val, attrs=param_attrs(k))

    stable_bits = [lab for lab in labs if lab[0] in "BC"]
    data_vars = {}
    for name, v in schema(spec).items():
        dims = spec.dims + v.extra
        shape = spec.shape + tuple(sizes[d] for d in v.extra)
        chunks = spec.chunks + tuple(sizes[d] for d in v.extra)
        arr = da.full(shape, v.fill, dtype=v.dtype, chunks=chunks)
        attrs = {"long_name": v.long_name} | ({"units": v.units} if v.units else {})
        if name in ("best", "worst"):
            attrs |= {"flag_values": list(range(len(labs))), "flag_meanings": " ".join(labs)}
        if name == "regime":
            attrs |= {
                "regime_bits": labs,
                "comment": "bit i set when equilibrium i is stable; "
                f"stable-capable: {' '.join(stable_bits)}",
            }
        if name == "claims":
            attrs |= {
                "flag_values": [-1, 0, 1],
                "flag_meanings": "not_applicable_or_not_computed failed held",
            }
        if name == "status":
            from .models.dynamic import STATUS

            masks = sorted(k for k in STATUS if k)
            attrs |= {
                "flag_masks": masks,
                "flag_meanings": "half_life_not_reached t99_not_reached solver_failed "
                "baseline_wage_zero a_hat_k_zero invalid_input",
                "status_bits": json.dumps({str(m): STATUS[m] for m in masks}),
            }
        if name == "rank":
            attrs |= {"comment": "-1: not computed"}
        data_vars[name] = xr.Variable(dims, arr, attrs=attrs)

    attrs = {
        "title": f"marshall sweep {spec.name}: model {spec.model}",
        "model": spec.model,
        "sectors": spec.J,
        "description": spec.description,
        "config": spec.text,
        "config_canonical": json.dumps(spec.canonical, sort_keys=True),
        "config_hash": spec.config_hash,
        "versions": json.dumps(_versions(), sort_keys=True),
        "git_commit": _git_commit(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "knife_edge_tolerance": 1e-12,
        "conventions": "CF-1.10; existence uses weak inequalities (MODEL.md sec. 1)",
        "source": "MODEL.md (marshall), JDE 2007 sections 2-4, IDB WP 544 section 5",
        "complete": 0,
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _encoding(ds: xr.Dataset, spec: SweepSpec) -> dict[str, dict]:
    """Fill values; the saved paths (float64 over ``time``, most of a dynamic cube)
    compressed with Blosc LZ4 and byte shuffle, which wrote them 2.8x faster than
    zarr's default Zstd and smaller (1.8x against 1.4x). Every other variable keeps
    the default: on the classification codes Zstd is ~8x smaller (benchmarks/RESULTS.md).
    """
    from zarr.codecs import BloscCodec

    paths = {"compressors": [BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")]}
    return {
        name: {"fill_value": v.fill} | (paths if "time" in v.extra else {})
        for name, v in schema(spec).items()
    }


# ---------------------------------------------------------------------- lock


def lock_path(path: Path, part: tuple[int, int] | None = None) -> Path:
    """The lock file of a whole-store run, or of part ``i`` of ``n`` of its blocks."""
    path = Path(path)
    suffix = ".lock" if part is None else f".lock.part-{part[0]}-of-{part[1]}"
    return path.with_name(path.name + suffix)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner(lp: Path) -> dict:
    try:
        return json.loads(lp.read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        return {}


def _stale(owner: dict) -> bool:
    """A lock is stale when its owner was a process on this host that is gone."""
    return (
        owner.get("host") == socket.gethostname()
        and bool(owner.get("pid"))
        and not _alive(int(owner["pid"]))
    )


def _part_of(lp: Path, store: Path) -> tuple[int, int] | None:
    rest = lp.name[len(store.name) + len(".lock") :]
    if not rest.startswith(".part-"):
        return None
    i, _, n = rest[len(".part-") :].partition("-of-")
    return int(i), int(n)


def _refuse(path: Path, lp: Path, owner: dict) -> StoreError:
    return StoreError(
        f"{path} is being written by another run (pid {owner.get('pid')} on "
        f"{owner.get('host')}, started {owner.get('started')}). Wait for it to finish, "
        f"or if that run is dead on another host, remove {lp}."
    )


@contextlib.contextmanager
def writer_lock(path: Path, part: tuple[int, int] | None = None):
    """Hold a store's writer lock; refuse if a live process holds a conflicting one.

    The lock file records owner pid, host and start time. A whole-store run conflicts
    with any other run; part ``i`` of ``n`` (disjoint block ranges, for many jobs on a
    cluster) conflicts with whole-store runs, the same part, and parts of another
    split. A lock left by a dead process on this host is stale and taken over (with
    a note on stderr).
    """
    import sys

    path = Path(path)
    lp = lock_path(path, part)
    lp.parent.mkdir(parents=True, exist_ok=True)
    me = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    for attempt in range(2):
        try:
            fd = os.open(lp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _owner(lp)
            if attempt == 0 and _stale(owner):
                print(
                    f"marshall: taking over stale lock {lp.name} of dead process "
                    f"{owner['pid']} (started {owner.get('started')})",
                    file=sys.stderr,
                )
                lp.unlink(missing_ok=True)
                continue
            raise _refuse(path, lp, owner) from None
        with os.fdopen(fd, "w") as fh:
            json.dump(me, fh)
        break
    try:
        # created ours first, then look for conflicting others: two racing runs both
        # see each other and both back off, never both proceed
        for other in path.parent.glob(path.name + ".lock*"):
            if other == lp:
                continue
            theirs = _part_of(other, path)
            compatible = (
                part is not None
                and theirs is not None
                and theirs[1] == part[1]
                and theirs[0] != part[0]
            )
            owner = _owner(other)
            if compatible or _stale(owner):
                continue
            raise _refuse(path, other, owner)
        yield me
    finally:
        with contextlib.suppress(OSError):
            if _owner(lp).get("pid") == me["pid"]:
                lp.unlink()


# -------------------------------------------------------------- create / resume


def state(path: Path) -> dict | None:
    """The run state of a marshall store (``None`` if ``path`` is not one)."""
    f = Path(path) / STATE / "zarr.json"
    if not f.is_file():
        return None
    return json.loads(f.read_text()).get("attributes", {})


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


def create(spec: SweepSpec, overwrite: bool = False) -> str:
    """Make sure ``spec.output`` holds this sweep's store; returns what was done:
    ``"created"``, ``"resumed"`` or ``"overwritten"``. Call under :func:`writer_lock`.
    """
    path = Path(spec.output)
    action = "created"
    if path.exists():
        st = state(path)
        if overwrite:
            shutil.rmtree(path)
            action = "overwritten"
        elif st is None:
            raise StoreError(
                f"{path} exists and is not a marshall cube; choose another output "
                "or pass --overwrite"
            )
        elif st.get("config_hash") == spec.config_hash:
            return "resumed"
        else:
            changes = diff_configs(json.loads(st["config_canonical"]), dict(spec.canonical))
            raise StoreError(
                f"{path} holds a sweep with a different config; resuming would mix two sweeps."
                "\n  changed: "
                + "; ".join(changes or ["(formatting only)"])
                + "\n  Use --overwrite to start again, or another output path."
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(path.name + ".partial-*"):  # left by a killed creation
        owner_pid = stale.name.rsplit("-", 1)[-1]
        if not (owner_pid.isdigit() and _alive(int(owner_pid))):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = path.with_name(f"{path.name}.partial-{uuid.uuid4().hex[:8]}-{os.getpid()}")
    ds = template(spec)
    ds.to_zarr(
        tmp,
        mode="w",
        compute=False,
        zarr_format=3,
        consolidated=False,
        encoding=_encoding(ds, spec),
    )
    import zarr

    grp = zarr.open_group(tmp, mode="r+").create_group(STATE)
    grp.attrs.update(
        {
            "format": FORMAT_VERSION,
            "config_hash": spec.config_hash,
            "config_canonical": json.dumps(spec.canonical, sort_keys=True),
            "n_blocks": Plan.of(spec).n_blocks,
        }
    )
    (tmp / STATE / "done").mkdir()
    try:
        os.rename(tmp, path)  # atomic; fails if another part created the store first
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        st = state(path)
        if st is None or st.get("config_hash") != spec.config_hash:
            raise
        return "resumed"
    return action


# ------------------------------------------------------------------ blocks


def marker(path: Path, block: int) -> Path:
    return Path(path) / STATE / "done" / f"{block}.json"


def done_blocks(path: Path) -> set[int]:
    """Blocks whose data is fully on disk."""
    d = Path(path) / STATE / "done"
    if not d.is_dir():
        return set()
    return {int(p.stem) for p in d.glob("*.json") if p.stem.isdigit()}


def _atomic_write(target: Path, text: str) -> None:
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)


_ARRAYS: dict[tuple[str, str], dict] = {}
_POOL = None


def _arrays(spec: SweepSpec) -> dict:
    """This process's open zarr arrays of a store (opened once per store and config)."""
    import zarr

    key = (str(Path(spec.output).resolve()), spec.config_hash)
    if key not in _ARRAYS:
        root = zarr.open_group(spec.output, mode="r+", zarr_format=3)
        _ARRAYS.clear()  # one store at a time per process
        _ARRAYS[key] = {name: root[name] for name in schema(spec)}
    return _ARRAYS[key]


def _writer_pool():
    global _POOL
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(4, thread_name_prefix="marshall-write")
    return _POOL


def write_block(
    spec: SweepSpec,
    block: int,
    out: dict[str, np.ndarray],
    plan: Plan | None = None,
    seconds: float = 0.0,
) -> dict:
    """Write one block's outputs into its chunk-aligned region, then its marker.

    The template was written once by :func:`create`; here each variable's region is
    assigned through the store's zarr arrays (what ``to_zarr(region=...)`` does, minus
    reopening and re-validating the store for every block), variables in parallel
    threads (compression releases the GIL). The marker follows the data, atomically.
    """
    plan = plan or Plan.of(spec)
    region = plan.region(block)
    arrays = _arrays(spec)
    sch = schema(spec)
    shape = out["regime"].shape

    def put(name: str) -> None:
        v = sch[name]
        data = np.ones(shape, bool) if name == "done" else np.asarray(out[name], dtype=v.dtype)
        arrays[name][region + (slice(None),) * len(v.extra)] = data

    # "done" last: a point reads as computed only after everything else is written
    for fut in [_writer_pool().submit(put, n) for n in sch if n != "done"]:
        fut.result()
    put("done")
    summary = {
        "block": block,
        "points": int(np.prod(shape)),
        "regimes": sorted(int(x) for x in np.unique(out["regime"])),
        "knife_edge": int(np.count_nonzero(out["knife_edge"])),
        "seconds": round(seconds, 4),
    }
    _atomic_write(marker(spec.output, block), json.dumps(summary))
    return summary


def finalize(spec: SweepSpec) -> dict:
    """After every block: name the regimes that occur (CF flag_values/flag_meanings and
    ``regime_labels``) and mark the cube complete."""
    import zarr

    path = Path(spec.output)
    plan = Plan.of(spec)
    missing = sorted(set(range(plan.n_blocks)) - done_blocks(path))
    if missing:
        raise StoreError(f"{len(missing)} blocks not done (first: {missing[:5]}); resume the run")
    codes: set[int] = set()
    knife = 0
    for b in range(plan.n_blocks):
        m = json.loads(marker(path, b).read_text())
        codes.update(m["regimes"])
        knife += m["knife_edge"]
    labs = model_labels(spec.model, spec.J)
    codes_sorted = sorted(codes)
    names = [regime_name(c, labs) for c in codes_sorted]
    root = zarr.open_group(path, mode="r+")
    root["regime"].attrs.update(
        {
            "flag_values": codes_sorted,
            "flag_meanings": " ".join(names),
            "regime_labels": {str(c): n for c, n in zip(codes_sorted, names)},
        }
    )
    root.attrs.update({"complete": 1, "knife_edge_points": knife})
    with warnings.catch_warnings():  # "consolidated metadata is not part of zarr v3 (yet)"
        warnings.simplefilter("ignore")
        zarr.consolidate_metadata(path)
    return {"regimes": dict(zip(codes_sorted, names)), "knife_edge_points": knife}


def open_cube(path: str | Path) -> xr.Dataset:
    """Open a cube (lazily, dask-backed). Points not yet computed have ``done == False``
    and read as NaN (floats) or -1 (integer codes)."""
    path = Path(path)
    if not (path / "zarr.json").is_file():
        raise FileNotFoundError(f"no marshall cube at {path}")
    with warnings.catch_warnings():  # a cube still being written has no consolidated metadata
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return xr.open_zarr(path)
