r"""Figures from a cube: ``plot_*(ds, ..., ax=None)`` returns the Axes (or the Figure of
a multi-panel plot). Nothing here computes equilibria: every value drawn is read from
the cube, except the PPF of JDE Fig. 1 (the standard model's own helpers) and the
analytic boundaries, which come from the model's margins, the same code that classified
the cube (:func:`pipeline.query.boundaries.boundaries`).

- :func:`plot_phase` -- the regime (set of stable equilibria) on a 2-D slice, with the
  analytic boundaries overlaid and knife-edge cells hatched;
- :func:`plot_welfare` -- the best equilibrium and the best/worst wage ratio (and
  ``pv_gain`` per target for dynamic cubes);
- :func:`plot_income_gap` -- ``1 / w`` of one equilibrium;
- :func:`plot_paths` -- ``x_k(t)`` and the wage path of each target (dynamic cubes saved
  with ``save_paths: true``);
- :func:`plot_ppf` -- the production possibility frontier of JDE Fig. 1;
- :func:`plot_kind` / :func:`figure_kinds` -- a figure by name, and the standard
  figures of a cube (from its model's declaration).

Colours: one fixed colour per regime name and per equilibrium label
(:mod:`pipeline.colors`), the same in every figure and cube, so a pixel's colour maps
back to its regime. Axes are labelled with the paper's symbols (coordinate attribute
``symbol``, mathtext) and are logarithmic where the axis was swept with ``logspace``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib import patheffects
from matplotlib.colors import BoundaryNorm, ListedColormap, LogNorm, Normalize, TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from . import query as _query  # noqa: F401  (registers ds.marshall)
from .colors import (
    ABSENT_COLOR,
    BOUNDARY_DASHES,
    MISSING_COLOR,
    NONE_COLOR,
    OKABE_ITO,
    PALETTE,
    boundary_linestyle,
    label_color,
)
from .colors import regime_colors as _regime_colors
from .query import QueryError
from .query import meta as _meta

#: cells where a quantity is infinite (e.g. a wage ratio over a zero wage)
INFINITE_COLOR = "#4d4d4d"
#: hatch over knife-edge cells of a phase diagram
KNIFE_HATCH = "xxxx"
#: matplotlib line styles of the boundaries, in order (cycled): the public table is
#: :data:`pipeline.colors.BOUNDARY_DASHES` (with :func:`pipeline.colors.boundary_dash`
#: for Bokeh), which the explorer reuses
BOUNDARY_STYLES = [boundary_linestyle(i) for i in range(len(BOUNDARY_DASHES))]


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def regime_colors(ds: xr.Dataset) -> dict[str, str]:
    """``{regime name: hex colour}`` for every regime of the cube
    (:func:`pipeline.colors.regime_colors`: fixed per name where the palette has one,
    every two at least ``MIN_DELTA_E`` apart in CIEDE2000)."""
    return _regime_colors(ds.marshall.regime_names().values())


def label_colors(ds: xr.Dataset) -> dict[str, str]:
    """``{equilibrium label: hex colour}`` (fixed per label, for best-equilibrium maps)."""
    return {lab: label_color(lab) for lab in ds.marshall.labels}


# --------------------------------------------------------------------- helpers


def _is_log(coord: xr.DataArray) -> bool:
    return coord.attrs.get("spacing") == "log" and bool(np.all(np.asarray(coord.values) > 0))


def _edges(coord: xr.DataArray) -> np.ndarray:
    """Cell edges around grid values (midpoints; geometric on log axes)."""
    return _meta.cell_edges(coord.values, _is_log(coord))


def symbol(ds: xr.Dataset, name: str) -> str:
    """Mathtext of a parameter's symbol (coordinate attr ``symbol``), e.g. ``$\\theta_{1}$``."""
    sym = ds[name].attrs.get("symbol") if name in ds.coords else None
    return f"${sym}$" if sym else name


def _axis_label(ds: xr.Dataset, name: str) -> str:
    units = ds[name].attrs.get("units", "")
    units = {"year-1": "1/year"}.get(units, units)  # UDUNITS in the cube, words here
    return symbol(ds, name) + (f" [{units}]" if units and units != "1" else "")


def _fixed_text(sub: xr.Dataset, skip: Sequence[str] = ()) -> str:
    parts = []
    not_params = set(_meta.label_dims(sub)) | {"equilibrium", "claim", "sector", "target", "time"}
    not_params |= _meta.settings(sub)
    for k, c in sub.coords.items():
        if c.ndim == 0 and k not in not_params and k not in skip:
            v = float(c.values)
            parts.append(f"{symbol(sub, k)} = {v:.4g}")
    return ", ".join(parts)


def _setup_axes(ax, sub: xr.Dataset, x: str, y: str) -> None:
    if _is_log(sub[x]):
        ax.set_xscale("log")
        _log_ticks(ax.xaxis)
    if _is_log(sub[y]):
        ax.set_yscale("log")
        _log_ticks(ax.yaxis)
    ax.set_xlabel(_axis_label(sub, x))
    ax.set_ylabel(_axis_label(sub, y))
    xe, ye = _edges(sub[x]), _edges(sub[y])
    ax.set_xlim(xe[0], xe[-1])
    ax.set_ylim(ye[0], ye[-1])


