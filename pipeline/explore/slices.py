r"""What the explorer draws, as arrays: one 2-D slice of a cube at a time (no Bokeh here).

A *state* of the page is an unordered pair of swept dimensions ``(a, b)`` (``a`` first
in cube order) and a grid index for every other free dimension. :func:`load_slice`
reads exactly that slice from the (lazy) cube through ``ds.marshall.slice2d``, and
:func:`slice_columns` turns it into flat per-cell columns, C order over ``(b, a)``:

- ``a0, a1, b0, b1``: cell edges (midpoints between grid values, geometric on log axes);
- ``p<i>``: the value of swept parameter ``i`` (``ds.marshall.params[i]``) at the cell,
  ``pt`` its flat index in the cube (C order over ``ds.marshall.params``);
- ``ci``: index of the cell's regime in a :class:`RegimeIndex` (0: not computed);
- ``done``, ``knife``, ``best``, ``worst`` and, per equilibrium ``j`` (``labels[j]``),
  ``ex<j>``, ``st<j>``, ``w<j>``, ``rk<j>`` (the columns of ``ds.marshall.at(...)``), per
  claim ``j`` ``cl<j>`` (1 held, 0 failed, -1 not applicable); on a refined cube's dense
  view ``exact`` (1: computed at the point, 0: filled in from its nearest computed point);
- per welfare view (:func:`views`) ``wi_<n>``: a colour index into that view's palette
  and, for continuous views, ``wv_<n>``: the value drawn.

Column names are made of indices, never of a cube's text (labels, dims, claims): they
are named in the hover's HTML template, where text must not go (STYLE.md habit 13).

Welfare views: ``best`` (the highest-wage equilibrium), ``ratio`` (best / worst wage,
``w_max / w_min``), ``pv_gain:k`` (dynamic cubes: the present-value gain of
coordinating in sector ``k``) and ``gap:L`` (income gap ``1 / w_L`` of equilibrium
``L``; grey where ``L`` does not exist), the panels of :mod:`pipeline.figures`.
Continuous views use a 254-colour ramp scaled to the slice (``pv_gain`` on a diverging
ramp symmetric about 0, the income gap logarithmic when it spans more than 30x, as the
static figures do); index 254 is "does not exist", 255 "not computed".
"""

from __future__ import annotations

import html
import itertools
import json
import math
import threading
import time
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import xarray as xr

from .. import colors
from ..models._spec import regime_name
from ..query import meta
from ..query.tables import per_target

#: colour of a point not computed yet (a partly computed cube): a mid grey, distinct
#: from regime "none" (``colors.NONE_COLOR``) and "does not exist" (``ABSENT_COLOR``)
NOT_COMPUTED_COLOR = colors.MISSING_COLOR
NOT_COMPUTED = "not computed"
#: ramp entries of continuous views; then "does not exist", then "not computed"
RAMP = 254
ABSENT_INDEX = RAMP
MISSING_INDEX = RAMP + 1
#: variables a slice reads (those present in the cube)
SLICE_VARS = (
    "regime",
    "done",
    "exists",
    "stable",
    "wage",
    "wage_rank",
    "best",
    "worst",
    "knife_edge",
    "claims",
    "pv_gain",
    "computed",
)


class ExploreError(ValueError):
    """A cube or a request the explorer cannot show, with the reason and the fix."""


# ------------------------------------------------------------------------- cube


@dataclass(frozen=True)
class View:
    """A welfare view: ``key`` (``best``, ``ratio``, ``pv_gain:1``, ``gap:C2``), a title,
    ``col`` (the column suffix) and whether it is categorical."""

    key: str
    title: str
    col: str
    categorical: bool = False


@cache
def _ramp(name: str) -> tuple[str, ...]:
    from bokeh import palettes

    base = {"viridis": palettes.Viridis256, "cividis": palettes.Cividis256}.get(name)
    if base is None:  # diverging: blue (negative) -> red (positive)
        return tuple(palettes.interp_palette(palettes.RdBu11, RAMP))
    idx = np.round(np.linspace(0, len(base) - 1, RAMP)).astype(int)
    return tuple(base[i] for i in idx)


