"""Axes -> coordinates -> chunk plan.

A sweep's grid is the cartesian product of its axes (config order = cube dimension
order). The plan cuts it into chunk-aligned blocks, numbered in C order: block ``i``
is always the same region for the same config, whatever runs it, so completion
marks and resumes refer to stable ids. Every block is evaluated at the same padded
size (the full chunk shape) so a kernel compiles once per sweep. Sizes are counted in
Python integers (no overflow, whatever the grid).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .config import SweepSpec

#: target bytes of output per chunk (keeps worker memory flat and regions large)
CHUNK_BYTES = 32 * 2**20


def dim_sizes(spec: SweepSpec) -> dict[str, int]:
    """Sizes of the cube's dimensions besides the swept ones (``equilibrium``,
    ``claim`` and the model's own, e.g. ``target`` and ``time``)."""
    m = spec.decl
    sizes = {"equilibrium": len(m.labels(spec.J)), "claim": len(m.claims_list)}
    sizes |= {d: len(v[0]) for d, v in m.extra_dims(spec).items()}
    return sizes


def bytes_per_point(spec: SweepSpec) -> int:
    """Bytes of cube output per grid point: every declared output (and ``done``) at
    its dtype, as written (before compression)."""
    sizes = dim_sizes(spec)
    per = 1  # done
    for o in spec.decl.outputs_for(spec.save_paths):
        per += o.itemsize * math.prod(sizes[d] for d in o.dims)
    return per


#: at most this much memory for one block while it is computed and written (checked
#: when a config is validated: ``chunks`` covering 2e8 points was a MemoryError later)
MAX_BLOCK_MEMORY = 2 * 2**30


def block_memory(spec: SweepSpec, chunks) -> int:
    """Bytes one block of ``chunks`` holds in memory at once: its outputs twice (the
    kernel's arrays and the copy written) and its inputs (each parameter's value at
    every point, float64, twice: the config's and the kernel's)."""
    n_inputs = len(spec.fixed) + len(spec.dims) + len(spec.sampled)
    return math.prod(chunks) * (2 * bytes_per_point(spec) + 16 * n_inputs)