def _new_ax(ax, figsize=(7.5, 4.8)):
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _title(ds: xr.Dataset, what: str, sub: xr.Dataset, x: str, y: str) -> str:
    model = ds.attrs.get("model", "")
    m = ds.marshall.decl()
    J = ds.attrs.get("sectors")
    show_J = J and (m is None or m.sectors is None)
    head = f"{model}" + (f" (J = {J})" if show_J else "") + f": {what}"
    fixed = _fixed_text(sub, skip=(x, y))
    if "points_computed" in ds.attrs:  # a refined cube: say what the colours between are
        n = math.prod(ds.sizes[d] for d in ds.marshall.params)
        fixed += ("\n" if fixed else "") + (
            f"refined: {int(ds.attrs['points_computed']):,} of {n:,} points computed, "
            "each other point shows the nearest computed one"
        )
    return head + (f"\n{fixed}" if fixed else "")


def _categorical(ax, sub, x, y, codes: np.ndarray, colors: list[str]):
    """Draw integer category indices (NaN: not computed) as flat cells."""
    cmap = ListedColormap(colors or [MISSING_COLOR]).with_extremes(bad=MISSING_COLOR)
    n = max(len(colors), 1)
    norm = BoundaryNorm(np.arange(n + 1) - 0.5, n)
    return ax.pcolormesh(
        _edges(sub[x]),
        _edges(sub[y]),
        np.ma.masked_invalid(codes),
        cmap=cmap,
        norm=norm,
        shading="flat",
        rasterized=True,
    )


def _legend_outside(ax, handles, title):
    """One legend to the right of the axes (kept by constrained layout and tight bbox)."""
    if not handles:
        return None
    return ax.legend(
        handles=handles,
        title=title,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        fontsize="small",
        title_fontsize="small",
        frameon=False,
        borderaxespad=0.0,
    )


def _log_ticks(axis) -> None:
    """Plain-number tick labels (0.5, 1, 2, 5) on a log axis."""
    from matplotlib import ticker

    axis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    axis.set_minor_formatter(ticker.NullFormatter())


# ----------------------------------------------------------------------- phase


def draw_boundaries(ax, ds: xr.Dataset, x: str, y: str, at: Mapping[str, Any] | None = None):
    """Overlay the analytic boundaries (from the model's margins) on a slice: black lines
    on a white halo, one dash pattern each; returns ``(boundaries, legend handles)``."""
    bnds = ds.marshall.boundaries(x, y, at=at)
    handles = []
    halo = [patheffects.withStroke(linewidth=3.0, foreground="white")]
    for b, ls in zip(bnds, itertools.cycle(BOUNDARY_STYLES)):
        for i, seg in enumerate(b.segments):
            (line,) = ax.plot(
                seg[:, 0],
                seg[:, 1],
                color="black",
                lw=1.3,
                ls=ls,
                label=b.label if i == 0 else "_nolegend_",
                path_effects=halo,
                zorder=3,
            )
            line.set_gid(f"boundary:{b.name}")
            if i == 0:
                handles.append(line)
    return bnds, handles


def plot_phase(
    ds: xr.Dataset,
    x: str,
    y: str,
    at: Mapping[str, Any] | None = None,
    ax=None,
    boundaries: bool = True,
    legend: bool = True,
):
    """Regime map of the 2-D slice ``(x, y)``: each cell coloured by its set of stable
    equilibria (one fixed colour per regime name), knife-edge cells hatched (a defining
    condition holds with equality there: a tie or a continuum of equilibria), points
    not computed yet in grey, and the analytic boundaries overlaid (on a refined cube:
    the regime boundaries bisected to solver precision, ``ds.marshall.boundaries``).

    ``at`` fixes the other swept parameters (grid values); a :class:`QueryError` names
    an unknown dimension, a value off the grid or the dimensions left over. Returns
    the Axes.
    """
    acc = ds.marshall
    if _meta.sampled(ds):
        return _phase_scatter(ds, x, y, at, ax, boundaries, legend)
    sub = acc.slice2d(x, y, at).compute()
    reg = np.asarray(sub["regime"].transpose(y, x).values)
    done = np.asarray(sub["done"].transpose(y, x).values, bool)
    knife = np.asarray(sub["knife_edge"].transpose(y, x).values, bool) & done
    names = acc.regime_names()
    colors = regime_colors(ds)
    idx = np.full(reg.shape, np.nan)
    for i, code in enumerate(names):
        idx[(reg == code) & done] = i
    ax = _new_ax(ax)
    _categorical(ax, sub, x, y, idx, [colors[n] for n in names.values()])
    if knife.any():
        ax.pcolor(_edges(sub[x]), _edges(sub[y]), np.ma.masked_where(~knife, np.zeros(knife.shape)),
                  hatch=KNIFE_HATCH, facecolor="none", edgecolor="0.25", linewidth=0.0,
                  cmap=ListedColormap([(0, 0, 0, 0)]), zorder=2)  # fmt: skip
    _setup_axes(ax, sub, x, y)
    ax.set_title(_title(ds, "regimes (stable equilibria)", sub, x, y), fontsize="medium")
    lines = draw_boundaries(ax, ds, x, y, at=at)[1] if boundaries else []
    if legend:
        present = [(c, n) for c, n in names.items() if np.any((reg == c) & done)]
        handles = [Patch(facecolor=colors[n], edgecolor="0.3", label=n) for _, n in present]
        if knife.any():
            handles.append(
                Patch(
                    facecolor="white",
                    edgecolor="0.25",
                    hatch=KNIFE_HATCH,
                    label="knife-edge (a condition holds with equality)",
                )
            )
        if not done.all():
            handles.append(Patch(facecolor=MISSING_COLOR, edgecolor="0.3", label="not computed"))
        if lines:
            what = "bisected" if acc.refined else "docs/models.md"
            handles.append(Patch(visible=False, label=f"boundaries ({what}):"))
        _legend_outside(ax, handles + lines, "stable equilibria")
    return ax


