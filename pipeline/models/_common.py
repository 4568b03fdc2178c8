"""Pieces shared by the models: knife-edge test, ratios XLA must not rewrite,
and the per-point summary (rank, counts, regime, best/worst) of MODEL.md section 6.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

#: Relative tolerance of MODEL.md section 1: a condition holding within it is knife-edge.
KNIFE_TOL = 1e-12

#: Code stored in ``claims`` where a claim's assumptions do not hold (read back as missing).
CLAIM_NA = -1


def barrier(x):
    """Pin an intermediate value so XLA cannot fuse it into the next operation.

    XLA's algebraic simplifier may rewrite ``(a / b) / c`` as ``a / (b * c)``, which
    moves the result by an ulp and can flip a comparison at a near-tie; the kernels
    must agree exactly with a plain numpy evaluation of the same expressions.
    """
    return jax.lax.optimization_barrier(x)


def ratio(a, b):
    """``a / b`` computed as written (see :func:`barrier`)."""
    return barrier(a / b)


def near(lhs, rhs):
    """Knife-edge test ``|lhs / rhs - 1| <= 1e-12`` (``True`` also when both are 0)."""
    q = ratio(lhs, rhs)
    both_zero = (lhs == 0) & (rhs == 0)
    return both_zero | (jnp.abs(q - 1.0) <= KNIFE_TOL)


def summarise(exists, stable, wage):
    """Per-point summary of a vector of candidate equilibria.

    Parameters
    ----------
    exists, stable : bool[E]
    wage : float[E]
        Candidate wages (finite even where the equilibrium does not exist).

    Returns a dict with ``wage`` (NaN where absent), ``rank`` (1 = highest wage among
    existing, ties share the smaller rank, 0 where absent), ``n_equilibria``,
    ``n_stable``, ``regime`` (bitmask: bit ``i`` set when label ``i`` is stable),
    ``best`` / ``worst`` (label index of the highest / lowest wage; the first label
    in order on ties; -1 when nothing exists).
    """
    wage = jnp.where(exists, wage, jnp.nan)
    higher = exists[None, :] & (wage[None, :] > wage[:, None])  # [i, j]: j beats i
    rank = jnp.where(exists, 1 + jnp.sum(higher, axis=1), 0).astype(jnp.int8)
    n_eq = jnp.sum(exists).astype(jnp.int8)
    n_st = jnp.sum(stable).astype(jnp.int8)
    bits = jnp.left_shift(jnp.int32(1), jnp.arange(exists.shape[0], dtype=jnp.int32))
    regime = jnp.sum(jnp.where(stable, bits, 0)).astype(jnp.int32)
    any_eq = n_eq > 0
    best = jnp.where(any_eq, jnp.argmax(jnp.where(exists, wage, -jnp.inf)), -1)
    worst = jnp.where(any_eq, jnp.argmin(jnp.where(exists, wage, jnp.inf)), -1)
    return {
        "exists": exists,
        "stable": stable,
        "wage": wage,
        "rank": rank,
        "n_equilibria": n_eq,
        "n_stable": n_st,
        "regime": regime,
        "best": best.astype(jnp.int8),
        "worst": worst.astype(jnp.int8),
    }


def claim_code(holds, applicable):
    """int8 claim outcome: 1 held, 0 failed, ``CLAIM_NA`` where not applicable."""
    return jnp.where(applicable, holds.astype(jnp.int8), jnp.int8(CLAIM_NA)).astype(jnp.int8)


def regime_name(code: int, labels: list[str]) -> str:
    """Human name of a regime bitmask, e.g. ``"B1+C1+C2"`` (sorted), ``"none"`` if empty."""
    names = sorted(lab for i, lab in enumerate(labels) if code >> i & 1)
    return "+".join(names) if names else "none"