def ramp_palette(name: str) -> list[str]:
    """254 colours of a ramp: ``viridis``, ``cividis`` or ``diverging`` (RdBu, blue for
    negative values)."""
    return list(_ramp(name))


edges = meta.cell_edges


_GREEK = {
    "alpha": "α",
    "beta": "β",
    "gamma": "γ",
    "delta": "δ",
    "varepsilon": "ε",
    "epsilon": "ε",
    "eta": "η",
    "theta": "θ",
    "kappa": "κ",
    "lambda": "λ",
    "mu": "μ",
    "rho": "ρ",
    "sigma": "σ",
    "tau": "τ",
    "phi": "φ",
    "omega": "ω",
}
_SUB = dict(zip("0123456789aehijklmnoprstuvx", "₀₁₂₃₄₅₆₇₈₉ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ", strict=True))


def unicode_symbol(tex: str | None, fallback: str) -> str:
    r"""Plain-text rendering of a parameter's LaTeX symbol for widgets and tooltips:
    ``\theta_{1}`` -> ``θ₁``, ``\bar L_{2}`` -> ``L̄₂``, ``\hat a`` -> ``â``; the
    ``fallback`` (the dimension's name) when the symbol has anything else."""
    if not tex:
        return fallback
    s = tex.strip()
    base, _, sub = s.partition("_")
    sub = sub.strip("{}")
    out = ""
    for tok in base.split():
        if tok.startswith("\\"):
            name = tok[1:]
            if name in _GREEK:
                out += _GREEK[name]
            elif name in ("bar", "hat"):
                out += {"bar": "\u0304", "hat": "\u0302"}[name] + "\x00"
            else:
                return fallback
        elif tok.isalpha():
            out += tok
        else:
            return fallback
    # a combining accent goes after the letter that follows it
    while "\x00" in out:
        i = out.index("\x00")
        acc, rest = out[i - 1], out[i + 1 :]
        out = out[: i - 1] + (rest[:1] + acc + rest[1:] if rest else acc)
    if sub:
        if all(c.lower() in _SUB and (c.islower() or c.isdigit()) for c in sub):
            out += "".join(_SUB[c] for c in sub)
        else:
            out += "_" + sub
    return unicodedata.normalize("NFC", out) or fallback