def _phase_scatter(ds, x, y, at, ax, boundaries, legend):
    """A sampled cube's phase diagram: one dot per sample at its ``(x, y)``, coloured by
    regime (the same colours as the maps); the boundaries with the other sampled
    parameters at ``at`` or their median (said in the title)."""
    acc = ds.marshall
    samp = _meta.sampled(ds)
    for d in (x, y):
        if d not in samp:
            raise QueryError(f"{d!r} is not a sampled parameter; sampled: {', '.join(samp)}")
    pts = ds[[x, y, "regime", "done", "knife_edge"]].compute()
    done = np.asarray(pts["done"].values, bool)
    reg = np.asarray(pts["regime"].values)
    names = acc.regime_names()
    colors = regime_colors(ds)
    ax = _new_ax(ax)
    xv, yv = np.asarray(pts[x].values), np.asarray(pts[y].values)
    handles = []
    size = max(2.0, min(30.0, 6000.0 / max(len(xv), 1)))
    for code, name in names.items():
        sel = done & (reg == code)
        if sel.any():
            ax.scatter(xv[sel], yv[sel], s=size, c=colors[name], linewidths=0,
                       rasterized=True)  # fmt: skip
            handles.append(Patch(facecolor=colors[name], edgecolor="0.3", label=name))
    if (~done).any():
        ax.scatter(xv[~done], yv[~done], s=size, c=MISSING_COLOR, linewidths=0)
        handles.append(Patch(facecolor=MISSING_COLOR, edgecolor="0.3", label="not computed"))
    for d, axis in ((x, ax.xaxis), (y, ax.yaxis)):
        if ds[d].attrs.get("spacing") == "log":
            (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)("log")
            _log_ticks(axis)
    ax.set_xlabel(_axis_label(ds, x))
    ax.set_ylabel(_axis_label(ds, y))
    others = {d: float(at[d]) if at and d in at else float(np.median(ds[d].values))
              for d in samp if d not in (x, y)}  # fmt: skip
    where = ", ".join(f"{symbol(ds, d)} = {v:.3g}" for d, v in others.items())
    head = _title(ds, f"regimes of {len(xv):,} samples", ds, x, y)
    ax.set_title(head + (f"\nboundaries at {where} (medians unless given)" if where and
                         boundaries else ""), fontsize="medium")  # fmt: skip
    lines = draw_boundaries(ax, ds, x, y, at=at)[1] if boundaries else []
    if legend:
        if lines:
            handles.append(Patch(visible=False, label="boundaries (docs/models.md):"))
        _legend_outside(ax, handles + lines, "stable equilibria")
    return ax


# --------------------------------------------------------------------- welfare


def _panel_best(ax, ds, sub, x, y, legend=True):
    labs = ds.marshall.labels
    best = np.asarray(sub["best"].transpose(y, x).values, float)
    done = np.asarray(sub["done"].transpose(y, x).values, bool)
    best[~done | (best < 0)] = np.nan
    colors = label_colors(ds)
    _categorical(ax, sub, x, y, best, [colors[lab] for lab in labs])
    _setup_axes(ax, sub, x, y)
    ax.set_title("best equilibrium (highest wage)", fontsize="medium")
    if legend:
        present = sorted({int(b) for b in best[np.isfinite(best)]})
        _legend_outside(
            ax,
            [Patch(facecolor=colors[labs[i]], edgecolor="0.3", label=labs[i]) for i in present],
            "best",
        )


def _heat(
    ax,
    sub,
    x,
    y,
    values: np.ndarray,
    cmap: str,
    label: str,
    norm=None,
    absent: np.ndarray | None = None,
    absent_label: str | None = None,
    undefined_label: str = "not defined here",
    extend: str = "neither",
):
    """Continuous map of the finite ``values``; every other cell is drawn in a labelled
    colour, never left blank: not computed (:data:`MISSING_COLOR`), ``absent`` (e.g. the
    equilibrium does not exist; :data:`ABSENT_COLOR`), infinite
    (:data:`INFINITE_COLOR`) and any other NaN at a computed point (``undefined_label``,
    :data:`NONE_COLOR`)."""
    xe, ye = _edges(sub[x]), _edges(sub[y])
    done = np.asarray(sub["done"].transpose(y, x).values, bool)
    absent = np.zeros(done.shape, bool) if absent is None else (absent & done)
    inf = np.isinf(values) & done & ~absent
    undefined = np.isnan(values) & done & ~absent
    cats = [
        (~done, MISSING_COLOR, "not computed"),
        (absent, ABSENT_COLOR, absent_label or "does not exist"),
        (inf, INFINITE_COLOR, "infinite (a wage of 0)"),
        (undefined, NONE_COLOR, undefined_label),
    ]
    handles = []
    for mask, color, text in cats:
        if mask.any():
            grey = np.ma.masked_where(~mask, np.zeros(mask.shape))
            ax.pcolormesh(
                xe, ye, grey, cmap=ListedColormap([color]), shading="flat", rasterized=True
            )
            handles.append(Patch(facecolor=color, edgecolor="0.3", label=text))
    cm = plt.get_cmap(cmap).with_extremes(bad=(0, 0, 0, 0))
    shown = np.where(np.isfinite(values), values, np.nan)
    mesh = ax.pcolormesh(
        xe, ye, np.ma.masked_invalid(shown), cmap=cm, norm=norm, shading="flat", rasterized=True
    )
    ax.figure.colorbar(mesh, ax=ax, label=label, extend=extend)
    _setup_axes(ax, sub, x, y)
    if handles:
        ax.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(0.0, -0.14),
            fontsize="small",
            frameon=False,
            ncols=min(len(handles), 2),
        )
    return mesh