def default_chunks(spec: SweepSpec, requested) -> tuple[int, ...]:
    """Chunk sizes per axis: the requested ones, the others cut down (largest first,
    halving) until a chunk holds about :data:`CHUNK_BYTES` of output."""
    sizes = list(spec.shape)
    chunks = [r if r else s for r, s in zip(requested, sizes)]
    target = max(1, CHUNK_BYTES // bytes_per_point(spec))
    free = [i for i, r in enumerate(requested) if not r]
    while free and math.prod(chunks) > target:
        i = max(free, key=lambda k: chunks[k])
        if chunks[i] == 1:
            break
        chunks[i] = math.ceil(chunks[i] / 2)
    return tuple(chunks)


@dataclass(frozen=True)
class Plan:
    """How a sweep is cut: ``nchunks[d]`` blocks of ``chunks[d]`` along axis ``d``."""

    shape: tuple[int, ...]
    chunks: tuple[int, ...]

    @classmethod
    def of(cls, spec: SweepSpec) -> Plan:
        return cls(spec.shape, spec.chunks)

    @property
    def nchunks(self) -> tuple[int, ...]:
        return tuple(math.ceil(n / c) for n, c in zip(self.shape, self.chunks))

    @property
    def n_blocks(self) -> int:
        return math.prod(self.nchunks)

    @property
    def block_points(self) -> int:
        """Points in a full block: the padded batch size of the kernel."""
        return math.prod(self.chunks)

    def region(self, block: int) -> tuple[slice, ...]:
        """The block's slices along the swept dimensions."""
        if not 0 <= block < self.n_blocks:
            raise IndexError(f"block {block} outside 0..{self.n_blocks - 1}")
        idx = np.unravel_index(block, self.nchunks) if self.shape else ()
        return tuple(
            slice(i * c, min((i + 1) * c, n)) for i, c, n in zip(idx, self.chunks, self.shape)
        )

    def block_of(self, region: tuple[slice, ...]) -> int:
        """The id of the block whose region starts at ``region``'s start."""
        idx = tuple(s.start // c for s, c in zip(region, self.chunks))
        return int(np.ravel_multi_index(idx, self.nchunks)) if self.shape else 0

    def blocks(self) -> Iterator[int]:
        return iter(range(self.n_blocks))


def block_params(spec: SweepSpec, region: tuple[slice, ...], pad_to: int) -> dict[str, np.ndarray]:
    """Parameter values at every point of a region, flattened in C order and padded
    (by repeating the last point) to ``pad_to`` points, keyed by the model's own
    parameter names (aliases resolved). Fixed parameters are broadcast.
    """
    if spec.design is not None:  # a design: the samples in the region, one per point
        columns = [(name, v[region[0]]) for name, v in spec.samples.items()]
    else:
        axes_vals = [a.values[s] for a, s in zip(spec.axes, region)]
        mesh = np.meshgrid(*axes_vals, indexing="ij") if axes_vals else []
        columns = [(a.name, m.ravel()) for a, m in zip(spec.axes, mesh)]
    n = math.prod(s.stop - s.start for s in region)
    if n > pad_to:
        raise ValueError(f"region of {n} points exceeds the batch size {pad_to}")
    out = {}
    for name, flat in columns:
        out[spec.canonical_name(name)] = (
            np.pad(flat, (0, pad_to - n), mode="edge") if pad_to > n else flat
        )
    for k, v in spec.fixed.items():
        out[spec.canonical_name(k)] = np.full(pad_to, v, dtype=np.float64)
    return out


# ------------------------------------------------------------------ refined sweeps
#
# A refined sweep (``refine:`` in the config, :mod:`pipeline.refine`) stores one grid per
# level; ``spec.axes`` are the finest grid's. Level ``l`` is a dense grid of its own
# (:func:`level_spec`): its schema, template and chunk plan are a dense sweep's over the
# level's coordinates, so the store, the kernels and the writer treat it as one.

#: points per chunk of a refined sweep's level arrays (at most; fewer for large points):
#: a block writes whole chunks, most of them along a boundary, so they are kept small
REFINE_CHUNK_POINTS = 2**16
#: points per kernel call of a refined sweep whose model does not slice its blocks
REFINE_BATCH = 1024


def refine_chunks(spec: SweepSpec, requested) -> tuple[int, ...]:
    """Chunk shape of a refined sweep's level arrays (each level caps it by its shape):
    the requested sizes; along other refined axes the finest axis halved (largest
    first, rounding up) until a chunk holds about :data:`REFINE_CHUNK_POINTS` points (at
    most 1.25 times) and :data:`CHUNK_BYTES` of output; 1 along axes that are not
    refined (lists)."""
    refined = spec.refine.grid.refined
    target = max(1, min(REFINE_CHUNK_POINTS, CHUNK_BYTES // bytes_per_point(spec)))
    chunks = [r if r else (n if k else 1) for r, n, k in zip(requested, spec.shape, refined)]
    free = [i for i, r in enumerate(requested) if not r and refined[i]]
    while free and math.prod(chunks) > target * 1.25:  # about: 257 x 257 for 2^16
        i = max(free, key=lambda k: chunks[k])
        if chunks[i] == 1:
            break
        chunks[i] = math.ceil(chunks[i] / 2)
    return tuple(chunks)


def level_chunks(spec: SweepSpec, level: int) -> tuple[int, ...]:
    """The chunk shape of level ``level``'s arrays: ``spec.chunks`` capped by its shape."""
    return tuple(min(c, n) for c, n in zip(spec.chunks, spec.refine.grid.shape(level)))


def level_spec(spec: SweepSpec, level: int) -> SweepSpec:
    """Level ``level`` of a refined sweep as a dense sweep over the level's grid (its
    coordinates are the finest grid's, subsampled): the same config, hash and output."""
    from dataclasses import replace

    from .config import Axis

    g = spec.refine.grid
    coords = g.coords(level)
    axes = tuple(Axis(a.name, coords[a.name], a.spacing) for a in spec.axes)
    return replace(spec, axes=axes, chunks=level_chunks(spec, level))


def level_plan(spec: SweepSpec, level: int) -> Plan:
    """The chunk plan of level ``level``'s grid (level 0 computes every block of it)."""
    return Plan(spec.refine.grid.shape(level), level_chunks(spec, level))


def refine_batch(spec: SweepSpec) -> int:
    """Points per kernel call of a refined sweep: the model's slice size (the static
    models: 2^16) or :data:`REFINE_BATCH`. Every call has exactly this many points
    (padded), so the kernel compiles once per sweep."""
    return spec.decl.kernel.slice or REFINE_BATCH


def level_params(
    spec: SweepSpec, level: int, points: np.ndarray, pad_to: int | None = None
) -> dict[str, np.ndarray]:
    """Parameter values at level-``level`` points (``(k, d)`` level indices), padded to
    ``pad_to`` by repeating the last point, keyed by the model's parameter names;
    fixed parameters broadcast. The values are the finest grid's coordinates, those a
    dense sweep of the finest grid uses (:func:`block_params`)."""
    p = spec.refine.grid.params(level, points)
    n = len(points)
    pad_to = n if pad_to is None else pad_to
    if n > pad_to:
        raise ValueError(f"{n} points exceed the batch size {pad_to}")
    out = {}
    for name, v in p.items():
        out[spec.canonical_name(name)] = (
            np.pad(v, (0, pad_to - n), mode="edge") if pad_to > n else v
        )
    for k, v in spec.fixed.items():
        out[spec.canonical_name(k)] = np.full(pad_to, v, dtype=np.float64)
    return out
