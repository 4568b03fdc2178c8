r"""Regime-adaptive refinement: sweeps that spend their points on the boundaries.

A refined sweep computes a coarse grid (level 0) and then, level by level, halves the
spacing only in the cells where a categorical output (``on``: e.g. ``regime``,
``best``) changes, and around them. Every point it computes is a point of one *finest*
grid, with the coordinates a dense sweep of that grid uses, so each stored value is
bit for bit what the dense sweep gives there; every other finest point reads the value
of the nearest point computed at the finest level that computed one near it. This
module is the pure core (numpy only; xarray/dask are imported by
:func:`dense_dataset` alone): the grids, the marking rule, the blocks a level writes,
the dense view, the point counts and the bisection of boundaries. Storage and kernels
are the caller's.

Grids
-----
Axes ``k = 1..d``. ``R`` is the set of *refined* axes: those given as ``linspace`` or
``logspace`` with ``n_k >= 2`` points. Explicit lists (``values``) and one-point axes are
not refined: they keep their values at every level and no cell spans across them. With
``L`` levels the finest grid has

.. math::

    N_k = (n_k - 1)\,2^L + 1 \quad (k \in R), \qquad N_k = n_k \quad (k \notin R),

with coordinates ``x_k = np.linspace(a, b, N_k)`` (``np.geomspace`` on log axes: refined in
log coordinates), exactly the axis ``linspace: [a, b, N_k]`` of the dense equivalent
(:meth:`RefineGrid.dense_axes`). Level ``l`` (``0 <= l <= L``) is the finest grid
subsampled with stride ``s_l = 2^{L-l}`` along refined axes (1 elsewhere): shape
``n_{l,k} = (n_k - 1) 2^l + 1`` on ``R``, index map ``phi_l(j)_k = s_l j_k`` into the finest
grid, coordinates ``x_k[s_l j_k]`` (so level 0's values are the finest array's, which may
differ from ``np.linspace(a, b, n_k)`` in the last bit). Level ``l`` embeds in level
``l + 1`` by ``j -> 2j`` on ``R`` (:meth:`RefineGrid.embed`): the copy map.

Cells, corners, marks, neighbours
---------------------------------
A level-``l`` cell with lower corner ``c`` (``0 <= c_k < n_{l,k} - 1`` on ``R``) is the box

.. math::

    C_l(c) = \prod_{k \in R} [c_k, c_k + 1] \times \prod_{k \notin R} \{c_k\}

(level-``l`` index units); its ``2^{|R|}`` corners are ``c + o``, ``o \in \{0,1\}^R``. Given
level ``l``'s stored ``on`` codes ``v``, ``knife_edge`` flags ``e`` and ``computed`` mask:

- candidate ``K_l``: all corners computed (all cells at level 0);
- marked ``M_l = {c in K_l : v(c+o) != v(c+o') for some on variable and o, o', or
  e(c+o) for some o}`` (``knife_rule="any"``; with ``"change"``: or ``e(c+o) != e(c+o')``,
  the knife-edge flag treated as one more code, which the pipeline uses);
- active ``A_l = (M_l \oplus N) \cap K_l``, ``N = {0, +-e_k : k in R}`` (face neighbours,
  the default, so a boundary that leaves a marked cell through a face is followed) or
  ``{-1,0,1}^R`` (``neighbours="box"``, also across edges and corners);
- level ``l + 1`` holds the points of the closed active cells,

.. math::

    P_{l+1} = \bigcup_{c \in A_l} \prod_{k \in R} \{2c_k, 2c_k + 1, 2c_k + 2\}
              \times \prod_{k \notin R} \{c_k\}.

``P_{l+1} \cap 2\mathbb{Z}^R`` are level-``l`` points (the cells' corners): their values are
*copied*; the rest are *computed*. ``computed_{l+1} = P_{l+1}``, so ``K_{l+1}`` is exactly the
set of children of ``A_l`` (every child of a cell has the cell's centre as a corner, and
the centre is computed only if the cell is active). The next level's points are a pure
function of the completed level's stored ``on``, ``knife_edge`` and ``computed`` arrays.

The dense view
--------------
For a finest index ``i`` the nearest level-``l`` index is ``q_l(i)_k = floor((i_k +
floor((s_l - 1)/2)) / s_l)`` on ``R`` (``i_k`` elsewhere): nearest in index space, i.e. in
log coordinates on log axes, **ties to the lower index**. The view takes

.. math::

    \lambda(i) = \max\{l : computed_l(q_l(i))\}, \qquad
    \mathrm{view}(i) = v_{\lambda(i)}(q_{\lambda(i)}(i)),

and returns ``lambda`` as the ``level`` array (``-1`` where not even level 0 was computed;
the value there is level 0's stored fill).

**Guarantee.** Call a level-``l`` cell *crossed* when the finest points in it do not all
have the same codes. If (H) every crossed level-``l`` cell is active, for ``l < L``, then
the view equals the dense sweep at every finest point, for the ``on`` variables. Proof:
let ``lambda(i) = l < L``, ``q = q_l(i)``. Some level-``l`` cell ``C`` contains both ``i``
and ``q`` (along each axis take the cell on ``i``'s side of ``q``). Rounding to the
level-``(l+1)`` grid keeps ``i`` in ``C`` (``C``'s faces are level-``(l+1)`` grid lines), so
``C`` active would make ``q_{l+1}(i)`` computed; hence ``C`` is not active, by (H) not
crossed, and ``i`` has the codes of ``q``, which were computed at ``q``. For ``l = L``,
``q = i``. Other outputs (wages, ...) are exact where ``level == L`` and otherwise the
value at the nearest computed point of the same regime.

(H) holds level by level: at level ``l >= 1`` a crossed cell is a child of a crossed, hence
active, cell, so it is a candidate; it is caught when its corners differ (always, for a
half-space: a hyperplane through a box separates its corners) or when a face neighbour's
do (a smooth boundary that bulges into a cell through a face, with curvature radius well
above the spacing). What can be missed is a feature that (H_0) misses: a region thinner
than the coarse spacing that touches no coarse corner and no marked cell (an island in
one cell, a strip between two grid lines), or a boundary wiggling on the scale of the
spacing. A finer coarse grid finds it; the refinement cannot.

Cost: a boundary of area ``A`` (domain side 1) crosses about ``A (N/2)^{|R|-1}`` cells of
level ``L - 1``; with a layer of ``w`` active cells (``w ~ 3`` with face neighbours) the finest
level computes about ``2 w A N^{|R|-1}`` points, a fraction ``~ 2 w A / N`` of the dense
``N^{|R|}``; the coarser levels add a geometric series of ratio ``2^{1-|R|}`` (as much again
in 2-D, a seventh in 4-D; :func:`estimate` extrapolates from level 0 with this scaling).

Blocks and resume
-----------------
Level ``l + 1`` is cut into chunk-aligned blocks (:meth:`Step.blocks`, a chunk shape in
level-``(l+1)`` points); only blocks holding points of ``P_{l+1}`` are listed, in C order of
their chunk index, each with its points to compute and to copy in C order. The lists
depend only on level ``l``'s stored arrays and the chunk shape: after a kill, recomputing
them gives the same blocks, and the blocks not yet marked done are run again.

Boundaries to solver precision
------------------------------
:func:`bisect_boundaries` takes the finest edges (along refined axes) whose end points
have different codes and bisects the parameter along each edge (in ``log x`` on log
axes) with the caller's ``classify`` until the bracket is below ``rtol`` relative;
points are grouped by the unordered pair of codes on the two sides, and in a 2-D slice
joined into segments cell by cell (marching squares).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = [
    "Block",
    "Boundary",
    "Estimate",
    "RefineAxis",
    "RefineGrid",
    "Step",
    "batches",
    "bisect_boundaries",
    "dense_dataset",
    "dense_view",
    "estimate",
    "exact_mask",
    "fill_block",
    "join_segments",
    "lazy_view",
    "points_computed",
    "run_in_memory",
]

#: most levels a sweep may ask for (2^20 finest intervals per coarse interval)
MAX_LEVELS = 20
#: points per piece when a level's mask is counted or scanned piece by piece
_PIECE_POINTS = 2**21

Region = Any  # tuple/dict of int | slice | 1-D int array over the finest grid, or None


# ------------------------------------------------------------------------------- axes


@dataclass(frozen=True)
class RefineAxis:
    """One swept axis as the config gives it: ``linspace``/``logspace`` ``[start, stop, n]``
    (refined when ``n >= 2``) or an explicit list of ``values`` (never refined)."""

    name: str
    kind: Literal["linspace", "logspace", "values"]
    start: float = math.nan
    stop: float = math.nan
    n: int = 0
    values: tuple[float, ...] = ()

    def __post_init__(self):
        f = f"params.{self.name}"
        if self.kind == "values":
            v = np.asarray(self.values, dtype=np.float64)
            if v.ndim != 1 or v.size == 0 or not np.all(np.isfinite(v)):
                raise ValueError(f"{f}: values must be a non-empty list of finite numbers")
            if v.size > 1 and not np.all(np.diff(v) > 0):
                raise ValueError(f"{f}: values must be strictly increasing; got {v.tolist()}")
            object.__setattr__(self, "n", int(v.size))
            return
        if self.kind not in ("linspace", "logspace"):
            raise ValueError(f"{f}: kind must be linspace, logspace or values; got {self.kind!r}")
        if not isinstance(self.n, (int, np.integer)) or self.n < 1:
            raise ValueError(f"{f}: {self.kind} needs an integer n >= 1; got {self.n!r}")
        if not (math.isfinite(self.start) and math.isfinite(self.stop)):
            raise ValueError(
                f"{f}: {self.kind} bounds must be finite; got {self.start}, {self.stop}"
            )
        if self.n > 1 and not self.start < self.stop:
            raise ValueError(f"{f}: {self.kind} must go up: start < stop")
        if self.kind == "logspace" and self.start <= 0:
            raise ValueError(f"{f}: logspace needs start > 0; got {self.start}")

    @classmethod
    def from_config(cls, name: str, v: Any) -> RefineAxis:
        """From a config value: ``{linspace: [a, b, n]}``, ``{logspace: [a, b, n]}``,
        ``{values: [...]}`` or a plain list."""
        if isinstance(v, Mapping) and len(v) == 1:
            ((kind, arg),) = v.items()
            if kind in ("linspace", "logspace"):
                try:
                    a, b, n = arg
                except (TypeError, ValueError):
                    raise ValueError(
                        f"params.{name}: {kind} takes [start, stop, n]; got {arg!r}"
                    ) from None
                if isinstance(n, float) and n.is_integer():
                    n = int(n)
                return cls(name, kind, float(a), float(b), n)
            if kind == "values":
                return cls(name, "values", values=tuple(float(x) for x in arg))
        if isinstance(v, (list, tuple)):
            return cls(name, "values", values=tuple(float(x) for x in v))
        raise ValueError(
            f"params.{name}: a refined sweep axis is {{linspace: [a, b, n]}}, "
            f"{{logspace: [a, b, n]}}, {{values: [...]}} or a list; got {v!r}"
        )

    @property
    def refinable(self) -> bool:
        return self.kind != "values" and self.n >= 2

    @property
    def log(self) -> bool:
        return self.kind == "logspace"

    def finest(self, levels: int) -> np.ndarray:
        """The finest grid's coordinates along this axis (float64)."""
        if self.kind == "values":
            return np.asarray(self.values, dtype=np.float64)
        N = (self.n - 1) * 2**levels + 1
        if self.kind == "logspace":
            v = np.geomspace(self.start, self.stop, N) if N > 1 else np.array([self.start])
            return v.astype(np.float64)
        return np.linspace(self.start, self.stop, N, dtype=np.float64)