def _panel_ratio(ax, ds, sub, x, y):
    w = sub["wage"]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (w.max("equilibrium") / w.min("equilibrium")).where(sub["done"])
    vals = np.asarray(ratio.transpose(y, x).values, float)
    none = np.asarray((sub["n_equilibria"] == 0).transpose(y, x).values, bool)
    _heat(ax, sub, x, y, vals, "viridis", r"$w_{\mathrm{best}}/w_{\mathrm{worst}}$",
          absent=none, absent_label="no equilibrium")  # fmt: skip
    ax.set_title("best / worst equilibrium wage", fontsize="medium")


#: percentiles of the finite values that bound a robust colour scale
ROBUST_PERCENTILES = (2.0, 98.0)


def robust_limits(vals: np.ndarray, q: tuple[float, float] = ROBUST_PERCENTILES):
    """``(lo, hi, extend)``: a colour scale's limits from the ``q`` percentiles of the
    finite ``vals`` (the full range where those coincide, or with fewer than 50
    values), so that a few extreme points do not swamp it; ``extend`` (``"neither"``,
    ``"min"``, ``"max"``, ``"both"``) says on which side values lie beyond, for the
    colour bar's arrows. ``None`` limits: no finite value."""
    fin = vals[np.isfinite(vals)]
    if not fin.size:
        return None, None, "neither"
    lo, hi = float(fin.min()), float(fin.max())
    if fin.size >= 50:
        plo, phi = (float(v) for v in np.percentile(fin, q))
        if plo < phi:
            lo, hi = plo, phi
    below, above = bool((fin < lo).any()), bool((fin > hi).any())
    extend = {(False, False): "neither", (True, False): "min", (False, True): "max"}.get(
        (below, above), "both"
    )
    return lo, hi, extend


def _diverging_norm(vals: np.ndarray):
    """A colour scale for a signed quantity: diverging at 0 where the robust limits
    (:func:`robust_limits`) straddle it; ``(norm or None, extend, lo, hi)``."""
    lo, hi, extend = robust_limits(vals)
    if lo is None:
        return None, extend, lo, hi
    if lo < 0 < hi:
        return TwoSlopeNorm(vcenter=0.0, vmin=lo, vmax=hi), extend, lo, hi
    return Normalize(vmin=lo, vmax=hi), extend, lo, hi


def _ordinal(q: float) -> str:
    """``2nd``, ``98th``, ``1st``, ``12.5th``."""
    n = f"{q:g}"
    if not n.isdigit() or 10 <= int(n) % 100 <= 20:
        return n + "th"
    return n + {1: "st", 2: "nd", 3: "rd"}.get(int(n) % 10, "th")


def _panel_pv(ax, ds, sub, x, y, k):
    v = sub["pv_gain"].sel(target=k).where(sub["done"])
    vals = np.asarray(v.transpose(y, x).values, float)
    norm, extend, lo, hi = _diverging_norm(vals)
    label = "pv_gain (gain over staying in B1)"
    if extend != "neither":
        q0, q1 = ROBUST_PERCENTILES
        label += f"\ncolours span its {_ordinal(q0)}-{_ordinal(q1)} percentiles; arrows: beyond"
    _heat(
        ax,
        sub,
        x,
        y,
        vals,
        "RdBu_r" if isinstance(norm, TwoSlopeNorm) else "viridis",
        label,
        norm=norm,
        undefined_label="not defined (baseline wage w_B = 0 or failed solve: see status)",
        extend=extend,
    )
    ax.set_title(f"coordinate in sector {k}: present-value gain", fontsize="medium")


def welfare_panels(ds: xr.Dataset) -> list[str]:
    """Panels of :func:`plot_welfare` for a cube: ``best``, ``ratio`` (and ``pv_gain:k``)."""
    out = ["best", "ratio"]
    if "pv_gain" in ds:
        out += [f"pv_gain:{_plain_int(k)}" for k in ds["target"].values]
    return out


def _plain_int(v) -> int | str:
    try:
        return int(v)
    except (TypeError, ValueError):
        return str(v)


