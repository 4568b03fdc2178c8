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
