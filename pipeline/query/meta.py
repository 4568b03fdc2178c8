"""What a cube is: its model, swept dims, fixed values, labels, regimes; grid points.

Everything here reads the cube's own coordinates and attributes; the model's
declaration (:func:`decl`) is looked up only for what the cube cannot say itself
(e.g. the analytic boundaries), and a cube of a model that cannot be imported here
still reads.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ..models._spec import regime_name
from .errors import QueryError


def _plain(v: Any) -> Any:
    """numpy scalar -> python scalar (for tables and JSON)."""
    if isinstance(v, np.generic):
        return v.item()
    return v


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}"
    return str(v)


def model_name(ds: xr.Dataset) -> str:
    return str(ds.attrs.get("model", ""))


def decl(ds: xr.Dataset):
    """The cube's model declaration, or None where it cannot be found here."""
    from ..models import ModelNotFound, get

    try:
        return get(model_name(ds))
    except ModelNotFound:
        return None


def require_decl(ds: xr.Dataset, what: str):
    m = decl(ds)
    if m is None:
        raise QueryError(
            f"{what} needs the declaration of model {model_name(ds)!r}, which cannot be "
            "imported here (put its module on PYTHONPATH)"
        )
    return m


def J(ds: xr.Dataset) -> int:
    return int(ds.attrs.get("sectors", 2))


def params(ds: xr.Dataset) -> tuple[str, ...]:
    """The swept parameters (cube dimensions in config order)."""
    if "done" in ds:
        return tuple(str(d) for d in ds["done"].dims)
    lab = {"equilibrium", "claim", "sector", "target", "time"}
    return tuple(str(d) for d in ds.dims if d not in lab)


def sampled(ds: xr.Dataset) -> tuple[str, ...]:
    """Parameters that vary along the point dims without being one (a design's sampled
    parameters, coordinates along ``sample``)."""
    p = set(params(ds))
    return tuple(str(k) for k, c in ds.coords.items() if c.ndim and set(c.dims) <= p and k not in p)


def label_dims(ds: xr.Dataset) -> tuple[str, ...]:
    """Dimensions that are not swept parameters (``equilibrium``, ``claim``, ...)."""
    p = set(params(ds))
    return tuple(str(d) for d in ds.dims if d not in p)


def fixed(ds: xr.Dataset) -> dict[str, Any]:
    """Fixed parameters (scalar coordinates) and their values."""
    return {str(k): _plain(c.values[()]) for k, c in ds.coords.items() if c.ndim == 0}


def settings(ds: xr.Dataset) -> set[str]:
    """Fixed values that are settings of the computation, not economic parameters
    (e.g. the dynamic model's horizon ``T`` and ``n_time``)."""
    m = decl(ds)
    if m is None:
        return set()
    out = set()
    for name in fixed(ds):
        hit = m.param(name, J(ds))
        if hit is not None and hit[0].setting:
            out.add(name)
    return out


def labels(ds: xr.Dataset) -> list[str]:
    """Equilibrium labels in cube order."""
    return [str(x) for x in ds["equilibrium"].values]


def done(ds: xr.Dataset) -> xr.DataArray:
    """The points counted by queries: those computed. A refined cube's dense view
    (:func:`is_refined`) fills every point from its nearest computed point (``done``:
    it has a value); counts, shares, matches and claims take only the points computed
    there (its ``computed``), each once."""
    if "computed" in ds and is_refined(ds):
        return ds["computed"].astype(bool)
    if "done" in ds:
        return ds["done"].astype(bool)
    return xr.ones_like(ds["regime"], dtype=bool)


def is_refined(ds: xr.Dataset) -> bool:
    """The dense view of a refined sweep (``pipeline.open_cube`` of one): it has
    ``level`` and ``computed`` and says how many levels."""
    return "refine_levels" in ds.attrs and "level" in ds and "computed" in ds