def plot_welfare(
    ds: xr.Dataset,
    x: str,
    y: str,
    at: Mapping[str, Any] | None = None,
    ax=None,
    kind: str | None = None,
):
    """Welfare on the slice ``(x, y)``: the best equilibrium's label and the best/worst
    wage ratio (1 where the equilibrium is unique); dynamic cubes add the
    present-value gain ``pv_gain`` of coordinating in each target sector.

    ``kind`` (``"best"``, ``"ratio"``, ``"pv_gain:k"``) draws one panel into ``ax`` and
    returns the Axes; otherwise all panels are drawn (into ``ax``, a sequence of Axes,
    if given) and the Figure is returned.
    """
    sub = ds.marshall.slice2d(x, y, at).compute()
    panels = welfare_panels(ds)
    if kind is not None:
        if kind == "pv_gain" and "pv_gain" in ds:
            kind = panels[2]
        if kind not in panels:
            raise QueryError(f"unknown welfare panel {kind!r}; choose one of {', '.join(panels)}")
        ax = _new_ax(ax)
        _draw_welfare(ax, ds, sub, x, y, kind)
        return ax
    if ax is None:
        ncols = len(panels) if len(panels) <= 3 else 2
        nrows = math.ceil(len(panels) / ncols)
        fig, axes = plt.subplots(
            nrows, ncols, figsize=(5.6 * ncols, 4.4 * nrows), layout="constrained", squeeze=False
        )
        axes = list(axes.ravel())
        for extra in axes[len(panels) :]:
            extra.set_visible(False)
        axes = axes[: len(panels)]
    else:
        axes = list(np.ravel(ax))
        if len(axes) != len(panels):
            raise QueryError(
                f"plot_welfare draws {len(panels)} panels ({', '.join(panels)}); "
                f"got {len(axes)} axes"
            )
        fig = axes[0].figure
    for a, p in zip(axes, panels, strict=True):
        _draw_welfare(a, ds, sub, x, y, p)
    fig.suptitle(_title(ds, "welfare", sub, x, y), fontsize="medium")
    return fig


def _draw_welfare(ax, ds, sub, x, y, kind):
    if kind == "best":
        _panel_best(ax, ds, sub, x, y)
    elif kind == "ratio":
        _panel_ratio(ax, ds, sub, x, y)
    else:
        k = kind.split(":", 1)[1]
        tv = sub["target"].values
        key = type(tv[0].item())(k) if len(tv) else k
        _panel_pv(ax, ds, sub, x, y, key)


# ------------------------------------------------------------------ income gap


def plot_income_gap(
    ds: xr.Dataset, equilibrium: str, x: str, y: str, at: Mapping[str, Any] | None = None, ax=None
):
    """Heatmap of the income gap ``1 / w`` of ``equilibrium`` on the slice ``(x, y)``;
    cells where it does not exist are grey. Returns the Axes."""
    labs = ds.marshall.labels
    if equilibrium not in labs:
        raise QueryError(f"unknown equilibrium {equilibrium!r}; this cube has {', '.join(labs)}")
    sub = ds.marshall.slice2d(x, y, at).compute()
    w = sub["wage"].sel(equilibrium=equilibrium).where(sub["done"]).transpose(y, x)
    with np.errstate(divide="ignore"):
        gap = 1.0 / np.asarray(w.values, float)
    done = np.asarray(sub["done"].transpose(y, x).values, bool)
    ex = np.asarray(sub["exists"].sel(equilibrium=equilibrium).transpose(y, x).values, bool)
    fin = gap[np.isfinite(gap)]
    norm = None
    if fin.size and fin.min() > 0 and fin.max() / fin.min() > 30:
        norm = LogNorm(vmin=fin.min(), vmax=fin.max())
    elif fin.size:
        norm = Normalize(vmin=fin.min(), vmax=fin.max())
    ax = _new_ax(ax)
    _heat(
        ax,
        sub,
        x,
        y,
        gap,
        "cividis",
        rf"income gap $1/w$ in ${equilibrium[0]}_{{"
        rf"{equilibrium[1:]}}}$",
        norm=norm,
        absent=done & ~ex,
        absent_label=f"{equilibrium} does not exist",
    )
    ax.set_title(_title(ds, f"income gap in {equilibrium}", sub, x, y), fontsize="medium")
    return ax


# ----------------------------------------------------------------------- paths