class Cube:
    """The static facts of a cube the page needs: swept dims, which are fixed (``at``),
    labels, claims, views; nothing here reads the cube's data variables."""

    def __init__(self, ds: xr.Dataset, at: Mapping[str, float] | None = None):
        acc = ds.marshall
        self.ds = ds
        self.params: tuple[str, ...] = acc.params
        self.sizes = {d: int(ds.sizes[d]) for d in self.params}
        self.labels: list[str] = acc.labels
        self.bits: list[str] = meta.bits(ds)
        try:
            self.fixed_idx: dict[str, int] = acc.indexers(at or {})
        except meta.QueryError as exc:
            raise ExploreError(f"--at: {exc}") from None
        self.free = [d for d in self.params if d not in self.fixed_idx]
        #: dims a code line names: longer than 1, or held with ``at``
        self.call_dims = [d for d in self.params if ds.sizes[d] > 1 or d in (at or {})]
        if "sample" in ds.dims:  # a design, not a grid: no map to draw
            raise ExploreError(
                "the explorer draws maps over a grid; this cube is a sampled design "
                f"({ds.sizes['sample']:,} samples, no grid): draw it with `marshall plot "
                "CUBE phase` (a scatter over two sampled parameters) or analyse it with "
                "`marshall sensitivity` / `marshall discover`"
            )
        if len(self.free) < 2:
            swept = [d for d in self.params if self.sizes[d] > 1]
            raise ExploreError(
                "the explorer draws maps over two swept dimensions; "
                + (
                    f"this cube sweeps {', '.join(swept) or 'none'}"
                    + (f" and --at fixes {', '.join(at)}" if at else "")
                )
                + ": sweep at least two parameters (or fix fewer with --at)"
            )
        self.values = {d: np.asarray(ds[d].values, float) for d in self.params}
        self.log = {
            d: ds[d].attrs.get("spacing") == "log" and bool(np.all(self.values[d] > 0))
            for d in self.params
        }
        self.edges = {d: edges(self.values[d], self.log[d]) for d in self.params}
        self.tex = {d: ds[d].attrs.get("symbol") or "" for d in self.params}
        self.sym = {d: unicode_symbol(self.tex[d], d) for d in self.params}
        self.fixed: dict[str, Any] = dict(acc.fixed)
        self.claims: list[str] = (
            [str(c) for c in ds["claim"].values] if "claims" in ds and "claim" in ds.dims else []
        )
        try:
            self.statements: dict[str, str] = json.loads(
                ds["claim"].attrs.get("statements", "{}") if self.claims else "{}"
            )
        except (TypeError, json.JSONDecodeError):
            self.statements = {}
        self.targets = [_plain(t) for t in ds["target"].values] if "target" in ds.dims else []
        self.transition_vars = per_target(ds)
        self.has_transition = bool(self.transition_vars)
        self.has_paths = "x_path" in ds and "wage_path" in ds
        #: a refined cube's dense view: ``computed`` says which points were computed
        self.refined = "computed" in ds and meta.is_refined(ds)
        self.vars = [v for v in SLICE_VARS if v in ds and (v != "computed" or self.refined)]
        self.views = views(ds)
        self.model = str(ds.attrs.get("model", ""))
        decl = meta.decl(ds)
        #: the number of sectors, where the model has a choice of it (else None)
        self.J = ds.attrs.get("sectors") if decl is None or decl.sectors is None else None
        self.settings = meta.settings(ds)

    # ---------------------------------------------------------------- states
    def pairs(self) -> list[tuple[str, str]]:
        """Unordered pairs of free dims, each in cube order."""
        return list(itertools.combinations(self.free, 2))

    def ordered(self, x: str, y: str) -> tuple[str, str]:
        return (x, y) if self.params.index(x) < self.params.index(y) else (y, x)

    def others(self, a: str, b: str) -> list[str]:
        return [d for d in self.free if d not in (a, b)]

    def states(self, a: str, b: str) -> Iterator[dict[str, int]]:
        """Every index of the other free dims of the pair ``(a, b)``."""
        oth = self.others(a, b)
        for combo in itertools.product(*[range(self.sizes[d]) for d in oth]):
            yield dict(zip(oth, combo, strict=True))

    def n_cells(self) -> int:
        """Cells drawn over every state of every pair (= pairs x free points)."""
        n = math.prod(self.sizes[d] for d in self.free)
        return len(self.pairs()) * n

    def key(self, a: str, b: str, idx: Mapping[str, int]) -> str:
        """The state's key, as the offline page's glue computes it: ``a|b|i|j...``
        (indices of the other free dims in cube order)."""
        return "|".join([a, b] + [str(int(idx[d])) for d in self.others(a, b)])

    def full_index(self, a: str, b: str, idx: Mapping[str, int]) -> dict[str, int]:
        """Indexers of every swept dim but ``a, b``: the state's and the fixed ones."""
        out = dict(self.fixed_idx)
        out.update({d: int(i) for d, i in idx.items()})
        return out

    def at_values(self, idx: Mapping[str, int]) -> dict[str, float]:
        """Grid values of indexers (for ``ds.marshall`` calls that take values)."""
        return {d: float(self.values[d][i]) for d, i in idx.items()}


def views(ds: xr.Dataset) -> list[View]:
    """The welfare views of a cube (see the module docstring)."""
    out = [
        View("best", "best equilibrium (highest wage)", "best", True),
        View("ratio", "best / worst equilibrium wage", "ratio"),
    ]
    if "pv_gain" in ds and "target" in ds.dims:
        for i, k in enumerate(ds["target"].values):
            k = _plain(k)
            out.append(View(f"pv_gain:{k}", f"pv_gain: coordinate in sector {k}", f"pv{i}"))
    for j, lab in enumerate(ds.marshall.labels):
        out.append(View(f"gap:{lab}", f"income gap 1/w in {lab}", f"gap{j}"))
    return out


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


# ---------------------------------------------------------------------- regimes


