"""The one place where a batch is formed: config names -> kernel inputs, jit/vmap.

Each model is a pure function of one point (``pipeline.models``). Here it is
vmapped over a block and jitted once per ``(model, J, block size, static options)``
and process: every block of a sweep is padded to the same size, so a sweep compiles
each kernel exactly once per process (see :func:`trace_count`).
"""

from __future__ import annotations

from collections import Counter
from functools import cache

import numpy as np

from . import _jax  # noqa: F401  (float64 on before jax is used)
from .config import SweepSpec
from .grid import Plan, block_params

_TRACES: Counter = Counter()


def trace_count(model: str | None = None) -> int:
    """How many times a kernel was traced (= compiled) in this process."""
    return sum(_TRACES.values()) if model is None else _TRACES[model]


def model_module(model: str):
    """The module of :mod:`pipeline.models` that holds a model's equations."""
    from importlib import import_module

    name = {"modes": "sectors", "coordination": "sectors"}.get(model, model)
    return import_module(f"pipeline.models.{name}")


def labels(model: str, J: int) -> list[str]:
    """Equilibrium labels of a model, in cube order."""
    mod = model_module(model)
    return mod.labels(J, mixed=True) if model == "modes" else mod.labels(J)


def claims(model: str) -> tuple[tuple[str, ...], dict[str, str]]:
    """Claim labels and their statements for a model."""
    mod = model_module(model)
    return mod.CLAIMS, mod.CLAIM_TEXT


# ------------------------------------------------------------------ config -> inputs


def _r(p: dict[str, np.ndarray], j: int) -> np.ndarray:
    return p[f"r_{j}"] if f"r_{j}" in p else p[f"lam_{j}S"] / p[f"lam_{j}N"]


def _per_sector(p, base: str, J: int) -> np.ndarray:
    if base in p:
        return np.repeat(p[base][:, None], J, axis=1)
    return np.stack([p[f"{base}_{j}"] for j in range(1, J + 1)], axis=1)


