"""Tables over a cube: summaries, regime shares, the equilibria at a point, matching
points, the claims. Every function takes the cube (an xarray Dataset) first; masks are
restricted to computed points (``done``). Nothing here computes equilibria."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..models._spec import regime_name
from . import meta
from .errors import QueryError
from .expr import where


def _compute(*objs):
    """Compute several lazy xarray objects in one pass over the store."""
    import dask

    return dask.compute(*objs)


def multiple(ds: xr.Dataset) -> xr.DataArray:
    """Mask of computed points with more than one stable equilibrium."""
    return ((ds["n_stable"] > 1) & meta.done(ds)).rename("multiple")


def summary(ds: xr.Dataset) -> dict:
    """Model, dimensions (size, range, spacing), fixed values, point and regime counts."""
    done = meta.done(ds)
    n_done, n_knife, n_mult = (
        int(x) for x in _compute(done.sum(), (ds["knife_edge"] & done).sum(), multiple(ds).sum())
    )
    dims = {}
    for d in meta.params(ds):
        v = ds[d].values
        dims[d] = {
            "size": int(v.size),
            "min": meta._plain(v.min()),
            "max": meta._plain(v.max()),
            "spacing": ds[d].attrs.get("spacing", ""),
        }
    samp = {}
    for d in meta.sampled(ds):
        v = ds[d].values
        samp[d] = {
            "min": meta._plain(v.min()),
            "max": meta._plain(v.max()),
            "distribution": ds[d].attrs.get("distribution", ""),
        }
    return {
        "model": meta.model_name(ds),
        "sectors": meta.J(ds),
        "description": ds.attrs.get("description", ""),
        "dims": dims,
        "sampled": samp,
        "design": json.loads(ds.attrs["design"]) if "design" in ds.attrs else None,
        "fixed": meta.fixed(ds),
        "points": math.prod(ds.sizes[d] for d in meta.params(ds)),
        "done": n_done,
        "complete": bool(ds.attrs.get("complete", 0)),
        "knife_edge": n_knife,
        "multiple": n_mult,
        "equilibria": meta.labels(ds),
        "regimes": {str(k): v for k, v in meta.regime_names(ds).items()},
    }


def regime(ds: xr.Dataset) -> xr.DataArray:
    """Regime names as a string DataArray over the swept dims ("" where not computed)."""
    names = meta.regime_names(ds)
    reg = ds["regime"]
    codes = np.asarray(reg.values)
    out = np.full(codes.shape, "", dtype=object)
    done = np.asarray(meta.done(ds).values)
    for c, n in names.items():
        out[(codes == c) & done] = n
    return xr.DataArray(out, dims=reg.dims, coords=reg.coords, name="regime_name")


def mask(ds: xr.Dataset, m: str | xr.DataArray) -> xr.DataArray:
    """An expression's or a boolean DataArray's mask of computed points."""
    if isinstance(m, str):
        return where(ds, m)
    if not isinstance(m, xr.DataArray):
        raise QueryError("mask must be an expression or a boolean DataArray")
    done = meta.done(ds)
    return (m.astype(bool) & done).broadcast_like(done).transpose(*meta.params(ds))


#: what :func:`regime_share` counts: ``area`` (every point of the finest grid) or
#: ``points`` (the points computed)
SHARE_OF = ("area", "points")
#: the caption of each kind of share (a table's column header)
SHARE_CAPTION = {
    "area": "share of area (finest grid)",
    "points": "share of computed points",
}


def _share_mask(ds: xr.Dataset, where, of: str) -> xr.DataArray:
    """The points a share counts. On a refined cube's dense view, ``area``: every
    finest-grid point with a value (each shows its nearest computed point, so the
    count measures area); ``points``: the computed points only, each once. Elsewhere
    the two are the same points."""
    if of not in SHARE_OF:
        raise QueryError(f"of must be one of {', '.join(SHARE_OF)}; got {of!r}")
    if of == "points" or not meta.is_refined(ds):
        return meta.done(ds) if where is None else mask(ds, where)
    view = ds.drop_vars("computed")  # queries over the view then count every filled point
    if where is None:
        return meta.done(view).transpose(*meta.params(ds))
    return mask(view, where)


def regime_share(
    ds: xr.Dataset,
    by: str | Sequence[str] | None = None,
    where: str | xr.DataArray | None = None,
    of: str = "area",
) -> pd.Series | pd.DataFrame:
    """Share of the swept region in each regime.

    ``by=None``: a Series indexed by regime name (sums to 1). ``by="theta_2"`` (or a
    list of dims): a DataFrame, one row per value of ``by``, one column per regime.
    ``where`` (an expression or mask) restricts the points counted.

    ``of="area"`` (default): on a refined cube, the share of the finest grid's points
    (the dense view: a point not computed counts as its nearest computed point), that
    is of the area; ``of="points"``: the share of the computed points, which a refined
    sweep places densely near boundaries, so that thin regions there count far more
    than their area. On a grid or a design cube the two are the same. The result's
    ``name`` (a Series) and ``attrs["caption"]`` say which it is
    (:data:`SHARE_CAPTION`), ``attrs["of"]`` too.
    """
    m = _share_mask(ds, where, of)
    by_dims: list[str] = [] if by is None else ([by] if isinstance(by, str) else list(by))
    for d in by_dims:
        meta.check_dim(ds, d)
    names = meta.regime_names(ds)
    red = [d for d in meta.params(ds) if d not in by_dims]
    reg = ds["regime"]
    counts = _compute(*[((reg == c) & m).sum(red) for c in names])
    total = _compute(m.sum(red))[0]
    if not by_dims:
        n = float(total)
        vals = [float(c) / n if n else math.nan for c in counts]
        out = pd.Series(
            vals, index=pd.Index(list(names.values()), name="regime"), name=SHARE_CAPTION[of]
        )
        out.attrs |= {"of": of, "caption": SHARE_CAPTION[of], "counted": int(n)}
        return out
    tot = np.asarray(total.transpose(*by_dims).values, dtype=float)
    cols = {}
    for (_, nm), cnt in zip(names.items(), counts, strict=True):
        with np.errstate(invalid="ignore", divide="ignore"):
            cols[nm] = (np.asarray(cnt.transpose(*by_dims).values, float) / tot).ravel()
    index = (
        pd.MultiIndex.from_product([ds[d].values for d in by_dims], names=by_dims)
        if len(by_dims) > 1
        else pd.Index(ds[by_dims[0]].values, name=by_dims[0])
    )
    df = pd.DataFrame(cols, index=index)
    df.columns.name = "regime"
    df.attrs |= {"of": of, "caption": SHARE_CAPTION[of]}
    return df


def point(ds: xr.Dataset, method=None, snapped=None, **values: float) -> xr.Dataset:
    """The cube at the grid point of ``values`` (all swept dims of size > 1); see
    :func:`pipeline.query.meta.indexers` for values off the grid."""
    return ds.isel(meta.indexers(ds, values, require_all=True, method=method, snapped=snapped))


def at(ds: xr.Dataset, method: str | None = None, **values: float) -> pd.DataFrame:
    """Equilibria at the grid point of ``values``: a table indexed by equilibrium with
    columns ``exists, stable, wage, rank``. ``df.attrs`` holds ``coords`` (every
    parameter's value at the point used), ``snapped`` (``{dim: (asked, used)}`` where
    the grid point differs from the value asked), ``done``, ``regime``,
    ``n_equilibria``, ``n_stable``, ``best``, ``worst``, ``knife_edge`` and
    ``claims`` (``{claim: "held" | "failed" | "not applicable"}``).

    A value outside the grid is refused unless ``method="nearest"``."""
    snapped: dict = {}
    sub = point(ds, method=method, snapped=snapped, **values).compute()
    rank = "wage_rank" if "wage_rank" in sub else "rank"
    df = pd.DataFrame(
        {
            "exists": np.asarray(sub["exists"].values, bool),
            "stable": np.asarray(sub["stable"].values, bool),
            "wage": np.asarray(sub["wage"].values, float),
            "rank": np.asarray(sub[rank].values, int),
        },
        index=pd.Index(meta.labels(ds), name="equilibrium"),
    )
    code = int(sub["regime"].values)
    done = bool(sub["done"].values) if "done" in sub else True
    labs = meta.labels(ds)

    def lab(i):
        i = int(i)
        return labs[i] if 0 <= i < len(labs) else None

    claims = {}
    own = done and (not meta.is_refined(ds) or bool(sub["computed"].values))
    if "claims" in sub and "claim" in sub.dims and own:  # claims of a point computed there
        word = {1: "held", 0: "failed"}
        claims = {
            str(c): word.get(int(v), "not applicable")
            for c, v in zip(sub["claim"].values, sub["claims"].values, strict=True)
        }
    df.attrs = {
        "coords": meta.coords_of(ds, sub),
        "snapped": snapped,
        "done": done,
        "regime": regime_name(code, meta.bits(ds)) if done and code >= 0 else None,
        "n_equilibria": int(sub["n_equilibria"].values),
        "n_stable": int(sub["n_stable"].values),
        "best": lab(sub["best"].values),
        "worst": lab(sub["worst"].values),
        "knife_edge": bool(sub["knife_edge"].values),
        "claims": claims,
    }
    if meta.is_refined(ds):  # a refined cube: was the point computed, or filled in?
        df.attrs |= {"computed": bool(sub["computed"].values), "level": int(sub["level"].values)}
    return df


def per_target(ds: xr.Dataset) -> list[str]:
    """Variables over the swept dims and ``target`` only (the transition's summaries)."""
    swept = set(meta.params(ds))
    return [str(n) for n, v in ds.data_vars.items() if set(v.dims) - swept == {"target"}]


def transition(ds: xr.Dataset, method: str | None = None, **values: float) -> pd.DataFrame:
    """Per target ``k`` the variables over ``target`` at the grid point of ``values``
    (the dynamic model's ``jump, half_life, t99, pv_gain, breakeven_kappa,
    path_feasible, status``) and ``a_hat`` of sector ``k`` if the cube has it.
    ``status`` is also decoded (``status_text``) from the cube's ``status_bits``."""
    present = per_target(ds)
    if not present:
        raise QueryError("this cube has no transition variables (none over 'target')")
    snapped: dict = {}
    sub = point(ds, method=method, snapped=snapped, **values).compute()
    data = {v: np.asarray(sub[v].values) for v in present}
    if "a_hat" in sub and "sector" in sub.dims:
        data["a_hat"] = np.asarray(sub["a_hat"].values)
    if "status" in data:
        data["status_text"] = [status_text(ds, int(s)) for s in data["status"]]
    df = pd.DataFrame(data, index=pd.Index(sub["target"].values, name="target"))
    df.attrs = {"coords": meta.coords_of(ds, sub), "snapped": snapped}
    return df


def status_text(ds: xr.Dataset, code: int) -> str:
    """The meanings of a ``status`` value, from the cube's own ``status_bits``."""
    if code < 0:
        return "not computed"
    if code == 0:
        return "ok"
    try:
        bits = json.loads(ds["status"].attrs.get("status_bits", "{}"))
    except (KeyError, TypeError, json.JSONDecodeError):
        bits = {}
    parts = [text for b, text in sorted(bits.items(), key=lambda kv: int(kv[0]))
             if code & int(b)]  # fmt: skip
    return "; ".join(parts) or f"status {code}"


def count(ds: xr.Dataset, m: str | xr.DataArray) -> int:
    """Number of computed points satisfying an expression or mask."""
    return int(mask(ds, m).sum())


def points(ds: xr.Dataset, m: str | xr.DataArray, limit: int | None = None) -> pd.DataFrame:
    """Table of the points where an expression/mask holds (C order): their swept
    coordinates, regime name, ``n_stable``, best equilibrium and its wage."""
    msk = np.asarray(mask(ds, m).values, bool)
    flat = np.flatnonzero(msk)
    n = int(flat.size)
    if limit is not None:
        flat = flat[: max(0, limit)]
    swept = meta.params(ds)
    cols: dict[str, Any] = {}
    if msk.ndim:
        for d, i in zip(swept, np.unravel_index(flat, msk.shape), strict=True):
            cols[d] = np.asarray(ds[d].values)[i]
        for d in meta.sampled(ds):  # a design's parameters along its samples
            cols[d] = np.asarray(ds[d].transpose(*swept).values).reshape(-1)[flat]
    reg, nst, best = (
        np.asarray(ds[v].transpose(*swept).values).reshape(-1)[flat]
        for v in ("regime", "n_stable", "best")
    )
    wage = np.asarray(ds["wage"].transpose(*swept, "equilibrium").values)
    wage = wage.reshape(-1, wage.shape[-1])[flat] if flat.size else np.zeros((0, wage.shape[-1]))
    b, labs = meta.bits(ds), meta.labels(ds)
    cols["regime"] = [regime_name(int(c), b) for c in reg]
    cols["n_stable"] = nst.astype(int)
    cols["best"] = [labs[int(x)] if x >= 0 else "" for x in best]
    cols["best_wage"] = [float(wage[i, int(x)]) if x >= 0 else math.nan for i, x in
                         enumerate(best)]  # fmt: skip
    df = pd.DataFrame(cols)
    df.attrs = {"matches": int(n)}
    return df


def claims(ds: xr.Dataset, examples: int = 3) -> pd.DataFrame:
    """Per claim: its statement, points ``checked`` (computed, assumptions hold),
    ``held``, ``failed``, ``not_applicable``, and up to ``examples`` counterexamples
    (dicts of coordinates) where it failed."""
    if "claims" not in ds or "claim" not in ds.dims:
        raise QueryError("this cube has no claims")
    labels = [str(c) for c in ds["claim"].values]
    try:
        statements = json.loads(ds["claim"].attrs.get("statements", "{}"))
    except (TypeError, json.JSONDecodeError):
        statements = {}
    done = meta.done(ds)
    swept = meta.params(ds)
    cl = ds["claims"]
    held, failed, na = _compute(
        ((cl == 1) & done).sum(swept), ((cl == 0) & done).sum(swept), ((cl < 0) & done).sum(swept)
    )
    rows = []
    for i, lab in enumerate(labels):
        h, f, n = int(held.values[i]), int(failed.values[i]), int(na.values[i])
        ex = []
        if f and examples:
            m = ((cl.isel(claim=i) == 0) & done).transpose(*swept)
            pts = points(ds, m, limit=examples)
            ex = [{k: meta._plain(v) for k, v in r.items()} for r in pts.to_dict("records")]
        rows.append(
            {
                "claim": lab,
                "statement": statements.get(lab, ""),
                "checked": h + f,
                "held": h,
                "failed": f,
                "not_applicable": n,
                "examples": ex,
            }
        )
    return pd.DataFrame(rows).set_index("claim")


def claims_ok(ds: xr.Dataset) -> bool:
    """True when no claim fails at a computed point where its assumptions hold."""
    return int(claims(ds, examples=0)["failed"].sum()) == 0