def plot_paths(
    ds: xr.Dataset,
    at: Mapping[str, Any] | None = None,
    targets: Sequence[int] | None = None,
    ax=None,
):
    """Transition paths of a dynamic cube at one grid point (``at``: nearest values of
    every swept dimension longer than 1): ``x_k(t)`` (left; dotted: ``a_hat_k``) and
    South's wage ``w_k(t)`` (right; dashed: the ``B1`` baseline wage) for each target
    ``k``. Needs a cube saved with ``save_paths: true``. Returns the Figure."""
    if "x_path" not in ds or "wage_path" not in ds:
        raise QueryError(
            "this cube has no transition paths (x_path, wage_path): they exist "
            "only for model 'dynamic' with 'save_paths: true' in the config"
        )
    acc = ds.marshall
    sub = ds.isel(acc.indexers(at, require_all=True)).compute()
    tv = list(sub["target"].values)
    targets = tv if targets is None else list(targets)
    for k in targets:
        if k not in tv:
            raise QueryError(f"unknown target {k!r}; targets: {tv}")
    if ax is None:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), layout="constrained")
    else:
        axes = list(np.ravel(ax))
        if len(axes) != 2:
            raise QueryError("plot_paths draws 2 panels; pass two axes")
        fig = axes[0].figure
    t = np.asarray(sub["time"].values, float)
    for i, k in enumerate(targets):
        col, ls = _color(i), BOUNDARY_STYLES[i % len(BOUNDARY_STYLES)]
        axes[0].plot(
            t,
            sub["x_path"].sel(target=k).values,
            color=col,
            lw=1.8,
            ls=ls,
            label=rf"$x_{{{k}}}(t)$, cluster in {k}",
        )
        if "a_hat" in sub and "sector" in sub["a_hat"].dims and k in list(sub["sector"].values):
            axes[0].axhline(
                float(sub["a_hat"].sel(sector=k)),
                color=col,
                ls=":",
                lw=1.0,
                label=rf"$\hat a_{{{k}}}$",
            )
        axes[1].plot(
            t,
            sub["wage_path"].sel(target=k).values,
            color=col,
            lw=1.8,
            ls=ls,
            label=rf"$w(t)$, cluster in {k}",
        )
    if "B1" in acc.labels:
        wB = float(sub["wage"].sel(equilibrium="B1"))
        if math.isfinite(wB):
            axes[1].axhline(wB, color="black", ls="--", lw=1.0, label=r"$w_B$ (stay in $B_1$)")
    axes[0].set_xlabel("years since coordination")
    axes[0].set_ylabel(r"$x_k = A_{kS}/A_{kN}$")
    axes[1].set_xlabel("years since coordination")
    axes[1].set_ylabel(r"South's wage $w$ (North = 1)")
    for a in axes:
        a.legend(fontsize="small", frameon=False)
        a.grid(alpha=0.3)
    fixed = _fixed_text(sub)
    fig.suptitle(
        "dynamic: transition after coordinating" + (f"\n{fixed}" if fixed else ""),
        fontsize="medium",
    )
    return fig


# -------------------------------------------------------------------------- PPF