def resolve_inputs(model: str, J: int, p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Map config parameters (flat arrays, one value per point) to kernel inputs.

    - ``r_j`` from ``r_j`` or ``lam_jS / lam_jN``;
    - ``standard``: ``theta`` from ``theta`` or ``1 + alpha Lbar``; South's gain
      ``theta_S = theta`` if ``L_S >= Lbar`` (or no ``L_S``) else ``1 + alpha L_S``
      (``alpha = (theta - 1)/Lbar`` when only ``theta`` and ``Lbar`` are given);
    - ``modes``: ``theta_j = beta + alpha Lbar_j`` or ``Lbar_j = (theta_j - beta)/alpha``,
      whichever was not given; ``L_S`` defaults to ``inf``.
    """
    n = len(next(iter(p.values())))
    inf = np.full(n, np.inf)
    if model == "standard":
        r1, r2 = _r(p, 1), _r(p, 2)
        if "theta" in p:
            theta = p["theta"]
            Lbar = p.get("Lbar")
            alpha = (
                p["alpha"] if "alpha" in p else ((theta - 1.0) / Lbar if Lbar is not None else None)
            )
            if Lbar is None and alpha is not None:
                Lbar = (theta - 1.0) / alpha
        else:
            alpha, Lbar = p["alpha"], p["Lbar"]
            theta = 1.0 + alpha * Lbar
        L_S = p.get("L_S", inf)
        if Lbar is None:  # no scale information: scale never binds
            theta_S = theta.copy()
        else:
            theta_S = np.where(L_S >= Lbar, theta, 1.0 + alpha * np.minimum(L_S, Lbar))
        return {"r_1": r1, "r_2": r2, "theta": theta, "theta_S": theta_S}
    r = np.stack([_r(p, j) for j in range(1, J + 1)], axis=1)
    if model == "coordination":
        return {"r": r, "theta": _per_sector(p, "theta", J)}
    if model == "modes":
        beta, alpha = p["beta"], p["alpha"]
        theta, Lbar = np.empty((n, J)), np.empty((n, J))
        for j in range(J):  # each sector gives theta_j or Lbar_j; derive the other
            if f"Lbar_{j + 1}" in p:
                Lbar[:, j] = p[f"Lbar_{j + 1}"]
                theta[:, j] = beta + alpha * Lbar[:, j]
            else:
                theta[:, j] = p[f"theta_{j + 1}"]
                Lbar[:, j] = (theta[:, j] - beta) / alpha
        L_S = p.get("L_S", inf)
        theta_S = np.where(
            L_S[:, None] >= Lbar,
            theta,
            beta[:, None] + alpha[:, None] * np.minimum(L_S[:, None], Lbar),
        )
        return {
            "r": r,
            "theta": theta,
            "theta_S": theta_S,
            "Lbar": Lbar,
            "beta": beta,
            "alpha": alpha,
            "L_S": L_S,
        }
    if model == "dynamic":
        return {
            "r": r,
            "theta": _per_sector(p, "theta", J),
            "g": _per_sector(p, "g", J),
            "eps": _per_sector(p, "eps", J),
            "rho": p["rho"],
            "Tc": p["Tc"],
        }
    raise ValueError(f"unknown model {model!r}")


# ----------------------------------------------------------------------- kernels


@cache
def batch_kernel(
    model: str,
    J: int,
    n: int,
    T: float = 0.0,
    n_time: int = 0,
    save_paths: bool = False,
):
    """The jitted batch function of a model for blocks of ``n`` points."""
    import jax

    mod = model_module(model)

    def counted(fn):
        def inner(*args, **kw):
            _TRACES[model] += 1
            return fn(*args, **kw)

        return inner

    if model == "standard":
        f = counted(
            lambda i: jax.vmap(mod.equilibria)(i["r_1"], i["r_2"], i["theta"], i["theta_S"])
        )
    elif model == "coordination":
        f = counted(lambda i: jax.vmap(mod.coordination)(i["r"], i["theta"]))
    elif model == "modes":
        f = counted(
            lambda i: jax.vmap(mod.modes)(
                i["r"], i["theta"], i["theta_S"], i["Lbar"], i["beta"], i["alpha"], i["L_S"]
            )
        )
    elif model == "dynamic":

        def dyn(i):
            out = dict(jax.vmap(mod.steady_state)(i["r"], i["theta"], i["g"], i["eps"]))
            out.update(
                mod.transition(
                    i["r"],
                    i["theta"],
                    i["g"],
                    i["eps"],
                    i["rho"],
                    i["Tc"],
                    T=T,
                    n_time=n_time,
                    save_paths=save_paths,
                    pad_paths=True,  # trimmed by a view, _trim
                )
            )
            return out

        f = counted(dyn)
    else:
        raise ValueError(f"unknown model {model!r}")
    return jax.jit(f)


def _trim(out, n_time: int = 0, **_) -> dict[str, np.ndarray]:
    """Outputs as numpy; saved paths cut to ``n_time`` times (a view: the kernel
    returns them as its loop wrote them, see ``transition(pad_paths=True)``)."""
    res = {k: np.asarray(v) for k, v in out.items()}
    for k in ("x_path", "wage_path"):
        if k in res:
            res[k] = res[k][..., :n_time]
    return res


#: Static models compute a block as slices of at most this many points, one jitted
#: call each: their kernels stream some thirty intermediate arrays through memory,
#: which at 2^16 points stay in cache (2-3x the points/s of one 2^20-point call,
#: benchmarks/RESULTS.md). The dynamic kernel's chunks are small already.
STATIC_SLICE = 1 << 16


def slicing(model: str, n: int) -> tuple[int, int]:
    """``(count, size)``: a block of ``n`` points is computed as ``count`` calls of
    the kernel compiled for ``size`` points (``count * size >= n``, padded)."""
    if model == "dynamic" or n <= STATIC_SLICE:
        return 1, n
    count = -(-n // STATIC_SLICE)
    return count, -(-n // count)


def _launch(model: str, J: int, inputs: dict[str, np.ndarray], static: dict):
    """Dispatch the kernel over ``inputs`` (padded to ``count * size`` points) in
    slices; JAX runs them asynchronously, :func:`_gather` waits."""
    n = len(next(iter(inputs.values())))
    count, size = slicing(model, n)
    fn = batch_kernel(model, J, size, **static)
    flat = {k: np.asarray(v, dtype=np.float64) for k, v in inputs.items()}
    if count * size > n:
        flat = {k: np.pad(v, [(0, count * size - n)] + [(0, 0)] * (v.ndim - 1), mode="edge")
                for k, v in flat.items()}  # fmt: skip
    return [fn({k: v[i * size : (i + 1) * size] for k, v in flat.items()}) for i in range(count)]


def _gather(outs: list, static: dict) -> dict[str, np.ndarray]:
    parts = [_trim(o, **static) for o in outs]
    if len(parts) == 1:
        return parts[0]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def run_kernel(
    model: str, J: int, inputs: dict[str, np.ndarray], **static
) -> dict[str, np.ndarray]:
    """Evaluate a model on flat inputs (any length; compiled per slice length)."""
    n = len(next(iter(inputs.values())))
    return {k: v[:n] for k, v in _gather(_launch(model, J, inputs, static), static).items()}


def _static(spec: SweepSpec) -> dict:
    if spec.model != "dynamic":
        return {}
    return {
        "T": float(spec.fixed["T"]),
        "n_time": int(spec.fixed["n_time"]),
        "save_paths": spec.save_paths,
    }


def launch_block(spec: SweepSpec, block: int, plan: Plan | None = None):
    """Start evaluating a block; returns a handle for :func:`collect_block`.

    JAX dispatches asynchronously, so the caller can write the previous block while
    this one computes.
    """
    plan = plan or Plan.of(spec)
    region = plan.region(block)
    shape = tuple(s.stop - s.start for s in region)
    params = block_params(spec, region, plan.block_points)
    inputs = resolve_inputs(spec.model, spec.J, params)
    static = _static(spec)
    return shape, static, _launch(spec.model, spec.J, inputs, static)


def collect_block(handle) -> dict[str, np.ndarray]:
    """Wait for a launched block; every output shaped ``region shape + extra dims``."""
    shape, static, outs = handle
    n = int(np.prod(shape, dtype=np.int64))
    return {k: v[:n].reshape(shape + v.shape[1:]) for k, v in _gather(outs, static).items()}


def compute_block(spec: SweepSpec, block: int, plan: Plan | None = None) -> dict[str, np.ndarray]:
    """Evaluate one block of a sweep: every output shaped ``region shape + extra dims``."""
    return collect_block(launch_block(spec, block, plan))