def spec(ds: xr.Dataset):
    """The sweep a cube was computed from (its stored config), for what needs the
    model's kernel (e.g. bisecting a refined cube's boundaries)."""
    from ..config import ConfigError, parse_config

    text = ds.attrs.get("config")
    if not text:
        raise QueryError("this cube holds no config to recompute points from")
    try:
        return parse_config(text, output="unused.zarr")
    except ConfigError as exc:
        raise QueryError(f"the cube's stored config does not validate here: {exc}") from None


def bits(ds: xr.Dataset) -> list[str]:
    b = ds["regime"].attrs.get("regime_bits")
    return [str(x) for x in b] if b is not None else labels(ds)


def regime_names(ds: xr.Dataset) -> dict[int, str]:
    """``{code: name}`` of the regimes at computed points (``"B1+C1+C2"``; ``"none"``:
    no stable equilibrium), sorted by code."""
    stored = ds["regime"].attrs.get("regime_labels")
    if stored and ds.attrs.get("complete") and not ds.attrs.get("damaged_blocks"):
        if isinstance(stored, str):
            stored = json.loads(stored)
        return {int(k): str(v) for k, v in sorted(stored.items(), key=lambda kv: int(kv[0]))}
    reg = np.asarray(ds["regime"].values)
    codes = np.unique(reg[np.asarray(done(ds).values) & (reg >= 0)])
    b = bits(ds)
    return {int(c): regime_name(int(c), b) for c in codes}


def regime_code(ds: xr.Dataset, name: str) -> int:
    """Integer code of a regime name (labels in any order, ``"none"`` for no stable one)."""
    b = bits(ds)
    parts = [p.strip() for p in str(name).split("+") if p.strip()]
    if parts == ["none"]:
        return 0
    unknown = [p for p in parts if p not in b]
    if unknown or not parts:
        from .errors import ExpressionError

        raise ExpressionError(
            f"unknown regime {name!r}: {unknown or 'empty'} not among the "
            f"equilibria {', '.join(b)}; regimes in this cube: "
            f"{', '.join(regime_names(ds).values())}"
        )
    return int(sum(1 << b.index(p) for p in set(parts)))


def is_log(coord: xr.DataArray) -> bool:
    return coord.attrs.get("spacing") == "log"


def cell_edges(values, log: bool) -> np.ndarray:
    """Cell edges around grid values: midpoints (geometric on log axes), the outer edges
    as far out as the first inner one (a one-value axis gets a cell of +-5%)."""
    v = np.asarray(values, float)
    u = np.log(v) if log else v
    if u.size == 1:
        h = 0.05 if log else max(abs(u[0]) * 0.05, 0.5)
        e = np.array([u[0] - h, u[0] + h])
    else:
        mid = (u[1:] + u[:-1]) / 2
        e = np.concatenate([[u[0] - (mid[0] - u[0])], mid, [u[-1] + (u[-1] - mid[-1])]])
    return np.exp(e) if log else e


def nearest_index(coord: xr.DataArray, value: float) -> int:
    """Index of the grid value nearest ``value`` (in log distance on log axes)."""
    vals = np.asarray(coord.values, dtype=float)
    v = float(value)
    if is_log(coord) and v > 0 and np.all(vals > 0):
        return int(np.argmin(np.abs(np.log(vals) - math.log(v))))
    return int(np.argmin(np.abs(vals - v)))


def check_dim(ds: xr.Dataset, name: str) -> None:
    if name not in params(ds):
        fx = fixed(ds)
        if name in fx:
            raise QueryError(
                f"{name!r} is fixed at {_fmt(fx[name])} in this cube, "
                f"not swept; swept dimensions: {', '.join(params(ds))}"
            )
        raise QueryError(
            f"unknown dimension {name!r}; the cube's swept dimensions are "
            f"{', '.join(params(ds)) or 'none'}" + (f" (fixed: {', '.join(fx)})" if fx else "")
        )


