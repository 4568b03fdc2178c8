"""The one place where a batch is formed: config values -> kernel inputs, jit/vmap.

Each model declares pure functions (:class:`pipeline.models.Model`): an equilibrium
model's point kernel (:func:`pipeline.models._spec.evaluate`, its ``economy`` and
claims) is vmapped over a block here, and a model's batch kernel (e.g. the dynamic
model's transition) runs on the whole block. The result is jitted once per
``(model, J, block size, static options)`` and process: every block of a sweep is
padded to the same size, so a sweep compiles each kernel exactly once per process
(see :func:`trace_count`).

How many points one call (a launch) carries depends on the device
(:func:`launch_size`): on the CPU a model's cache-sized slice (results there are
those of every earlier release, bit for bit), on a GPU millions of points or tens of
thousands of trajectories.

This module imports JAX, numpy and the models only (no xarray, zarr or config
parsing), so the model kernels run, e.g. in ``benchmarks/bench_device.py``, where
only JAX is installed.
"""

from __future__ import annotations

import os
from collections import Counter
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from . import _jax  # noqa: F401  (float64 on before jax is used)
from .models import get as get_model
from .models._spec import evaluate, jax_ops

if TYPE_CHECKING:
    from .config import SweepSpec
    from .grid import Plan

#: points per launch of a point kernel (the static models) on a GPU: enough to fill
#: it (the CPU computes the model's ``Kernel.slice``, 2^16, that stays in cache), for
#: a model of up to four equilibrium labels (J = 2); with more labels, proportionally
#: fewer (the intermediates grow with them): 2^21 points for J = 4 (8 labels)
GPU_POINTS = 1 << 22
#: points per launch of a batch kernel (the dynamic model's transition: J paths a
#: point, ~13 KB a path with 401 saved times) on a GPU: tens of thousands of paths
GPU_TRAJECTORIES = 1 << 15
#: blocks in flight on a GPU: the next block's kernel is queued on the device while
#: the host gathers, compresses and writes the one before
GPU_IN_FLIGHT = 2

_TRACES: Counter = Counter()


def trace_count(model: str | None = None) -> int:
    """How many times a kernel was traced (= compiled) in this process."""
    return sum(_TRACES.values()) if model is None else _TRACES[model]


def labels(model: str, J: int) -> list[str]:
    """Equilibrium labels of a model, in cube order."""
    return get_model(model).labels(J)