# ------------------------------------------------------------------------------- grid


class RefineGrid:
    """The levels of a refined sweep: shapes, index maps, coordinates, nearest points.

    ``axes`` in cube dimension order; ``levels`` = ``L`` (level ``L`` is the finest).
    """

    def __init__(self, axes: Sequence[RefineAxis], levels: int):
        axes = tuple(axes)
        if not axes:
            raise ValueError("refine: a refined sweep needs at least one swept axis")
        names = [a.name for a in axes]
        if len(set(names)) != len(names):
            raise ValueError(f"refine: axis names must be distinct; got {names}")
        if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)):
            raise ValueError(f"refine.levels must be an integer 0..{MAX_LEVELS}; got {levels!r}")
        if not 0 <= levels <= MAX_LEVELS:
            raise ValueError(f"refine.levels must be an integer 0..{MAX_LEVELS}; got {levels}")
        if not any(a.refinable for a in axes):
            raise ValueError(
                "refine: no axis can be refined; give at least one axis as "
                "{linspace: [a, b, n]} or {logspace: [a, b, n]} with n >= 2"
            )
        self.axes = axes
        self.levels = int(levels)
        self.names = tuple(names)
        self.ndim = len(axes)
        self.refined = tuple(a.refinable for a in axes)
        self.log = tuple(a.log for a in axes)
        self.finest_coords = {a.name: a.finest(self.levels) for a in axes}
        self.finest_shape = tuple(len(self.finest_coords[n]) for n in self.names)
        self.n_refined = sum(self.refined)

    def __repr__(self) -> str:
        return (
            f"RefineGrid({', '.join(self.names)}; levels={self.levels}, finest={self.finest_shape})"
        )

    def _check_level(self, level: int) -> int:
        if not 0 <= level <= self.levels:
            raise ValueError(f"level {level} outside 0..{self.levels}")
        return int(level)

    # (a) shapes and index maps
    def stride(self, level: int) -> tuple[int, ...]:
        """Finest-grid stride of level ``level`` along each axis."""
        s = 2 ** (self.levels - self._check_level(level))
        return tuple(s if r else 1 for r in self.refined)

    def shape(self, level: int) -> tuple[int, ...]:
        """Shape of level ``level``'s grid."""
        l = self._check_level(level)
        return tuple((a.n - 1) * 2**l + 1 if r else a.n for a, r in zip(self.axes, self.refined))

    def index_map(self, level: int) -> tuple[np.ndarray, ...]:
        """Per axis, the finest index of each level-``level`` index (``s_l * j``)."""
        return tuple(np.arange(n) * s for n, s in zip(self.shape(level), self.stride(level)))

    def finest_slices(self, level: int) -> tuple[slice, ...]:
        """``finest[finest_slices(l)]`` is level ``l``'s grid (``l`` < ``L``: stride ``s_l``)."""
        return tuple(slice(None, None, s) for s in self.stride(level))

    def embed(self, level: int) -> tuple[slice, ...]:
        """``next[embed(l)]`` is the sub-grid of level ``l + 1`` made of level ``l``'s points
        (index ``2j`` on refined axes): the copy map."""
        self._check_level(level + 1)
        return tuple(slice(None, None, 2) if r else slice(None) for r in self.refined)

    def coords(self, level: int) -> dict[str, np.ndarray]:
        """Level ``level``'s coordinates, taken from the finest arrays."""
        return {
            n: self.finest_coords[n][sl] for n, sl in zip(self.names, self.finest_slices(level))
        }

    def params(self, level: int, points: np.ndarray) -> dict[str, np.ndarray]:
        """Coordinate values of level-``level`` points ``(k, d)`` (multi-indices), per axis."""
        points = np.asarray(points, dtype=np.int64).reshape(-1, self.ndim)
        st = self.stride(level)
        return {n: self.finest_coords[n][points[:, k] * st[k]] for k, n in enumerate(self.names)}

    def dense_axes(self) -> dict[str, dict[str, list]]:
        """The dense-equivalent sweep's axes (``linspace: [a, b, N]`` ...): the same
        coordinate arrays as :attr:`finest_coords`."""
        out = {}
        for a, N in zip(self.axes, self.finest_shape):
            if a.kind == "values":
                out[a.name] = {"values": list(a.values)}
            else:
                out[a.name] = {a.kind: [a.start, a.stop, N]}
        return out

    @property
    def n_dense(self) -> int:
        return math.prod(self.finest_shape)

    # the view's nearest points
    def nearest(self, level: int, finest_index: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
        """Per axis, the level-``level`` index nearest to finest indices (ties: lower)."""
        return tuple(
            (np.asarray(i, dtype=np.int64) + (s - 1) // 2) // s
            for i, s in zip(finest_index, self.stride(level))
        )

    def region_indices(self, region: Region = None) -> tuple[list[np.ndarray], list[bool]]:
        """Normalise a finest-grid region to per-axis index arrays and keep-flags (an
        integer selector drops its axis, as in numpy)."""
        if region is None:
            region = ()
        if isinstance(region, Mapping):
            unknown = set(region) - set(self.names)
            if unknown:
                raise ValueError(f"region: unknown axes {sorted(unknown)}; axes: {self.names}")
            region = tuple(region.get(n, slice(None)) for n in self.names)
        if not isinstance(region, tuple):
            region = (region,)
        if len(region) > self.ndim:
            raise ValueError(f"region has {len(region)} selectors for {self.ndim} axes")
        region = region + (slice(None),) * (self.ndim - len(region))
        idx, keep = [], []
        for sel, N, name in zip(region, self.finest_shape, self.names):
            if isinstance(sel, slice):
                idx.append(np.arange(*sel.indices(N), dtype=np.int64))
                keep.append(True)
            elif np.ndim(sel) == 0:
                i = int(sel)
                if not -N <= i < N:
                    raise IndexError(f"region: index {i} outside the finest axis {name} of {N}")
                idx.append(np.array([i % N], dtype=np.int64))
                keep.append(False)
            else:
                a = np.asarray(sel, dtype=np.int64).ravel()
                if a.size and (a.min() < -N or a.max() >= N):
                    raise IndexError(f"region: indices outside the finest axis {name} of {N}")
                idx.append(a % N)
                keep.append(True)
        return idx, keep

    def level_regions(self, region: Region = None) -> list[tuple[slice, ...]]:
        """(d) For a finest-grid region, the bounding level-``l`` region (slices) that the
        dense view reads at each level ``l = 0..L``."""
        idx, _ = self.region_indices(region)
        out = []
        for l in range(self.levels + 1):
            q = self.nearest(l, idx)
            out.append(tuple(_bbox(x) for x in q))
        return out

    # (b) the next level's points
    def step(
        self,
        level: int,
        on: Mapping[str, np.ndarray],
        knife: np.ndarray | None = None,
        computed: np.ndarray | None = None,
        neighbours: Literal["face", "box"] = "face",
        knife_rule: Literal["any", "change"] = "any",
    ) -> Step:
        """Level ``level + 1``'s points from level ``level``'s stored arrays.

        ``on``: name -> integer codes of shape ``shape(level)`` (extra trailing dims are
        compared element-wise); ``knife``: bool, same shape (or None); ``computed``: bool,
        same shape; may be omitted at level 0 only (everything computed there).
        ``knife_rule``: a knife-edge corner marks its cell (``any``), or only a cell whose
        corners' flags differ (``change``: a region where every point is knife-edge, e.g.
        where a model's conditions hold with equality throughout, is then refined along
        its edges and where the codes change, like any other region).
        """
        l = self._check_level(level)
        if l == self.levels:
            raise ValueError(f"level {l} is the finest level: there is no next level")
        shape = self.shape(l)
        if not on:
            raise ValueError("refine.on: give at least one categorical output (e.g. regime)")
        codes = {}
        for name, v in on.items():
            v = np.asarray(v)
            if v.shape[: self.ndim] != shape:
                raise ValueError(
                    f"refine.on: {name} has shape {v.shape}; level {l} has shape {shape}"
                )
            if not (np.issubdtype(v.dtype, np.integer) or v.dtype == bool):
                raise ValueError(f"refine.on: {name} must hold integer codes; got {v.dtype}")
            codes[name] = v
        if computed is None:
            if l > 0:
                raise ValueError(
                    f"level {l}: pass the computed mask (only level 0 is computed everywhere)"
                )
            computed = np.ones(shape, dtype=bool)
        computed = np.asarray(computed, dtype=bool)
        if computed.shape != shape:
            raise ValueError(f"computed has shape {computed.shape}; level {l} has {shape}")
        if knife is not None:
            knife = np.asarray(knife, dtype=bool)
            if knife.shape != shape:
                raise ValueError(f"knife-edge mask has shape {knife.shape}; level {l} has {shape}")
        if neighbours not in ("face", "box"):
            raise ValueError(f"neighbours must be 'face' or 'box'; got {neighbours!r}")

        R = [k for k in range(self.ndim) if self.refined[k]]
        candidate = _corner_reduce(computed, R, np.logical_and)
        marked = np.zeros_like(candidate)
        for v in codes.values():
            lo = _corner_reduce(v, R, np.minimum)
            hi = _corner_reduce(v, R, np.maximum)
            diff = lo != hi
            marked |= diff.reshape(diff.shape[: self.ndim] + (-1,)).any(axis=-1)
        if knife is not None:
            some = _corner_reduce(knife, R, np.logical_or)
            if knife_rule == "change":
                some &= ~_corner_reduce(knife, R, np.logical_and)
            elif knife_rule != "any":
                raise ValueError(f"knife_rule must be 'any' or 'change'; got {knife_rule!r}")
            marked |= some
        marked &= candidate
        active = _dilate(marked, R, neighbours) & candidate
        return Step(self, l, marked, active)


def _bbox(x: np.ndarray) -> slice:
    return slice(int(x.min()), int(x.max()) + 1) if x.size else slice(0, 0)


def _take(x: np.ndarray, sl: slice, axis: int) -> np.ndarray:
    key = [slice(None)] * x.ndim
    key[axis] = sl
    return x[tuple(key)]


def _corner_reduce(x: np.ndarray, axes: Sequence[int], op) -> np.ndarray:
    """Reduce over each cell's ``2^{|R|}`` corners (separably: one axis at a time)."""
    for k in axes:
        x = op(_take(x, slice(0, -1), k), _take(x, slice(1, None), k))
    return x


def _dilate(m: np.ndarray, axes: Sequence[int], neighbours: str) -> np.ndarray:
    """``m \\oplus N`` along the refined axes: face neighbours (a cross) or the box."""
    out = m.copy()
    src = m
    for k in axes:
        if m.shape[k] < 2:
            continue
        lo, hi = slice(0, -1), slice(1, None)
        key_lo = [slice(None)] * m.ndim
        key_hi = [slice(None)] * m.ndim
        key_lo[k], key_hi[k] = lo, hi
        cur = out if neighbours == "box" else src
        shifted = np.zeros_like(out)
        shifted[tuple(key_lo)] |= cur[tuple(key_hi)]
        shifted[tuple(key_hi)] |= cur[tuple(key_lo)]
        out |= shifted
    return out


def _expand_axis(x: np.ndarray, axis: int) -> np.ndarray:
    """Cells -> points along one axis: point ``t`` is set if a cell ``c`` with
    ``2c <= t <= 2c + 2`` is (``m`` cells -> ``2m + 1`` points)."""
    x = np.moveaxis(x, axis, 0)
    m = x.shape[0]
    out = np.zeros((2 * m + 1,) + x.shape[1:], dtype=bool)
    out[0 : 2 * m : 2] |= x
    out[1 : 2 * m : 2] |= x
    out[2 : 2 * m + 1 : 2] |= x
    return np.moveaxis(out, 0, axis)


# ------------------------------------------------------------------------------- step


@dataclass(frozen=True, eq=False)
class Block:
    """One chunk of level ``level`` (= ``l + 1``) holding points of ``P_{l+1}``.

    ``id``: C-order index in the level's chunk grid (stable for a shape and chunk shape);
    ``index``: the chunk's index per axis; ``region``: its slices in level indices. The
    point lists are derived on access (nothing is held per block): ``compute``, ``(k, d)``
    level indices of the points to compute, in C order; ``copy_from`` / ``copy_to``,
    ``(m, d)`` indices of the level-``l`` points whose values are copied, at level ``l``
    and at ``level``, in C order.
    """

    level: int
    id: int
    index: tuple[int, ...]
    region: tuple[slice, ...]
    step: Step = field(repr=False)

    def _masks(self):
        rng = [(s.start, s.stop) for s in self.region]
        p = self.step.points(self.region)
        ev = self.step._even(rng)
        return p & ~ev, p & ev, np.array([a for a, _ in rng], dtype=np.int64)

    @property
    def compute(self) -> np.ndarray:
        new, _, off = self._masks()
        return np.argwhere(new).astype(np.int64) + off

    @property
    def copy_to(self) -> np.ndarray:
        _, old, off = self._masks()
        return np.argwhere(old).astype(np.int64) + off

    @property
    def copy_from(self) -> np.ndarray:
        to = self.copy_to
        return np.where(np.array(self.step.grid.refined), to // 2, to)

    @property
    def n_compute(self) -> int:
        return int(np.count_nonzero(self._masks()[0]))

    @property
    def n_copy(self) -> int:
        return int(np.count_nonzero(self._masks()[1]))


@dataclass(frozen=True, eq=False)
class Step:
    """Level ``level``'s marked and active cells, and what they make of level ``level + 1``.

    ``marked`` / ``active``: bool arrays over level ``level``'s cells (shape ``n - 1`` along
    refined axes, ``n`` elsewhere).
    """

    grid: RefineGrid
    level: int
    marked: np.ndarray
    active: np.ndarray
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def next_shape(self) -> tuple[int, ...]:
        return self.grid.shape(self.level + 1)

    def points(self, region: Sequence[slice] | None = None) -> np.ndarray:
        """``P_{l+1}`` (computed and copied points) on a box of level ``l + 1``."""
        rng = _ranges(region, self.next_shape)
        sl = []
        for k, (a, b) in enumerate(rng):
            if self.grid.refined[k]:
                m = self.active.shape[k]
                sl.append(slice(max(0, (a - 1) // 2), min(m - 1, (b - 1) // 2) + 1))
            else:
                sl.append(slice(a, b))
        sub = self.active[tuple(sl)]
        for k, (a, b) in enumerate(rng):
            if self.grid.refined[k]:
                sub = _take(
                    _expand_axis(sub, k), slice(a - 2 * sl[k].start, b - 2 * sl[k].start), k
                )
        return sub

    def _even(self, rng) -> np.ndarray:
        """Mask of the level-``l`` sub-lattice (even on every refined axis) on a box."""
        ev = np.ones([b - a for a, b in rng], dtype=bool)
        for k, (a, b) in enumerate(rng):
            if self.grid.refined[k]:
                shp = [1] * len(rng)
                shp[k] = b - a
                ev = ev & (np.arange(a, b) % 2 == 0).reshape(shp)
        return ev

    def compute_mask(self, region: Sequence[slice] | None = None) -> np.ndarray:
        """(b) Level-``(l+1)`` points to compute (not copies) on a box (default: all)."""
        rng = _ranges(region, self.next_shape)
        return self.points(region) & ~self._even(rng)

    def copy_mask(self) -> np.ndarray:
        """Level-``l`` points (shape ``grid.shape(l)``) whose values are copied to
        ``next[grid.embed(l)]``."""
        return self.points()[self.grid.embed(self.level)]

    def _touched(self, chunks: Sequence[int]) -> np.ndarray:
        """Bool over the chunk grid of level ``l + 1``: chunks holding points of ``P``."""
        x = self.active
        for k, (n, c) in enumerate(zip(self.next_shape, chunks)):
            pieces = []
            for a in range(0, n, c):
                b = min(a + c, n)
                if self.grid.refined[k]:
                    m = x.shape[k]
                    s = slice(max(0, (a - 1) // 2), min(m - 1, (b - 1) // 2) + 1)
                else:
                    s = slice(a, b)
                pieces.append(_take(x, s, k).any(axis=k))
            x = np.stack(pieces, axis=k)
        return x

    def blocks(self, chunks: Sequence[int]) -> list[Block]:
        """(c) The chunk-aligned blocks of level ``l + 1`` holding points, in C order of
        their chunk index; per block the points to compute and to copy, in C order."""
        chunks = _check_chunks(chunks, self.next_shape)
        key = ("blocks", chunks)
        if key in self._cache:
            return self._cache[key]
        touched = self._touched(chunks)
        nchunks = touched.shape
        out = []
        for index in zip(*np.nonzero(touched)):
            index = tuple(int(i) for i in index)
            region = tuple(
                slice(i * c, min((i + 1) * c, n)) for i, c, n in zip(index, chunks, self.next_shape)
            )
            bid = int(np.ravel_multi_index(index, nchunks))
            out.append(Block(self.level + 1, bid, index, region, self))
        self._cache[key] = out
        return out

    def _counts(self) -> tuple[int, int]:
        if "counts" not in self._cache:
            n_c = n_p = 0
            for b in self.blocks(_piece_chunks(self.next_shape)):
                new, old, _ = b._masks()
                n_c += int(np.count_nonzero(new))
                n_p += int(np.count_nonzero(new)) + int(np.count_nonzero(old))
            self._cache["counts"] = (n_c, n_p)
        return self._cache["counts"]

    @property
    def n_compute(self) -> int:
        """Points level ``l + 1`` computes (copies excluded)."""
        return self._counts()[0]

    @property
    def n_points(self) -> int:
        """Points level ``l + 1`` holds (computed + copied)."""
        return self._counts()[1]


def _ranges(region, shape) -> list[tuple[int, int]]:
    if region is None:
        return [(0, n) for n in shape]
    if len(region) != len(shape):
        raise ValueError(f"region has {len(region)} slices for {len(shape)} axes")
    out = []
    for s, n in zip(region, shape):
        a, b, st = s.indices(n)
        if st != 1:
            raise ValueError("region: slices must have step 1")
        out.append((a, max(a, b)))
    return out


def _check_chunks(chunks, shape) -> tuple[int, ...]:
    chunks = tuple(int(c) for c in chunks)
    if len(chunks) != len(shape) or any(c < 1 for c in chunks):
        raise ValueError(f"chunks must be {len(shape)} positive integers; got {chunks}")
    return chunks


def _piece_chunks(shape) -> tuple[int, ...]:
    """A chunk shape of about :data:`_PIECE_POINTS` points (halving the largest axis)."""
    c = list(shape)
    while math.prod(c) > _PIECE_POINTS:
        i = max(range(len(c)), key=lambda k: c[k])
        c[i] = math.ceil(c[i] / 2)
    return tuple(c)


def batches(points: np.ndarray, size: int) -> Iterator[tuple[np.ndarray, int]]:
    """Cut ``(k, d)`` points into batches of exactly ``size`` rows (the kernel compiles
    once per batch shape): yields ``(padded, n_valid)``, the last batch padded by
    repeating its last point."""
    if size < 1:
        raise ValueError(f"batch size must be >= 1; got {size}")
    points = np.asarray(points)
    for a in range(0, len(points), size):
        b = points[a : a + size]
        n = len(b)
        if n < size:
            b = np.concatenate([b, np.repeat(b[-1:], size - n, axis=0)])
        yield b, n


# ------------------------------------------------------------------------------ counts


@dataclass(frozen=True)
class Estimate:
    """(e) Expected points of a refined sweep, from its level 0."""

    points: int  # all levels
    per_level: tuple[int, ...]  # points computed at each level 0..L
    dense: int  # points of the dense equivalent

    @property
    def fraction(self) -> float:
        return self.points / self.dense


def estimate(step0: Step) -> Estimate:
    """Points of all levels, extrapolated from level 0's marks: level 1 exactly
    (``step0.n_compute``), each further level ``2^{|R|-1}`` times the one before (a
    boundary surface's cells multiply by that when the spacing halves). An
    over-estimate where level 0 is too coarse for the boundaries to look flat."""
    g = step0.grid
    if step0.level != 0:
        raise ValueError("estimate extrapolates from level 0's step")
    n0 = math.prod(g.shape(0))
    n1 = step0.n_compute
    r = 2 ** (g.n_refined - 1)
    per = [n0] + [min(n1 * r**k, math.prod(g.shape(k + 1))) for k in range(g.levels)]
    return Estimate(int(sum(per)), tuple(int(x) for x in per), g.n_dense)


def points_computed(grid: RefineGrid, computed: Sequence[Any]) -> int:
    """(e) Points a refined sweep computed, from each level's stored ``computed`` mask:
    level 0's plus, at each finer level, those off the coarser level's sub-lattice
    (the others were copied). Reads each level piece by piece."""
    total = 0
    for l, comp in enumerate(computed):
        shape = grid.shape(l)
        if tuple(np.shape(comp)) != shape:
            raise ValueError(f"computed[{l}] has shape {np.shape(comp)}; level {l} has {shape}")
        n0 = shape[0]
        step = max(1, _PIECE_POINTS // max(1, math.prod(shape[1:])))
        for a in range(0, n0, step):
            b = min(a + step, n0)
            c = np.asarray(comp[a:b], dtype=bool)
            if l > 0:
                ev = np.ones(c.shape, dtype=bool)
                for k in range(grid.ndim):
                    if grid.refined[k]:
                        shp = [1] * grid.ndim
                        shp[k] = c.shape[k]
                        start = a if k == 0 else 0
                        ev = ev & (np.arange(start, start + c.shape[k]) % 2 == 0).reshape(shp)
                c = c & ~ev
            total += int(np.count_nonzero(c))
    return total


# ------------------------------------------------------------------------------- view


def _read(src: Any, name: str, box: tuple[slice, ...]) -> np.ndarray:
    """A box of a level's variable: ``src`` maps names to arrays (numpy, zarr, dask: any
    object sliced by a tuple of slices) or is an xarray Dataset."""
    if hasattr(src, "isel") and hasattr(src, "data_vars"):
        da = src[name]
        return np.asarray(da.isel(dict(zip(da.dims, box))).values)
    return np.asarray(src[name][box])


def _levels_of(grid, levels, idx, computed_key):
    """``lambda`` on the index grid ``idx`` and, per level, the nearest indices."""
    shape = tuple(len(i) for i in idx)
    lam = np.full(shape, -1, dtype=np.int8)
    qs = {}
    for l in range(grid.levels, -1, -1):
        q = grid.nearest(l, idx)
        qs[l] = q
        if lam.size == 0:
            continue
        box = tuple(_bbox(x) for x in q)
        comp = _read(levels[l], computed_key, box).astype(bool, copy=False)
        g = comp[np.ix_(*(x - b.start for x, b in zip(q, box)))]
        lam[(lam < 0) & g] = l
        if (lam >= 0).all():
            break
    for l in range(grid.levels + 1):
        qs.setdefault(l, grid.nearest(l, idx))
    return lam, qs


def _gather(grid, levels, name, lam, qs, out_dtype=None):
    """The view's values of one variable, given ``lambda``: level by level, reading each
    level's bounding box of the points resolved there."""
    d = grid.ndim
    src0 = levels[0]
    probe = _read(src0, name, tuple(slice(0, 1) for _ in range(d)))
    trailing = probe.shape[d:]
    out = np.zeros(lam.shape + trailing, dtype=out_dtype or probe.dtype)
    lam0 = np.where(lam < 0, 0, lam)
    for l in np.unique(lam0):
        l = int(l)
        mask = lam0 == l
        q = qs[l]
        # per axis, the positions where some point of this level lies
        sel = []
        for k in range(d):
            other = tuple(j for j in range(d) if j != k)
            used = mask.any(axis=other) if other else mask
            sel.append(np.nonzero(used)[0])
        qsub = [q[k][sel[k]] for k in range(d)]
        box = tuple(_bbox(x) for x in qsub)
        vals = _read(levels[l], name, box)
        g = vals[np.ix_(*(x - b.start for x, b in zip(qsub, box)))]
        m = mask[np.ix_(*sel)]
        out_sub = out[np.ix_(*sel)]
        out_sub[m] = g[m]
        out[np.ix_(*sel)] = out_sub
    return out


def exact_mask(grid: RefineGrid, lam: np.ndarray, idx: Sequence[np.ndarray]) -> np.ndarray:
    """Where the view's value is the point's own (computed there, at some level): the
    finest index lies on the lattice of the level ``lambda`` that resolved it, i.e.
    ``i_k mod s_lambda = 0`` on every refined axis. The number of such points is
    :func:`points_computed`."""
    L = grid.levels
    tz = np.full(lam.shape, L, dtype=np.int64)
    for k, i in enumerate(idx):
        if not grid.refined[k]:
            continue
        i = np.asarray(i, dtype=np.int64)
        z = np.full(i.shape, L, dtype=np.int64)  # trailing zeros of i (capped at L)
        for t in range(L, 0, -1):
            z[(i % (1 << t) != 0) & (z >= t)] = t - 1
        shp = [1] * len(idx)
        shp[k] = len(i)
        tz = np.minimum(tz, z.reshape(shp))
    return (lam >= 0) & (L - lam.astype(np.int64) <= tz)


def dense_view(
    grid: RefineGrid,
    levels: Sequence[Any],
    region: Region = None,
    names: Sequence[str] | None = None,
    computed: str = "computed",
) -> dict[str, np.ndarray]:
    """(d) The dense finest-grid view on a region, reading only the boxes it needs.

    ``levels[l]``: level ``l``'s stored variables (a mapping name -> array sliceable by a
    tuple of slices, e.g. zarr arrays, or an xarray Dataset), including the bool
    ``computed`` mask. ``region``: per finest axis an int, a slice or an index array (or
    a dict by axis name); None for all. Returns each of ``names`` (default: all of
    level 0's variables except the mask), ``level`` (int8, ``lambda``; see the module
    docstring for the rule and its guarantee) and ``exact`` (:func:`exact_mask`).
    """
    if len(levels) != grid.levels + 1:
        raise ValueError(
            f"levels: need {grid.levels + 1} levels (0..{grid.levels}); got {len(levels)}"
        )
    idx, keep = grid.region_indices(region)
    if names is None:
        names = _names(levels[0], computed)
    lam, qs = _levels_of(grid, levels, idx, computed)
    out = {name: _gather(grid, levels, name, lam, qs) for name in names}
    out["level"] = lam
    out["exact"] = exact_mask(grid, lam, idx)
    drop = tuple(0 if not k else slice(None) for k in keep)
    return {k: v[drop] for k, v in out.items()}


def _names(src, computed: str) -> list[str]:
    keys = list(src.data_vars) if hasattr(src, "data_vars") else list(src)
    return [k for k in keys if k != computed]


#: names :class:`ViewArray` serves besides the stored variables
VIEW_EXTRA = ("level", "exact", "has")


class _LevelCache:
    """``lambda`` and the nearest indices of the last few regions (every variable of a
    view chunk needs the same; computing it reads every level's mask)."""

    def __init__(self, size: int = 8):
        import threading

        self.size, self.items, self.lock = size, {}, threading.Lock()

    def get(self, grid, levels, idx, computed):
        key = tuple(i.tobytes() for i in idx)
        with self.lock:
            hit = self.items.get(key)
        if hit is None:
            hit = _levels_of(grid, levels, idx, computed)
            with self.lock:
                self.items[key] = hit
                while len(self.items) > self.size:
                    self.items.pop(next(iter(self.items)))
        return hit


class ViewArray:
    """One variable of the dense view as a lazily indexed array (``shape``, ``dtype``,
    ``__getitem__``): what :func:`dask.array.from_array` wraps. dask fuses a slice of
    the result into the getter, so a 2-D slice of a 4-D view computes only that slice
    (reading, per level, the bounding box it needs). ``name``: a stored variable, or
    ``level`` (int8 ``lambda``), ``exact`` (:func:`exact_mask`) or ``has`` (``lambda >=
    0``: the point has a value)."""

    def __init__(self, grid, levels, name, computed="computed", cache=None):
        self.grid, self.levels, self.name, self.computed = grid, levels, name, computed
        self.cache = cache or _LevelCache()
        d = grid.ndim
        if name in VIEW_EXTRA:
            self.dtype = np.dtype(np.int8 if name == "level" else bool)
            trailing = ()
        else:
            probe = _read(levels[0], name, tuple(slice(0, 1) for _ in range(d)))
            self.dtype, trailing = probe.dtype, probe.shape[d:]
        self.shape = tuple(grid.finest_shape) + tuple(trailing)
        self.ndim = len(self.shape)

    def __getitem__(self, key):
        if not isinstance(key, tuple):
            key = (key,)
        if any(k is Ellipsis for k in key):
            i = key.index(Ellipsis)
            key = key[:i] + (slice(None),) * (self.ndim - len(key) + 1) + key[i + 1 :]
        key = key + (slice(None),) * (self.ndim - len(key))
        d = self.grid.ndim
        idx, keep = self.grid.region_indices(key[:d])
        lam, qs = self.cache.get(self.grid, self.levels, idx, self.computed)
        if self.name == "level":
            out = lam
        elif self.name == "has":
            out = lam >= 0
        elif self.name == "exact":
            out = exact_mask(self.grid, lam, idx)
        else:
            out = _gather(self.grid, self.levels, self.name, lam, qs)
        drop = tuple(0 if not k else slice(None) for k in keep)
        out = out[drop]
        tail = key[d:]
        if tail and any(not (isinstance(t, slice) and t == slice(None)) for t in tail):
            out = out[(slice(None),) * (out.ndim - len(tail)) + tuple(tail)]
        return out


def lazy_view(grid, levels, name, chunks=None, computed="computed", cache=None):
    """A dask array of one variable of the dense view (:class:`ViewArray`), chunked by
    ``chunks`` over the finest grid (default: pieces of about 2^21 points) and whole
    along its extra dims."""
    import dask.array as da

    arr = ViewArray(grid, levels, name, computed, cache)
    chunks = _check_chunks(chunks or _piece_chunks(grid.finest_shape), grid.finest_shape)
    full = tuple(chunks) + tuple(arr.shape[grid.ndim :])
    return da.from_array(arr, chunks=full, asarray=False, lock=False,
                         meta=np.empty((0,) * arr.ndim, arr.dtype), name=False)  # fmt: skip


def dense_dataset(
    grid: RefineGrid,
    levels: Sequence[Any],
    names: Sequence[str] | None = None,
    chunks: Sequence[int] | None = None,
    computed: str = "computed",
):
    """(d) The dense view as a lazy, dask-backed xarray Dataset over the finest grid
    (coordinates :attr:`RefineGrid.finest_coords`): selecting a slice and loading it
    computes only that slice, reading only the level boxes it needs (:class:`ViewArray`).
    ``levels`` as for :func:`dense_view`; ``chunks``: the view's chunk shape. Holds the
    ``names`` (default: all stored), ``level`` and ``exact``."""
    import xarray as xr

    if len(levels) != grid.levels + 1:
        raise ValueError(
            f"levels: need {grid.levels + 1} levels (0..{grid.levels}); got {len(levels)}"
        )
    src0 = levels[0]
    is_xr = hasattr(src0, "data_vars")
    if names is None:
        names = _names(src0, computed)
    cache = _LevelCache()
    data = {}
    for name in [*names, "level", "exact"]:
        arr = lazy_view(grid, levels, name, chunks, computed, cache)
        extra = arr.ndim - grid.ndim
        if is_xr and name in src0:
            tdims = src0[name].dims[grid.ndim :]
        else:
            tdims = tuple(f"{name}_dim_{i}" for i in range(extra))
        data[name] = (grid.names + tuple(tdims), arr)
    return xr.Dataset(data, coords={n: (n, grid.finest_coords[n]) for n in grid.names})


# ----------------------------------------------------------------- reference driver


def fill_block(
    grid: RefineGrid,
    current: Mapping[str, np.ndarray],
    nxt: Mapping[str, np.ndarray],
    block: Block,
    evaluate: Callable[[dict[str, np.ndarray]], Mapping[str, np.ndarray]],
    batch: int | None = None,
    computed: str = "computed",
) -> None:
    """Write one block of level ``block.level`` in memory: copy its level-``l`` points
    from ``current``, evaluate the others in padded batches of ``batch`` (None: one
    batch of exactly the block's points), set ``computed``. A store does the same
    with a region write and then marks the block done."""
    to, frm, todo = block.copy_to, block.copy_from, block.compute
    for name, arr in nxt.items():
        if name != computed:
            arr[tuple(to.T)] = current[name][tuple(frm.T)]
    nxt[computed][tuple(to.T)] = True
    if len(todo):
        pieces = [(todo, len(todo))] if batch is None else batches(todo, batch)
        pos = 0
        for pts, n in pieces:
            res = evaluate(grid.params(block.level, pts))
            where = tuple(todo[pos : pos + n].T)
            for name, arr in nxt.items():
                if name != computed:
                    arr[where] = np.asarray(res[name])[:n]
            pos += n
        nxt[computed][tuple(todo.T)] = True


def run_in_memory(
    grid: RefineGrid,
    evaluate: Callable[[dict[str, np.ndarray]], Mapping[str, np.ndarray]],
    on: Sequence[str] = ("regime",),
    knife: str | None = "knife_edge",
    chunks: Sequence[int] | None = None,
    batch: int | None = None,
    neighbours: Literal["face", "box"] = "face",
    until: int | None = None,
) -> list[dict[str, np.ndarray]]:
    """Reference driver (for tests, benchmarks and as the pattern a store follows):
    level 0 dense, then level by level :meth:`RefineGrid.step` and :func:`fill_block`
    for each block. ``evaluate(params) -> {name: (k, ...) array}`` stands in for the
    kernel. Returns each level's arrays (with ``computed``), levels ``0..until``."""
    until = grid.levels if until is None else until
    shape0 = grid.shape(0)
    pts = np.indices(shape0).reshape(grid.ndim, -1).T
    res = evaluate(grid.params(0, pts))
    lev = {k: np.asarray(v).reshape(shape0 + np.shape(v)[1:]) for k, v in res.items()}
    lev["computed"] = np.ones(shape0, dtype=bool)
    out = [lev]
    for l in range(until):
        step = grid.step(
            l,
            {v: lev[v] for v in on},
            knife=lev[knife] if knife else None,
            computed=lev["computed"],
            neighbours=neighbours,
        )
        shape = grid.shape(l + 1)
        nxt = {k: np.zeros(shape + v.shape[grid.ndim :], v.dtype) for k, v in lev.items()}
        for b in step.blocks(chunks or _piece_chunks(shape)):
            fill_block(grid, lev, nxt, b, evaluate, batch)
        out.append(nxt)
        lev = nxt
    return out


# ------------------------------------------------------------------------ boundaries


@dataclass(frozen=True, eq=False)
class Boundary:
    """Boundary points between the regions with codes ``pair`` (``a < b``).

    ``points``: axis name -> ``(k,)`` coordinates of each point (all axes of the grid);
    ``axis``: ``(k,)`` index of the axis bisected for each point; ``edge``: ``(k, d)``
    finest index of the lower end of its edge; ``segments``: for a 2-D slice,
    ``(m, 2, 2)`` end points ``(x, y)`` (the slice's first and second free axes) of the
    boundary pieces joined cell by cell, else None.
    """

    pair: tuple[int, int]
    points: dict[str, np.ndarray]
    axis: np.ndarray
    edge: np.ndarray
    segments: np.ndarray | None = None


def bisect_boundaries(
    grid: RefineGrid,
    codes: np.ndarray,
    region: Region,
    classify: Callable[[dict[str, np.ndarray]], np.ndarray],
    rtol: float = 1e-12,
    max_iter: int = 200,
    valid: np.ndarray | None = None,
    group: Literal["meet", "ends"] = "meet",
) -> dict[tuple[int, int], Boundary]:
    """(f) Boundaries to solver precision on a finest-grid region.

    ``codes``: one categorical output on ``region`` (e.g. the dense view's ``regime`` on
    a 2-D slice; shape of the region's free axes). Along every free refined axis, each
    edge between neighbouring region points with different codes is bisected with
    ``classify(points) -> codes`` (points: axis name -> float array, all axes) in ``x``
    (``log x`` on log axes) until ``hi - lo <= rtol * max(|lo|, |hi|)`` (or the floats
    between them run out). A code met inside the bracket that is neither end's
    replaces the far end (the nearer boundary is followed). Returns the points per
    unordered pair of codes on the two sides (``group="meet"``) or by the pair of codes
    at the ends of their edges (``"ends"``: the regions the grid shows, so a sliver of
    another code between them, e.g. a knife-edge band, does not split a line).
    ``valid`` (bool, the shape of ``codes``): edges with an end outside it (e.g. not
    computed) are not bisected.
    """
    if group not in ("meet", "ends"):
        raise ValueError(f"group must be 'meet' or 'ends'; got {group!r}")
    idx, keep = grid.region_indices(region)
    free = [k for k in range(grid.ndim) if keep[k]]
    codes = np.asarray(codes)
    want = tuple(len(idx[k]) for k in free)
    if codes.shape != want:
        raise ValueError(f"codes have shape {codes.shape}; the region's free axes have {want}")
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != want:
            raise ValueError(f"valid has shape {valid.shape}; the region's free axes have {want}")
    e_axis, lo_x, hi_x, c_lo, c_hi, lo_pos = [], [], [], [], [], []
    for p, k in enumerate(free):
        if not grid.refined[k] or codes.shape[p] < 2:
            continue
        a = _take(codes, slice(0, -1), p)
        b = _take(codes, slice(1, None), p)
        diff = a != b
        if valid is not None:
            diff &= _take(valid, slice(0, -1), p) & _take(valid, slice(1, None), p)
        pos = np.argwhere(diff)
        if not len(pos):
            continue
        x = grid.finest_coords[grid.names[k]][idx[k]]
        lo_x.append(x[pos[:, p]])
        hi_x.append(x[pos[:, p] + 1])
        c_lo.append(a[tuple(pos.T)])
        c_hi.append(b[tuple(pos.T)])
        e_axis.append(np.full(len(pos), k))
        lo_pos.append(pos)
    if not e_axis:
        return {}
    e_axis = np.concatenate(e_axis)
    pos = np.concatenate(lo_pos)
    lo, hi = np.concatenate(lo_x), np.concatenate(hi_x)
    c_lo, c_hi = np.concatenate(c_lo), np.concatenate(c_hi)
    end_hi = c_hi.copy()
    # finest indices of the lower end points and the fixed coordinates of each edge
    edge = np.empty((len(pos), grid.ndim), dtype=np.int64)
    for k in range(grid.ndim):
        edge[:, k] = idx[k][pos[:, free.index(k)]] if keep[k] else idx[k][0]
    base = {n: grid.finest_coords[n][edge[:, k]] for k, n in enumerate(grid.names)}
    is_log = np.array(grid.log)[e_axis]
    u_lo = np.where(is_log, np.log(np.where(is_log, lo, 1.0)), lo)
    u_hi = np.where(is_log, np.log(np.where(is_log, hi, 1.0)), hi)
    x_lo, x_hi = lo.copy(), hi.copy()
    todo = np.arange(len(pos))
    for _ in range(max_iter):
        if not len(todo):
            break
        um = 0.5 * (u_lo[todo] + u_hi[todo])
        xm = np.where(is_log[todo], np.exp(um), um)
        xm = np.clip(xm, np.minimum(x_lo[todo], x_hi[todo]), np.maximum(x_lo[todo], x_hi[todo]))
        pts = {n: base[n][todo].copy() for n in grid.names}
        for k, n in enumerate(grid.names):
            sel = e_axis[todo] == k
            pts[n][sel] = xm[sel]
        c = np.asarray(classify(pts)).reshape(-1)
        if c.shape != xm.shape:
            raise ValueError(f"classify returned {c.shape[0]} codes for {xm.shape[0]} points")
        stuck = (xm == x_lo[todo]) | (xm == x_hi[todo])
        same = c == c_lo[todo]
        t_lo, t_hi = todo[same], todo[~same]
        u_lo[t_lo], x_lo[t_lo] = um[same], xm[same]
        u_hi[t_hi], x_hi[t_hi] = um[~same], xm[~same]
        c_hi[t_hi] = c[~same]
        width = np.abs(x_hi[todo] - x_lo[todo])
        scale = np.maximum(np.abs(x_lo[todo]), np.abs(x_hi[todo]))
        done = (width <= rtol * scale) | stuck | (width == 0)
        todo = todo[~done]
    um = 0.5 * (u_lo + u_hi)
    xb = np.where(is_log, np.exp(um), um)
    xb = np.clip(xb, np.minimum(x_lo, x_hi), np.maximum(x_lo, x_hi))
    coords = {n: base[n].copy() for n in grid.names}
    for k, n in enumerate(grid.names):
        coords[n][e_axis == k] = xb[e_axis == k]
    far = c_hi if group == "meet" else end_hi
    a, b = np.minimum(c_lo, far), np.maximum(c_lo, far)
    out = {}
    two_d = len(free) == 2 and all(grid.refined[k] for k in free)
    for pa, pb in sorted(set(zip(a.tolist(), b.tolist()))):
        sel = (a == pa) & (b == pb)
        segs = None
        if two_d:
            segs = _segments(
                grid, free, want, pos[sel], e_axis[sel], {n: coords[n][sel] for n in grid.names}
            )
        out[(pa, pb)] = Boundary(
            (pa, pb),
            {n: coords[n][sel] for n in grid.names},
            e_axis[sel],
            edge[sel],
            segs,
        )
    return out


def _segments(grid, free, shape, pos, e_axis, coords) -> np.ndarray:
    """Join one pair's crossings of a 2-D slice cell by cell: a cell with two crossing
    edges gets a segment; one with four (a saddle) gets bottom-right and top-left."""
    k0, k1 = free
    n0, n1 = shape
    x, y = coords[grid.names[k0]], coords[grid.names[k1]]
    E0 = np.full((max(n0 - 1, 0), n1, 2), np.nan)  # edges along the first free axis
    E1 = np.full((n0, max(n1 - 1, 0), 2), np.nan)  # edges along the second
    s0, s1 = e_axis == k0, e_axis == k1
    E0[pos[s0, 0], pos[s0, 1]] = np.stack([x[s0], y[s0]], axis=-1)
    E1[pos[s1, 0], pos[s1, 1]] = np.stack([x[s1], y[s1]], axis=-1)
    if n0 < 2 or n1 < 2:
        return np.zeros((0, 2, 2))
    sides = np.stack([E0[:, :-1], E1[1:, :], E0[:, 1:], E1[:-1, :]])  # bottom right top left
    valid = ~np.isnan(sides[..., 0])
    count = valid.sum(axis=0)
    order = np.argsort(~valid, axis=0, kind="stable")  # valid sides first, in side order
    out = []
    two = count == 2
    if two.any():
        i, j = np.nonzero(two)
        first, second = order[0, i, j], order[1, i, j]
        out.append(np.stack([sides[first, i, j], sides[second, i, j]], axis=1))
    four = count == 4
    if four.any():
        i, j = np.nonzero(four)
        out.append(np.stack([sides[0, i, j], sides[1, i, j]], axis=1))
        out.append(np.stack([sides[2, i, j], sides[3, i, j]], axis=1))
    return np.concatenate(out) if out else np.zeros((0, 2, 2))


def join_segments(segments: np.ndarray) -> list[np.ndarray]:
    """Chain ``(m, 2, 2)`` segments that share end points (exactly: neighbouring cells
    share their edge's bisected point) into polylines ``(n, 2)``, for drawing one line
    per piece of boundary instead of one per cell."""
    segments = np.asarray(segments, dtype=np.float64).reshape(-1, 2, 2)
    if not len(segments):
        return []
    keys = [tuple(map(bytes, (s[0].tobytes(), s[1].tobytes()))) for s in segments]
    ends: dict[bytes, list[int]] = {}
    for i, (a, b) in enumerate(keys):
        ends.setdefault(a, []).append(i)
        ends.setdefault(b, []).append(i)
    used = np.zeros(len(segments), bool)

    def walk(i: int, at: bytes) -> list[np.ndarray]:
        pts = []
        while True:
            nxt = [j for j in ends[at] if not used[j]]
            if not nxt:
                return pts
            j = nxt[0]
            used[j] = True
            a, b = keys[j]
            if a == at:
                pts.append(segments[j][1])
                at = b
            else:
                pts.append(segments[j][0])
                at = a

    lines = []
    # start at loose ends first (open curves), then whatever is left (closed curves)
    order = sorted(range(len(segments)), key=lambda i: -(
        (len(ends[keys[i][0]]) == 1) or (len(ends[keys[i][1]]) == 1)))  # fmt: skip
    for i in order:
        if used[i]:
            continue
        used[i] = True
        a, b = keys[i]
        if len(ends[b]) == 1 and len(ends[a]) > 1:
            a, b = b, a
            first, second = segments[i][1], segments[i][0]
        else:
            first, second = segments[i][0], segments[i][1]
        fwd = walk(i, b)
        back = walk(i, a)
        line = [*reversed(back), first, second, *fwd]
        lines.append(np.array(line))
    return lines