class RegimeIndex:
    """Regime names -> small integers (0: not computed), append-only, so a colour index
    drawn once keeps its meaning while new slices bring new regimes."""

    def __init__(self, bits: Sequence[str]):
        self.bits = list(bits)
        self.names: list[str] = [NOT_COMPUTED]
        self._code: dict[int, int] = {}

    def index(self, codes: np.ndarray, done: np.ndarray) -> np.ndarray:
        """Index of each cell's regime (codes: the cube's ``regime`` bitmasks)."""
        out = np.zeros(codes.shape, np.uint8 if len(self.names) < 200 else np.int32)
        for c in np.unique(codes[done & (codes >= 0)]):
            c = int(c)
            if c not in self._code:
                self._code[c] = len(self.names)
                self.names.append(regime_name(c, self.bits))
        if len(self.names) > 255 and out.dtype == np.uint8:
            out = out.astype(np.int32)
        for c, i in self._code.items():
            out[(codes == c) & done] = i
        return out

    @property
    def palette(self) -> list[str]:
        # all the names together, so that any two stay distinguishable (CIEDE2000)
        m = colors.regime_colors(self.names[1:])
        return [NOT_COMPUTED_COLOR] + [m[n] for n in self.names[1:]]


# ------------------------------------------------------------------------ slice


def load_slice(
    cube: Cube, a: str, b: str, idx: Mapping[str, int], cache: SlabCache | None = None
) -> xr.Dataset:
    """The 2-D slice ``(b, a)`` of the variables the page draws, in memory: one read of
    ``ds.marshall.slice2d`` (other swept dims at ``idx`` and the fixed ones), or through
    ``cache`` (:class:`SlabCache`)."""
    if cache is not None:
        return cache.slice(cube, a, b, idx)
    at = cube.at_values(cube.full_index(a, b, idx))
    sub = cube.ds.marshall.slice2d(a, b, at=at)[cube.vars]
    return sub.transpose(b, a, ...).compute()