def indexers(
    ds: xr.Dataset,
    values: Mapping[str, Any] | None,
    require_all: bool = False,
    free: Sequence[str] = (),
    method: str | None = None,
    snapped: dict | None = None,
) -> dict[str, int]:
    """Grid-point integer indexers for ``values`` (nearest in log distance on log axes).

    A value outside an axis' range is refused unless ``method="nearest"`` (then the
    axis' end is used), as xarray's ``sel`` does; a value inside is taken to the
    nearest grid point, and ``snapped`` (if given) collects ``{dim: (asked, used)}``
    where the two differ. Fixed parameters may be named with their own value. With
    ``require_all`` every swept dimension not in ``free`` and longer than 1 must be
    given.
    """
    if method not in (None, "nearest"):
        raise QueryError(f"method must be None or 'nearest'; got {method!r}")
    values = dict(values or {})
    swept, fx = params(ds), fixed(ds)
    idx: dict[str, int] = {}
    for k, v in values.items():
        if k in free:
            raise QueryError(f"{k!r} is a plotted axis; it cannot also be fixed with at")
        if k in swept:
            try:
                fv = float(v)
            except (TypeError, ValueError):
                raise QueryError(f"{k}={v!r}: not a number") from None
            grid = np.asarray(ds[k].values, dtype=float)
            lo, hi = float(grid.min()), float(grid.max())
            tol = 1e-9 * max(abs(lo), abs(hi), 1e-300)
            outside = fv < lo - tol or fv > hi + tol
            if not math.isfinite(fv) or (outside and method is None):
                raise QueryError(
                    f"{k}={_fmt(fv)} is outside the grid ({_fmt(lo)} .. {_fmt(hi)}); give a "
                    f"value inside it, or ask for the nearest grid point (method='nearest', "
                    f"CLI --nearest)"
                )
            i = nearest_index(ds[k], fv)
            idx[k] = i
            used = float(grid[i])
            if snapped is not None and not math.isclose(used, fv, rel_tol=1e-9, abs_tol=1e-300):
                snapped[k] = (fv, used)
        elif k in fx:
            fv = float(fx[k])
            if not math.isclose(float(v), fv, rel_tol=1e-9, abs_tol=1e-12):
                raise QueryError(
                    f"{k!r} is fixed at {_fmt(fv)} in this cube; it cannot be set to {_fmt(v)}"
                )
        else:
            check_dim(ds, k)
    for d in swept:
        if d in idx or d in free:
            continue
        if ds.sizes[d] == 1:
            idx[d] = 0
    if require_all:
        left = [d for d in swept if d not in idx and d not in free]
        if left:
            ranges = ", ".join(
                f"{d} ({ds.sizes[d]} values, {_fmt(ds[d].values[0])}..{_fmt(ds[d].values[-1])})"
                for d in left
            )
            eg = ", ".join(f"{d}={_fmt(ds[d].values[0])}" for d in left)
            raise QueryError(
                f"dimension(s) left over: {ranges}; give a value for each, e.g. "
                f"at({eg}) (CLI: " + " ".join(f"--at {d}=..." for d in left) + ")"
            )
    return idx


def coords_of(ds: xr.Dataset, sub: xr.Dataset) -> dict[str, Any]:
    """Parameter values (swept and fixed) of a point dataset."""
    swept = params(ds)
    lab = set(label_dims(ds))
    names = [d for d in swept if d in sub.coords] + [str(k) for k in sub.coords if k not in swept]
    return {
        k: _plain(sub.coords[k].values[()])
        for k in names
        if sub.coords[k].ndim == 0 and k not in lab
    }


def slice2d(
    ds: xr.Dataset, x: str, y: str, at: Mapping[str, Any] | None = None, method=None
) -> xr.Dataset:
    """The cube on the 2-D slice ``(y, x)``: other swept dims fixed by ``at`` (grid
    values, see :func:`indexers`; dims of size 1 need not be given). Raises a
    :class:`QueryError` naming an unknown dimension or the dims left over."""
    for d in (x, y):
        check_dim(ds, d)
    if x == y:
        raise QueryError(f"x and y are both {x!r}; choose two different dimensions")
    try:
        idx = indexers(ds, at, require_all=True, free=(x, y), method=method)
    except QueryError as exc:
        msg = str(exc)
        if msg.startswith("dimension(s) left over"):
            raise QueryError(f"the slice {x} x {y} is not 2-D: {msg}") from None
        raise
    return ds.isel(idx)