def resolve_inputs(model: str, J: int, p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Config values (flat arrays, one per point, the model's parameter names) ->
    kernel inputs, as the model declares (``Model.inputs``)."""
    return get_model(model).inputs(p, J)


@cache
def batch_kernel(model: str, J: int, n: int, **static):
    """The jitted batch function of a model for blocks of ``n`` points."""
    import jax

    decl = get_model(model)
    ops = jax_ops()
    labels = decl.labels(J)
    point = decl.kernel.point or (
        (lambda ops, **inp: evaluate(decl, ops, labels, inp)) if decl.economy else None
    )
    batch = decl.kernel.batch

    def fn(inputs):
        _TRACES[model] += 1
        out = {}
        if point is not None:
            out.update(jax.vmap(lambda i: point(ops, **i))(inputs))
        if batch is not None:
            out.update(batch(inputs, **static))
        return out

    return jax.jit(fn)


def _numpy(decl, out, static: dict) -> dict[str, np.ndarray]:
    res = {k: np.asarray(v) for k, v in out.items()}
    return decl.kernel.post(res, **static) if decl.kernel.post else res


def device_kind() -> str:
    """``cpu`` or ``gpu``: where this process's kernels run (JAX's default backend,
    as :mod:`pipeline.device` chose it)."""
    import jax

    from .device import kind_of

    return kind_of(jax.default_backend())


def launch_size(model: str, kind: str | None = None, J: int | None = None) -> int | None:
    """Most points one kernel call carries on a device of ``kind`` (default: this
    process's), None for whole blocks; the one place this is decided.

    CPU: the model's ``Kernel.slice`` (2^16 points for the static models, whose
    kernels stream many intermediates through memory: slices that stay in cache run
    2-3x the points/s of one 2^20-point call, benchmarks/RESULTS.md; None for the
    dynamic model: a block per call, blocks side by side on threads). Unchanged, so
    every cube computed on a CPU is what it was, bit for bit.
    GPU: :data:`GPU_POINTS` for a point kernel (over ``labels / 4`` with ``J``'s
    equilibrium labels, when more than 4), :data:`GPU_TRAJECTORIES` for a batch kernel
    (an integrator whose memory grows with the saved paths)."""
    kind = kind or device_kind()
    decl = get_model(model)
    if kind == "cpu":
        return decl.kernel.slice
    if decl.kernel.batch is not None:
        return GPU_TRAJECTORIES
    labels = len(decl.labels(J)) if J is not None else 4
    return max(1, GPU_POINTS * 4 // max(4, labels))


def in_flight(model: str, kind: str | None = None) -> int:
    """Blocks computed at once in one process (``marshall run --threads``' default).

    CPU: one per core for a model whose kernel uses one core per call
    (``Kernel.threads``), else one (XLA spreads a static block over the cores).
    GPU: :data:`GPU_IN_FLIGHT`, so the device always has the next block queued."""
    kind = kind or device_kind()
    if kind == "cpu":
        return (os.cpu_count() or 1) if get_model(model).kernel.threads else 1
    return GPU_IN_FLIGHT


def slicing(model: str, n: int, kind: str | None = None, J: int | None = None) -> tuple[int, int]:
    """``(count, size)``: a block of ``n`` points is computed as ``count`` calls of
    the kernel compiled for ``size`` points (``count * size >= n``, padded), each of
    at most :func:`launch_size` points on this device."""
    limit = launch_size(model, kind, J)
    if limit is None or n <= limit:
        return 1, n
    count = -(-n // limit)
    return count, -(-n // count)


def _launch(model: str, J: int, inputs: dict[str, np.ndarray], static: dict):
    """Dispatch the kernel over ``inputs`` (padded to ``count * size`` points) in
    slices; JAX runs them asynchronously, :func:`_gather` waits."""
    n = len(next(iter(inputs.values())))
    count, size = slicing(model, n, J=J)
    fn = batch_kernel(model, J, size, **static)
    flat = {k: np.asarray(v, dtype=np.float64) for k, v in inputs.items()}
    if count * size > n:
        flat = {k: np.pad(v, [(0, count * size - n)] + [(0, 0)] * (v.ndim - 1), mode="edge")
                for k, v in flat.items()}  # fmt: skip
    return [fn({k: v[i * size : (i + 1) * size] for k, v in flat.items()}) for i in range(count)]


def _gather(model: str, outs: list, static: dict) -> dict[str, np.ndarray]:
    decl = get_model(model)
    parts = [_numpy(decl, o, static) for o in outs]
    if len(parts) == 1:
        return parts[0]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def run_kernel(
    model: str, J: int, inputs: dict[str, np.ndarray], **static
) -> dict[str, np.ndarray]:
    """Evaluate a model on flat kernel inputs (any length; compiled per slice length)."""
    n = len(next(iter(inputs.values())))
    outs = _launch(model, J, inputs, static)
    return {k: v[:n] for k, v in _gather(model, outs, static).items()}


def launch_block(spec: SweepSpec, block: int, plan: Plan | None = None):
    """Start evaluating a block; returns a handle for :func:`collect_block`.

    JAX dispatches asynchronously, so the caller can write the previous block while
    this one computes.
    """
    from . import grid

    plan = plan or grid.Plan.of(spec)
    region = plan.region(block)
    shape = tuple(s.stop - s.start for s in region)
    params = grid.block_params(spec, region, plan.block_points)
    inputs = resolve_inputs(spec.model, spec.J, params)
    static = spec.decl.kernel.static(spec)
    return spec.model, shape, static, _launch(spec.model, spec.J, inputs, static)


def collect_block(handle) -> dict[str, np.ndarray]:
    """Wait for a launched block; every output shaped ``region shape + extra dims``."""
    model, shape, static, outs = handle
    n = int(np.prod(shape, dtype=np.int64))
    return {k: v[:n].reshape(shape + v.shape[1:]) for k, v in _gather(model, outs, static).items()}


def compute_block(spec: SweepSpec, block: int, plan: Plan | None = None) -> dict[str, np.ndarray]:
    """Evaluate one block of a sweep: every output shaped ``region shape + extra dims``."""
    return collect_block(launch_block(spec, block, plan))


def blocks_per_launch(spec: SweepSpec, plan: Plan | None = None, kind: str | None = None) -> int:
    """Consecutive blocks one launch carries (:func:`launch_blocks`): one on the CPU
    (a block is already many cache-sized slices), on a GPU as many as fill
    :func:`launch_size` (a block holds ~32 MB of output: ~10^5 static points, a few
    thousand points with paths)."""
    from . import grid

    kind = kind or device_kind()
    limit = launch_size(spec.model, kind, spec.J)
    if kind == "cpu" or limit is None:
        return 1
    return max(1, limit // (plan or grid.Plan.of(spec)).block_points)


def launch_blocks(
    spec: SweepSpec, blocks: list[int], plan: Plan | None = None, slots: int | None = None
):
    """Start evaluating several blocks in one launch (each padded to the plan's block
    size, then put end to end, then padded to ``slots`` blocks: a sweep's last, shorter
    launch has the shape of the others and compiles no other kernel); returns a handle
    for :func:`collect_blocks`. One block in one slot is :func:`launch_block` exactly
    (the same inputs, the same slices)."""
    from . import grid

    plan = plan or grid.Plan.of(spec)
    slots = max(len(blocks), slots or 1)
    if slots == 1:
        return [launch_block(spec, blocks[0], plan)], None
    shapes, parts = [], []
    for b in blocks:
        region = plan.region(b)
        shapes.append(tuple(s.stop - s.start for s in region))
        parts.append(grid.block_params(spec, region, plan.block_points))
    params = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    n = slots * plan.block_points
    params = {k: np.pad(v, (0, n - len(v)), mode="edge") for k, v in params.items()}
    inputs = resolve_inputs(spec.model, spec.J, params)
    static = spec.decl.kernel.static(spec)
    return (spec.model, shapes, static, _launch(spec.model, spec.J, inputs, static)), plan


def collect_blocks(handle) -> list[dict[str, np.ndarray]]:
    """Wait for launched blocks; per block, as :func:`collect_block` gives it."""
    launched, plan = handle
    if plan is None:
        return [collect_block(launched[0])]
    model, shapes, static, outs = launched
    out = _gather(model, outs, static)
    res = []
    for i, shape in enumerate(shapes):
        a, n = i * plan.block_points, int(np.prod(shape, dtype=np.int64))
        res.append({k: v[a : a + n].reshape(shape + v.shape[1:]) for k, v in out.items()})
    return res


# ------------------------------------------------------------------ refined sweeps


def launch_points(spec: SweepSpec, params: dict[str, np.ndarray]):
    """Start evaluating a batch of arbitrary points (the model's parameter names ->
    flat float64 arrays, padded by the caller to a fixed size so the kernel compiles
    once); returns a handle for :func:`collect_points`. A point's outputs do not depend
    on the batch it is in, its position there or the padding (every model's kernel is
    elementwise over points: tests/test_refine_pipeline.py checks it bit for bit)."""
    inputs = resolve_inputs(spec.model, spec.J, params)
    static = spec.decl.kernel.static(spec)
    return spec.model, static, _launch(spec.model, spec.J, inputs, static)


def collect_points(handle, n: int) -> dict[str, np.ndarray]:
    """Wait for a launched batch; its first ``n`` points' outputs (``(n, extra...)``)."""
    model, static, outs = handle
    return {k: v[:n] for k, v in _gather(model, outs, static).items()}


def classifier(spec: SweepSpec, var: str, size: int):
    """``classify(points) -> codes`` of output ``var`` at arbitrary parameter values
    (swept axis names -> float arrays of one length; fixed values from ``spec``), by
    the model's kernel in padded calls of ``size`` points: what boundary bisection
    (:func:`pipeline.refine.bisect_boundaries`) asks at each step."""

    def classify(points: dict[str, np.ndarray]) -> np.ndarray:
        n = len(next(iter(points.values())))
        out = []
        for a in range(0, n, size):
            b = min(n, a + size)
            p = {}
            for name, v in points.items():
                v = np.asarray(v[a:b], dtype=np.float64)
                p[spec.canonical_name(name)] = np.pad(v, (0, size - (b - a)), mode="edge")
            for k, v in spec.fixed.items():
                p[spec.canonical_name(k)] = np.full(size, v, dtype=np.float64)
            out.append(collect_points(launch_points(spec, p), b - a)[var])
        return np.concatenate(out) if out else np.zeros((0,))

    return classify