def ppf_params(ds: xr.Dataset, at: Mapping[str, Any] | None = None) -> dict[str, float]:
    """Parameters of :func:`plot_ppf` at a point of a cube whose model draws the PPF
    (``at``: grid values; swept dims not given default to the middle of their axis)."""
    from .models import standard

    m = ds.marshall.decl()
    if m is None or "ppf" not in m.figures:
        raise QueryError(
            f"the PPF (JDE Fig. 1) is drawn for model 'standard'; this cube's model "
            f"{ds.attrs.get('model')!r} does not draw it"
        )
    acc = ds.marshall
    at = dict(at or {})
    for d in acc.params:
        if d not in at:
            vals = ds[d].values
            at[d] = float(vals[len(vals) // 2])
    p = acc.coords_of(ds.isel(acc.indexers(at, require_all=True)))
    return standard.ppf_point({k: v for k, v in p.items() if isinstance(v, (int, float))})


def _ppf_scale(
    theta: float, L_S: float, alpha: float | None, Lbar: float | None
) -> tuple[float, float, float]:
    """``(alpha, Lbar, theta_S)`` of a frontier, consistent with ``theta = 1 + alpha Lbar``:
    missing values derived as the model derives them (:func:`pipeline.models.standard.
    scale`; ``Lbar = L_S`` when neither ``alpha`` nor ``Lbar`` is given). Raises
    ``ValueError`` naming the argument when the frontier cannot be drawn."""
    from .models.standard import scale

    if not (math.isfinite(L_S) and L_S > 0):
        raise QueryError(f"plot_ppf: L_S must be a finite number > 0 to draw the PPF; got {L_S}")
    if not theta > 1:
        raise QueryError(f"plot_ppf: theta must be > 1 (gain from a full cluster); got {theta}")
    if alpha is not None and Lbar is not None:
        if not math.isclose(1.0 + alpha * Lbar, theta, rel_tol=1e-9):
            raise QueryError(
                f"plot_ppf: theta = {theta:g} but 1 + alpha Lbar = {1.0 + alpha * Lbar:g}; "
                "give alpha and Lbar with theta = 1 + alpha Lbar, or only one of them"
            )
        alpha = None  # theta given: derive it again as the model does
    if alpha is None and Lbar is None:
        Lbar = L_S
    _, alpha, Lbar, theta_S = scale(theta, alpha, Lbar, L_S)
    return float(alpha), float(Lbar), float(theta_S)


def ppf_equilibria(r_1: float, r_2: float, theta: float, theta_S: float) -> dict[str, Any]:
    """Which equilibria of the standard model exist at one point, from the model itself
    (:func:`pipeline.models.standard.point_equilibria`, the code that fills a cube)."""
    from .models.standard import point_equilibria

    return point_equilibria(r_1, r_2, theta, theta_S)


def _corner_state(name: str, eq: dict[str, Any], scale_binds: bool) -> tuple[bool, str]:
    """``(is an equilibrium, legend text)`` of the corner ``B1`` or ``C2``."""
    if eq["exists"][name]:
        how = "stable" if eq["stable"][name] else "knife-edge, not stable"
        return True, f"{name}: equilibrium ({how})"
    why = {"B1": "c > θ", "C2": "c θ_S/θ < 1" if scale_binds else "c < 1"}[name]
    return False, f"{name}: not an equilibrium ({why})"


def plot_ppf(
    r_1: float = 1.0,
    r_2: float = 1.5,
    theta: float = 2.0,
    L_S: float = 1.0,
    alpha: float | None = None,
    Lbar: float | None = None,
    ax=None,
    ds: xr.Dataset | None = None,
    at: Mapping[str, Any] | None = None,
    lam_1N: float = 1.0,
    lam_2N: float = 1.0,
    n: int = 201,
):
    """JDE Fig. 1: South's production possibility frontier with the clustering
    externality (``Q_2 = lam_2S (1 + alpha min(Lbar, L_2)) L_2``) and without it
    (``alpha = 0``), and its two specialised corners (``B1``: all in good 1; ``C2``: all
    in good 2).

    A corner is drawn as an equilibrium only where it is one (docs/models.md#standard,
    with ``c = r_2 / r_1``: ``B1`` iff ``c <= theta``, ``C2`` iff ``c theta_S / theta >=
    1``, as :func:`pipeline.models.standard.equilibria` decides): a filled marker, a
    label and the world price line ``p_1 Q_1 + p_2 Q_2 = const`` (slope ``-p_1/p_2 =
    -theta lam_2N/lam_1N``) through it; the higher line is the higher income. A corner
    that is not an equilibrium gets a hollow grey marker and the label ``"C2: not an
    equilibrium (c < 1)"`` (or ``B1 ... (c > θ)``), and no price line. The title lists
    the equilibria that exist. With ``ds`` (a ``standard`` cube) the parameters are read
    at the point ``at``. Returns the Axes.
    """
    from .models.standard import ppf

    if ds is not None:
        p = ppf_params(ds, at)
        r_1, r_2, theta, L_S = p["r_1"], p["r_2"], p["theta"], p["L_S"]
        alpha, Lbar, lam_1N, lam_2N = p["alpha"], p["Lbar"], p["lam_1N"], p["lam_2N"]
    alpha, Lbar, theta_S = _ppf_scale(theta, L_S, alpha, Lbar)
    eq = ppf_equilibria(r_1, r_2, theta, theta_S)
    f = ppf(r_1, r_2, theta, L_S, alpha=alpha, Lbar=Lbar, n=n, lam_1N=lam_1N, lam_2N=lam_2N)
    ax = _new_ax(ax, figsize=(6.0, 5.0))
    q1, q2, q2l = f["Q_1"], f["Q_2"], f["Q_2_no_externality"]
    ax.plot(q1, q2, color=OKABE_ITO[4], lw=2.0, label="PPF with the cluster externality")
    ax.plot(q1, q2l, color=OKABE_ITO[0], lw=1.5, ls="--", label="PPF without externality")
    slope = f["price_ratio"]  # p_1 / p_2
    q1max, q2max = float(q1[0]), float(q2[-1])
    grid = np.linspace(0.0, max(q1max, q2max / slope) * 1.05, 200)
    corners = (
        ("B1", (q1max, 0.0), slope * q1max, OKABE_ITO[5], (4, 6)),
        ("C2", (0.0, q2max), q2max, OKABE_ITO[2], (6, 2)),
    )
    missing = []
    for name, xy, income, col, offset in corners:
        is_eq, text = _corner_state(name, eq, theta_S < theta)
        tex = f"${name[0]}_{name[1]}$"
        if is_eq:
            line = income - slope * grid
            keep = line >= 0
            ax.plot(
                grid[keep],
                line[keep],
                color=col,
                lw=1.2,
                ls=":",
                label=f"world price line through {name}",
            )
            ax.plot(*xy, "o", color=col, ms=7, label=text, zorder=4)
            ax.annotate(tex, xy, textcoords="offset points", xytext=offset)
        else:
            missing.append(name)
            ax.plot(*xy, "o", ms=7, mfc="none", mec=NONE_COLOR, mew=1.5, label=text, zorder=4)
            ax.annotate(
                f"{tex} (not an equilibrium)",
                xy,
                textcoords="offset points",
                xytext=offset,
                color="dimgray",
            )
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set_xlabel(r"$Q_1$ (good 1, no externality)")
    ax.set_ylabel(r"$Q_2$ (good 2, clustering)")
    c = r_2 / r_1
    kinds = {"B1": "", "C2": "", "D": "interior, "}
    exist = [
        f"{lab} ({kinds[lab]}{'stable' if eq['stable'][lab] else 'not stable'})"
        for lab in eq["labels"]
        if eq["exists"][lab]
    ]
    status = "equilibria: " + ", ".join(exist)
    if missing:
        status += "; not an equilibrium: " + ", ".join(missing)
    if eq["knife_edge"]:
        status += " (knife-edge point)"
    ax.set_title(
        rf"JDE Fig. 1: $r_1$ = {r_1:.3g}, $r_2$ = {r_2:.3g}, $\theta$ = {theta:.3g}"
        rf" ($c$ = {c:.3g}), $L_S$ = {L_S:.3g}" + "\n" + status,
        fontsize="medium",
    )
    ax.legend(fontsize="small", frameon=False)
    return ax


# ----------------------------------------------------------------- by name

#: the figures every cube can draw (its model adds its own, e.g. the standard model's ppf)
MAPS = ("phase", "welfare", "income-gap")
GENERIC = (*MAPS, "paths")


def figure_kinds(ds: xr.Dataset) -> list[str]:
    """The standard figures of a cube: its model's ``figures``, those it can draw (maps
    need two swept dimensions longer than one, ``paths`` saved paths; a sampled cube
    draws its phase diagram as a scatter)."""
    m = ds.marshall.decl()
    kinds = list(m.figures) if m is not None else list(MAPS)
    if _meta.sampled(ds):
        return ["phase"] if len(_meta.sampled(ds)) >= 2 else []
    swept = [d for d in ds.marshall.params if ds.sizes[d] > 1]
    out = []
    for k in kinds:
        if k in MAPS and len(swept) < 2:
            continue
        if k == "paths" and "x_path" not in ds:
            continue
        out.append(k)
    return out


def all_kinds(ds: xr.Dataset) -> list[str]:
    m = ds.marshall.decl()
    return list(GENERIC) + ([k for k in m.plots if k not in GENERIC] if m is not None else [])


def default_axes(ds: xr.Dataset, at: Mapping[str, Any] | None = None, x=None, y=None):
    """``(x, y, at)`` of a map: the first two swept dims longer than one (unless given)
    and every other swept dim longer than one at its first value (unless in ``at``)."""
    at = dict(at or {})
    if _meta.sampled(ds):  # a sampled cube: the first two sampled parameters
        samp = [d for d in _meta.sampled(ds) if d not in at]
        x = x or next((d for d in samp if d != y), None)
        y = y or next((d for d in samp if d != x), None)
        if x is None or y is None:
            raise QueryError("a map of a sampled cube needs two sampled parameters")
        return x, y, at
    dims = [d for d in ds.marshall.params if d not in at and ds.sizes[d] > 1]
    x = x or next((d for d in dims if d != y), None)
    y = y or next((d for d in dims if d != x), None)
    if x is None or y is None:
        raise QueryError(
            "a map needs two swept dimensions; this cube sweeps "
            f"{', '.join(ds.marshall.params) or 'none'}"
        )
    for d in dims:
        if d not in (x, y):
            at[d] = float(ds[d].values[0])
    return x, y, at


def middle(ds: xr.Dataset, at: Mapping[str, Any] | None = None) -> dict:
    """``at`` plus the middle grid value of every other swept dim longer than 1."""
    out = dict(at or {})
    for d in ds.marshall.params:
        if d not in out and ds.sizes[d] > 1:
            vals = ds[d].values
            out[d] = float(vals[len(vals) // 2])
    return out


def models_drawing(kind: str) -> list[str]:
    """Registered models that declare a figure ``kind`` of their own."""
    from .models import ModelNotFound, all_models

    try:
        return [m.name for m in all_models() if kind in m.plots]
    except ModelNotFound:  # pragma: no cover - a broken entry point
        return []


def plot_kind(
    ds: xr.Dataset, kind: str, x=None, y=None, at=None, equilibrium=None, ax=None,
    fill: bool = True, notes: list | None = None,
):  # fmt: skip
    """One figure by name (``phase``, ``welfare``, ``income-gap``, ``paths`` or a kind the
    cube's model declares, e.g. ``ppf``). With ``fill``, swept dims not given take their
    first value (maps, :func:`default_axes`) or the middle of their axis (point
    figures, :func:`middle`); otherwise a map refuses dims left over. ``notes``
    collects what was filled in. Returns the Axes or Figure."""
    m = ds.marshall.decl()
    at = dict(at or {})
    if kind in MAPS:
        if fill:
            x, y, full = default_axes(ds, at, x, y)
        else:
            dims = [d for d in ds.marshall.params if d not in at]
            x = x or next((d for d in dims if d != y), None)
            y = y or next((d for d in dims if d != x), None)
            if x is None or y is None:
                raise QueryError(
                    f"a {kind} map needs two swept dimensions; this cube sweeps "
                    f"{', '.join(ds.marshall.params) or 'none'}"
                )
            full = at
        if notes is not None:
            notes += [f"{d} fixed at its first value, {v:.6g}" for d, v in full.items()
                      if d not in at]  # fmt: skip
        if kind == "phase":
            return plot_phase(ds, x, y, at=full, ax=ax)
        if kind == "welfare":
            return plot_welfare(ds, x, y, at=full, ax=ax)
        labs = ds.marshall.labels
        default = m.income_gap if m is not None and m.income_gap in labs else labs[0]
        return plot_income_gap(ds, equilibrium or default, x, y, at=full, ax=ax)
    full = middle(ds, at)
    if notes is not None:
        notes += [f"{d} fixed at the middle of its axis, {v:.6g}" for d, v in full.items()
                  if d not in at]  # fmt: skip
    if kind == "paths":
        return plot_paths(ds, at=full, ax=ax)
    if m is not None and kind in m.plots:
        return m.plots[kind](ds, at=full, ax=ax)
    others = models_drawing(kind)
    if others:
        raise QueryError(
            f"{kind!r} is a figure of model {', '.join(repr(o) for o in others)}; this cube's "
            f"model {ds.attrs.get('model')!r} draws {', '.join(all_kinds(ds))}"
        )
    raise QueryError(f"unknown figure {kind!r} for this cube; choose one of "
                     f"{', '.join(all_kinds(ds))}")  # fmt: skip


# ------------------------------------------------------------------------ save


def save(obj, path, dpi: int = 150) -> None:
    """Save an Axes' or a Figure's figure (format by suffix: png, svg, pdf) and close it."""
    fig = obj if isinstance(obj, Figure) else obj.figure
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