class SlabCache:
    """The chunk-aligned blocks of a cube that 2-D slices were read from, kept in memory
    for the next slider steps.

    A zarr store decompresses whole chunks: reading the slice ``(a, b)`` at ``theta_2 =
    k`` decodes every chunk it crosses, which also holds ``theta_2 = k +- 1`` (as far as
    the chunk goes). The first slice of a block is read alone (fast), then the *slab*
    (all of ``a`` and ``b`` and, along each other dim, the chunk holding the index) is
    read in a background thread, so that the next slider steps inside the chunk cost no
    read at all. Slabs over ``max_bytes`` are never read; at most ``keep`` are held
    (least recently used goes first). ``slice_reads``/``slab_reads`` count the reads.
    """

    def __init__(self, max_bytes: int = 512 * 2**20, keep: int = 2, background: bool = True):
        from concurrent.futures import ThreadPoolExecutor

        self.max_bytes, self.keep, self.background = int(max_bytes), int(keep), background
        self._slabs: dict[tuple, xr.Dataset] = {}
        self._pending: dict[tuple, Any] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="marshall-slab")
        self.slice_reads = 0
        self.slab_reads = 0
        self.delay = 0.3  # s before a background slab read starts

    @staticmethod
    def _chunk(ds: xr.Dataset, d: str) -> int:
        """The store's chunk length along ``d`` (what a read decodes at once)."""
        reg = ds["regime"]
        zc = reg.encoding.get("chunks") or reg.encoding.get("preferred_chunks")
        if isinstance(zc, dict):
            return int(zc.get(d, reg.sizes[d]))
        if zc:
            return int(zc[list(reg.dims).index(d)])
        ch = ds.chunks.get(d) if ds.chunks else None
        return int(ch[0]) if ch else int(reg.sizes[d])

    @staticmethod
    def _bytes_per_point(cube: Cube) -> int:
        n = 0
        for v in cube.vars:
            da = cube.ds[v]
            extra = [cube.ds.sizes[d] for d in da.dims if d not in cube.params]
            n += da.dtype.itemsize * int(np.prod(extra, dtype=np.int64))
        return n

    def wait(self) -> None:
        """Until every slab being read is in (for tests)."""
        for f in list(self._pending.values()):
            f.result()

    def _read_slab(
        self, key: tuple, cube: Cube, block: Mapping[str, tuple[int, int]], delay: float = 0.0
    ) -> None:
        time.sleep(delay)  # let the slice just read be drawn first (2 cores are few)
        slab = cube.ds[cube.vars].isel({d: slice(*r) for d, r in block.items()}).compute()
        with self._lock:
            self.slab_reads += 1
            self._slabs[key] = slab
            self._pending.pop(key, None)
            while len(self._slabs) > self.keep:
                self._slabs.pop(next(iter(self._slabs)))

    def slice(self, cube: Cube, a: str, b: str, idx: Mapping[str, int]) -> xr.Dataset:
        full = cube.full_index(a, b, idx)
        block: dict[str, tuple[int, int]] = {}
        for d, i in full.items():
            c = 1 if d in cube.fixed_idx else self._chunk(cube.ds, d)
            c0 = (i // c) * c
            block[d] = (c0, min(c0 + c, cube.sizes[d]))
        key = (id(cube.ds), a, b, tuple(sorted(block.items())))
        with self._lock:
            slab = self._slabs.pop(key, None)
            if slab is not None:
                self._slabs[key] = slab  # most recent last
        if slab is not None:
            sub = slab.isel({d: i - block[d][0] for d, i in full.items()})
            return sub.transpose(b, a, ...)
        self.slice_reads += 1
        sub = load_slice(cube, a, b, idx)
        points = cube.sizes[a] * cube.sizes[b] * math.prod(hi - lo for lo, hi in block.values())
        if points * self._bytes_per_point(cube) <= self.max_bytes:
            with self._lock:
                if key not in self._pending:
                    if self.background:
                        self._pending[key] = self._pool.submit(
                            self._read_slab, key, cube, block, self.delay
                        )
                    else:
                        self._pending[key] = None
            if not self.background:
                self._read_slab(key, cube, block)
        return sub


def column_names(cube: Cube) -> list[str]:
    """The columns :func:`slice_columns` makes for this cube, in order."""
    out = ["a0", "a1", "b0", "b1", *[f"p{i}" for i in range(len(cube.params))], "pt", "ci"]
    out += ["done", "knife", "best", "worst"]
    if cube.refined:
        out.append("exact")
    for j in range(len(cube.labels)):
        out += [f"ex{j}", f"st{j}", f"w{j}", f"rk{j}"]
    out += [f"cl{j}" for j in range(len(cube.claims))]
    for v in cube.views:
        out.append(f"wi_{v.col}")
        if not v.categorical:
            out.append(f"wv_{v.col}")
    return out


def _flat(x: xr.DataArray | np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(x)).reshape(-1)


def slice_columns(
    cube: Cube, sub: xr.Dataset, a: str, b: str, regimes: RegimeIndex
) -> tuple[dict, dict]:
    """Per-cell columns of a loaded slice (see the module docstring) and the
    :class:`Scale` of each continuous view (``{view key: scale}``)."""
    na, nb = sub.sizes[a], sub.sizes[b]
    ea, eb = cube.edges[a], cube.edges[b]
    ia, ib = np.meshgrid(np.arange(na), np.arange(nb))  # (nb, na): rows b, columns a
    ia, ib = ia.ravel(), ib.ravel()
    cols: dict[str, np.ndarray] = {
        "a0": ea[ia],
        "a1": ea[ia + 1],
        "b0": eb[ib],
        "b1": eb[ib + 1],
    }
    # flat index of each cell in the full cube
    multi = []
    for n, d in enumerate(cube.params):
        if d == a:
            multi.append(ia)
        elif d == b:
            multi.append(ib)
        else:
            i = int(np.argmin(np.abs(cube.values[d] - float(sub[d].values))))
            multi.append(np.full(ia.shape, i))
        cols[f"p{n}"] = cube.values[d][multi[-1]]
    cols["pt"] = np.ravel_multi_index(multi, [cube.sizes[d] for d in cube.params]).astype(np.int64)
    done = _flat(sub["done"]).astype(bool) if "done" in sub else np.ones(ia.shape, bool)
    cols["ci"] = regimes.index(_flat(sub["regime"]).astype(np.int64), done)
    cols["done"] = done.astype(np.int8)
    cols["knife"] = _flat(sub["knife_edge"]).astype(np.int8)
    cols["best"] = _flat(sub["best"]).astype(np.int8)
    cols["worst"] = _flat(sub["worst"]).astype(np.int8)
    if cube.refined:
        cols["exact"] = _flat(sub["computed"]).astype(np.int8)
    for j in range(len(cube.labels)):
        cols[f"ex{j}"] = _flat(sub["exists"].isel(equilibrium=j)).astype(np.int8)
        cols[f"st{j}"] = _flat(sub["stable"].isel(equilibrium=j)).astype(np.int8)
        cols[f"w{j}"] = _flat(sub["wage"].isel(equilibrium=j)).astype(np.float64)
        cols[f"rk{j}"] = _flat(sub["wage_rank"].isel(equilibrium=j)).astype(np.int8)
    for j in range(len(cube.claims)):
        cols[f"cl{j}"] = _flat(sub["claims"].isel(claim=j)).astype(np.int8)
    scales = {}
    for v in cube.views:
        ci, val, scale = view_values(cube, sub, v, done)
        cols[f"wi_{v.col}"] = ci
        if val is not None:
            cols[f"wv_{v.col}"] = val
        scales[v.key] = scale
    return cols, scales


@dataclass
class Scale:
    """How a continuous view's values map to its ramp (for the colour bar)."""

    low: float
    high: float
    log: bool
    palette: str  # "viridis", "cividis" or "diverging" (:func:`ramp_palette`)
    absent: bool = False  # some computed cells: the equilibrium does not exist
    missing: bool = False  # some cells not computed
    present: tuple[int, ...] = ()  # categorical views: the label indices drawn


def view_values(
    cube: Cube, sub: xr.Dataset, view: View, done: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None, Scale | None]:
    """``(colour index, value or None, scale or None)`` of one welfare view on a slice.

    Categorical (``best``): the index of the best label in :func:`view_palette` (its
    :func:`pipeline.colors.label_color`), ``len(labels)`` where no equilibrium exists,
    ``len(labels) + 1`` where not computed. Continuous: ramp index 0..253, 254 where
    the equilibrium does not exist, 255 where not computed."""
    if done is None:
        done = _flat(sub["done"]).astype(bool) if "done" in sub else None
    L = len(cube.labels)
    if view.categorical:
        best = _flat(sub["best"]).astype(np.int64)
        ci = np.where(best >= 0, best, L).astype(np.uint8)
        ci[~done] = L + 1
        present = tuple(int(i) for i in np.unique(ci[done & (best >= 0)]))
        absent = bool(np.any(done & (best < 0)))
        return ci, None, Scale(0.0, 0.0, False, "", absent, not done.all(), present)
    if view.key == "ratio":
        w = np.asarray(sub["wage"].transpose(*sub["done"].dims, "equilibrium").values, float)
        w = w.reshape(-1, w.shape[-1])
        with np.errstate(invalid="ignore", divide="ignore"), _quiet():
            val = np.nanmax(w, axis=1) / np.nanmin(w, axis=1)
        sym, logok = False, False
        absent = np.zeros(val.shape, bool)
    elif view.key.startswith("pv_gain:"):
        k = view.key.split(":", 1)[1]
        tv = [str(_plain(t)) for t in sub["target"].values]
        val = _flat(sub["pv_gain"].isel(target=tv.index(k))).astype(float)
        sym, logok = True, False
        absent = np.zeros(val.shape, bool)
    else:  # gap:L
        lab = view.key.split(":", 1)[1]
        j = cube.labels.index(lab)
        w = _flat(sub["wage"].isel(equilibrium=j)).astype(float)
        ex = _flat(sub["exists"].isel(equilibrium=j)).astype(bool)
        with np.errstate(divide="ignore", invalid="ignore"):
            val = np.where(ex, 1.0 / w, np.nan)
        sym, logok = False, True
        absent = done & ~ex
    val = np.where(done, val, np.nan)
    fin = val[np.isfinite(val)]
    log = False
    if fin.size:
        lo, hi = float(fin.min()), float(fin.max())
        if sym:  # symmetric about 0, so that white is "no gain"
            m = max(abs(lo), abs(hi)) or 1.0
            lo, hi = -m, m
        elif logok and lo > 0 and hi / lo > 30:
            log = True
    else:
        lo, hi = (-1.0, 1.0) if sym else (0.0, 1.0)
    u = np.log(val) if log else val
    ulo, uhi = (math.log(lo), math.log(hi)) if log else (lo, hi)
    with np.errstate(invalid="ignore"):
        t = (u - ulo) / (uhi - ulo) if uhi > ulo else np.full(u.shape, 0.5)
    ci = np.clip(np.floor(t * RAMP), 0, RAMP - 1)
    ci = np.where(np.isfinite(ci), ci, ABSENT_INDEX).astype(np.uint8)
    ci[absent] = ABSENT_INDEX
    ci[~done] = MISSING_INDEX
    scale = Scale(lo, hi, log, view_ramp(view), absent=bool(absent.any()), missing=not done.all())
    return ci, val, scale


def view_ramp(view: View) -> str:
    """The ramp of a continuous view (fixed per view, so its palette never changes)."""
    if view.key.startswith("pv_gain:"):
        return "diverging"
    return "viridis" if view.key == "ratio" else "cividis"


def view_palette(cube: Cube, view: View) -> list[str]:
    """The palette indexed by a view's colour index."""
    if view.categorical:
        return [colors.label_color(lab) for lab in cube.labels] + [
            colors.ABSENT_COLOR,
            NOT_COMPUTED_COLOR,
        ]
    return ramp_palette(view_ramp(view)) + [colors.ABSENT_COLOR, NOT_COMPUTED_COLOR]


class _quiet:
    """Silence numpy's 'All-NaN slice' warnings (cells with no equilibrium)."""

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        self._w.__exit__(*exc)


# ------------------------------------------------------------------- transitions


def transition_rows(table) -> dict[str, list]:
    """``{"target": [...], var: [...]}`` of ``ds.marshall.transition(...)``'s table (the
    summaries per target at one point)."""
    out: dict[str, list] = {"target": [_plain(k) for k in table.index]}
    for v in table.columns:
        if v != "status_text":
            out[v] = [_plain(x) for x in table[v].to_numpy()]
    return out


def transition_arrays(cube: Cube, ds: xr.Dataset) -> dict[str, np.ndarray]:
    """Every point's transition summaries at once (offline page): ``{var: (points,
    targets)}`` in C order over the swept dims, the values :func:`transition_rows`
    gives at each point."""
    out = {}
    for v in per_target(ds):
        if v in ds:
            arr = ds[v].transpose(*cube.params, "target").values
            out[v] = np.asarray(arr).reshape(-1, len(cube.targets))
    return out


def rows_at(cube: Cube, arrays: Mapping[str, np.ndarray], pt: int) -> dict[str, list]:
    """:func:`transition_rows` of point ``pt`` from :func:`transition_arrays`."""
    out: dict[str, list] = {"target": list(cube.targets)}
    for v, arr in arrays.items():
        out[v] = [_plain(x) for x in arr[pt]]
    return out


def transition_html(rows: Mapping[str, Sequence]) -> str:
    """An HTML table of :func:`transition_rows` (one row per target). Every name and
    value comes from the cube, so every one is escaped (attributes too)."""
    esc = html.escape
    cols = [c for c in rows if c != "target"]
    head = "".join(f"<th>{esc(str(c))}</th>" for c in ["target", *cols])
    body = []
    for i, k in enumerate(rows["target"]):
        cells = "".join(f"<td data-col='{esc(str(c))}'>{esc(_fmtv(rows[c][i]))}</td>" for c in cols)
        body.append(f"<tr data-target='{esc(str(k))}'><td>{esc(str(k))}</td>{cells}</tr>")
    return f"<table class='mx-transition'><tr>{head}</tr>{''.join(body)}</table>"


def _fmtv(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        return "NaN" if not math.isfinite(float(v)) else f"{float(v):.6g}"
    return str(v)


def fmt(v: Any) -> str:
    """A value as the page prints it (6 significant digits)."""
    return _fmtv(v)
