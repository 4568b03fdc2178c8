"""The boundaries of a 2-D slice.

On a dense cube: the analytic boundaries, where a defining condition of an equilibrium
holds with equality. They come from the model's own margins (``economy``, evaluated by
numpy), the same code whose comparisons classify the cube, so a boundary drawn on a
phase diagram is exactly where the colours beneath it change.

On a refined cube (:func:`bisected`): the boundaries between the regions of a
categorical output, each point placed by bisection along a finest-grid edge whose ends
differ, to 1e-12 relative in the parameter, with the model's own kernel classifying
the points tried (:func:`pipeline.kernels.classifier`; this imports JAX), so the line
no longer depends on the grid."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from ..models._spec import NUMPY, regime_name
from . import meta
from .errors import QueryError


@dataclass(frozen=True)
class Boundary:
    """An analytic boundary in the plane of a 2-D slice.

    ``name`` is plain text (e.g. ``"C2: r_1/r_2 = theta_1"``), ``label`` the same in
    mathtext, ``equilibrium`` the label whose existence changes across it (empty for a
    reference line such as the Mill test's ``c = 1``), and ``segments`` the curve as
    ``(n, 2)`` arrays of ``(x, y)`` points.
    """

    name: str
    label: str
    equilibrium: str
    x: str
    y: str
    segments: tuple[np.ndarray, ...] = field(default=(), repr=False)

    def __bool__(self) -> bool:
        return bool(self.segments)


def _fine(coord: xr.DataArray, n: int) -> tuple[np.ndarray, bool]:
    v = np.asarray(coord.values, float)
    lo, hi = float(v.min()), float(v.max())
    log = meta.is_log(coord) and lo > 0
    if hi == lo:
        return np.array([lo]), log
    return (np.geomspace(lo, hi, n) if log else np.linspace(lo, hi, n)), log


def _holds(lhs, op, rhs):
    return {"<=": lhs <= rhs, "<": lhs < rhs, ">=": lhs >= rhs, ">": lhs > rhs}[op]


def margins_on(ds: xr.Dataset, values: Mapping[str, np.ndarray]):
    """The model's margins at arbitrary parameter values (config names -> float64
    arrays of one shape), fixed parameters taken from the cube."""
    m = meta.require_decl(ds, "the analytic boundaries")
    J = meta.J(ds)
    shape = np.shape(next(iter(values.values())))
    p: dict[str, np.ndarray] = {}
    for name, v in meta.fixed(ds).items():
        hit = m.param(name, J)
        if hit is not None and isinstance(v, (int, float)):
            p[hit[1]] = np.full(int(np.prod(shape)), float(v))
    for name, v in values.items():
        hit = m.param(name, J)
        p[hit[1] if hit else name] = np.asarray(v, float).ravel()
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        inputs = m.inputs(p, J)
        return m.economy(NUMPY, **inputs)["margins"], shape


def boundaries(
    ds: xr.Dataset, x: str, y: str, at: Mapping[str, Any] | None = None, n: int = 401
) -> list[Boundary]:
    """The boundaries crossing the 2-D slice ``(x, y)``: on a refined cube those of its
    regimes, bisected (:func:`bisected`); otherwise the analytic ones, below.

    Every defining condition ``lhs OP rhs`` that the model marks as a boundary is
    contoured as ``log(lhs / rhs) = 0`` on an ``n x n`` grid spanning the slice
    (log-spaced on log axes; on a sampled cube the sampled ranges of ``x`` and ``y``,
    the other sampled parameters at ``at`` or their median), only where the
    equilibrium's other conditions hold (so that crossing the curve changes whether it
    exists) and where the model says to draw it. Only conditions that change sign in
    the slice are returned.
    """
    if meta.is_refined(ds):
        return bisected(ds, x, y, at)
    if meta.sampled(ds):
        xs, lx, ys, ly, others = _sampled_plane(ds, x, y, at, n)
    else:
        sub = meta.slice2d(ds, x, y, at)
        xs, lx = _fine(sub[x], n)
        ys, ly = _fine(sub[y], n)
        others = {str(k): float(c.values) for k, c in sub.coords.items()
                  if c.ndim == 0 and k in meta.params(ds)}  # fmt: skip
    return _contours(ds, x, y, xs, lx, ys, ly, others)


def _sampled_plane(ds, x, y, at, n):
    """A sampled cube's plane ``(x, y)``: the sampled ranges of ``x`` and ``y``, every
    other sampled parameter at ``at`` or at its median over the samples."""
    samp = meta.sampled(ds)
    for d in (x, y):
        if d not in samp:
            raise meta.QueryError(f"{d!r} is not a sampled parameter; sampled: {', '.join(samp)}")
    if x == y:
        raise meta.QueryError(f"x and y are both {x!r}; choose two different parameters")
    at = dict(at or {})
    unknown = [k for k in at if k not in samp and k not in meta.fixed(ds)]
    if unknown:
        raise meta.QueryError(f"unknown parameter(s) {unknown}; sampled: {', '.join(samp)}")
    others = {d: float(at[d]) if d in at else float(np.median(ds[d].values))
              for d in samp if d not in (x, y)}  # fmt: skip
    xs, lx = _fine(ds[x], n)
    ys, ly = _fine(ds[y], n)
    return xs, lx, ys, ly, others


def _contours(ds, x, y, xs, lx, ys, ly, others) -> list[Boundary]:
    import contourpy

    X, Y = np.meshgrid(xs, ys)
    values = {x: X, y: Y} | {k: np.full(X.shape, v) for k, v in others.items()}
    mg, shape = margins_on(ds, values)
    U = np.log10(X) if lx else X
    V = np.log10(Y) if ly else Y
    out = []
    drawn: list[np.ndarray] = []  # a curve given twice (e.g. per sector, alike) is drawn once
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        arrays = [(np.broadcast_to(np.asarray(a, float), (X.size,)),
                   np.broadcast_to(np.asarray(b, float), (X.size,)))
                  for a, b in zip(mg.lhs, mg.rhs, strict=True)]  # fmt: skip
        for i, eq in enumerate(mg.eq):
            if not mg.boundary[i]:
                continue
            lhs, rhs = arrays[i]
            F = np.log(lhs / rhs)
            rel = np.ones(X.size, bool)
            if eq is not None:
                for k, other in enumerate(mg.eq):
                    if k != i and other == eq:
                        rel &= _holds(*arrays[k][:1], mg.op[k], arrays[k][1])
            if mg.draw_where[i] is not None:
                rel &= np.broadcast_to(np.asarray(mg.draw_where[i], bool), (X.size,))
            F = np.where(np.isfinite(F) & rel, F, np.nan).reshape(X.shape)
            if not (np.nanmin(F, initial=np.inf) < 0 < np.nanmax(F, initial=-np.inf)):
                continue
            if any(np.array_equal(F, G, equal_nan=True) for G in drawn):
                continue
            drawn.append(F)
            gen = contourpy.contour_generator(U, V, np.ma.masked_invalid(F))
            segs = []
            for s in gen.lines(0.0):
                s = np.asarray(s, float)
                if len(s) < 2:
                    continue
                if lx:
                    s[:, 0] = 10 ** s[:, 0]
                if ly:
                    s[:, 1] = 10 ** s[:, 1]
                segs.append(s)
            if segs:
                out.append(Boundary(mg.name[i], mg.label[i], eq or "", x, y, tuple(segs)))
    return out


def _encoder():
    """Integer ids of code vectors (an output over extra dims, e.g. ``path_feasible``
    per target), the same for the slice and for every bisection step."""
    ids: dict[bytes, int] = {}
    vals: list[np.ndarray] = []

    def encode(codes: np.ndarray, ndim: int) -> np.ndarray:
        codes = np.asarray(codes)
        if codes.ndim == ndim:
            return codes.astype(np.int64)
        flat = codes.reshape(codes.shape[:ndim] + (-1,))
        rows = np.ascontiguousarray(flat.reshape(-1, flat.shape[-1]))
        out = np.empty(len(rows), dtype=np.int64)
        for i, r in enumerate(rows):
            key = r.tobytes()
            if key not in ids:
                ids[key] = len(ids)
                vals.append(r.copy())
            out[i] = ids[key]
        return out.reshape(codes.shape[:ndim])

    return encode, vals


def _pair_name(ds, var: str, a: int, b: int, vals) -> tuple[str, str, str]:
    """``(name, label, equilibrium)`` of the boundary between codes ``a`` and ``b``."""
    if var == "regime":
        bits = meta.bits(ds)
        na, nb = regime_name(a, bits), regime_name(b, bits)
        changed = [lab for i, lab in enumerate(bits) if (a ^ b) >> i & 1]
        return f"{na} | {nb}", f"{na} | {nb}", "+".join(changed)
    labs = meta.labels(ds)
    if var in ("best", "worst"):

        def nm(c):
            return labs[c] if 0 <= c < len(labs) else "none"

        return f"{var} {nm(a)} | {nm(b)}", f"{var} {nm(a)} | {nm(b)}", ""
    if vals:
        va, vb = vals[a].tolist(), vals[b].tolist()
        return f"{var} {va} | {vb}", f"{var} {va} | {vb}", ""
    return f"{var} {a} | {b}", f"{var} {a} | {b}", ""


def bisected(
    ds: xr.Dataset,
    x: str,
    y: str,
    at: Mapping[str, Any] | None = None,
    var: str = "regime",
    rtol: float = 1e-12,
) -> list[Boundary]:
    """The boundaries of ``var`` (default: the regime) crossing the 2-D slice ``(x, y)``
    of a refined cube, bisected to ``rtol`` relative in the parameter along the finest
    grid's edges that cross them (:func:`pipeline.refine.bisect_boundaries`), one
    :class:`Boundary` per pair of values on the two sides, its segments joined into
    polylines. Edges with an end not computed yet are left out."""
    from .. import refine as rf
    from ..grid import refine_batch
    from ..kernels import classifier

    if not meta.is_refined(ds):
        raise QueryError(
            "bisected boundaries need a refined cube (a config with refine:); "
            "a dense cube's are the analytic ones (boundaries)"
        )
    sp = meta.spec(ds)
    grid = sp.refine.grid
    sub = meta.slice2d(ds, x, y, at)
    idx = meta.indexers(ds, at, require_all=True, free=(x, y))
    region = {d: idx.get(d, slice(None)) for d in grid.names}
    free = [d for d in grid.names if d in (x, y)]
    v = sub[var]
    codes = np.asarray(v.transpose(*free, *[d for d in v.dims if d not in free]).values)
    has = np.asarray(sub["done"].transpose(*free).values, bool)
    encode, vals = _encoder()
    enc = encode(codes, 2)
    raw = classifier(sp, var, refine_batch(sp))

    def classify(points):
        return encode(raw(points), 1)

    found = rf.bisect_boundaries(grid, enc, region, classify, rtol=rtol, valid=has, group="ends")
    swap = free[0] != x  # the segments' columns are (free[0], free[1])
    out = []
    for (a, b), bd in found.items():
        name, label, eq = _pair_name(ds, var, a, b, vals)
        segs = bd.segments if bd.segments is not None else np.zeros((0, 2, 2))
        if swap:
            segs = segs[:, :, ::-1]
        lines = tuple(rf.join_segments(segs))
        out.append(Boundary(name, label, eq, x, y, lines))
    return out
