r"""J-sector models: ``modes`` (JDE section 3) and ``coordination`` (WP section 5).

MODEL.md sections 3 and 4. ``J >= 2`` goods; South's relative productivity in ``j`` is
``r_j = lam_jS / lam_jN``; a full cluster (coordination) multiplies productivity by
``theta_j > 1``; North is clustered everywhere, so ``p_j = 1 / (theta_j lam_jN)``.

``modes``: each good has a backward technology (``lam_ji``) and a modern one
(``lam_ji (beta + alpha min(Lbar_j, L_jiM))``, ``0 < beta < 1``), so
``theta_j = beta + alpha Lbar_j`` and South's scale-limited gain is
``theta_jS = beta + alpha min(Lbar_j, L_S)``. ``coordination`` is its reduced form:
``theta_jS = theta_j`` and no mixed equilibria.

=======  ==========================================  =================================================  ========================
label    equilibrium                                 exists iff                                         wage
=======  ==========================================  =================================================  ========================
``Cj``   all labour in ``j``, cluster                ``theta_jS > 1`` and ``r_k/theta_k <= w_Cj``       ``w_Cj = r_j theta_jS / theta_j``
                                                     for all ``k != j``
``Bj``   all labour in ``j``, no cluster             ``r_k/theta_k <= r_j/theta_j`` for all ``k != j``  ``r_j / theta_j``
``Mj``   all in ``j``, ``L_jM = (1 - beta)/alpha``   ``Bj`` exists and ``(1-beta)/alpha < min(L_S,     ``r_j / theta_j``
         (``modes`` only)                            Lbar_j)``
=======  ==========================================  =================================================  ========================

``Cj`` and ``Bj`` are stable where every inequality holds strictly; ``Mj`` never is.
Equalities (relative 1e-12) set ``knife_edge``: a tie ``r_j/theta_j = r_k/theta_k``
means a continuum of equilibria spread over ``j`` and ``k``, which is not counted.

Claims of MODEL.md section 3 (``claim`` labels ``1``..``5``), checked where
``r_j`` and ``r_j/theta_j`` are strictly decreasing in ``j``, ``theta_jS = theta_j``
for all ``j`` (``L_S >= max Lbar_j``) and the point is not knife-edge:

1. ``B1`` and ``C1`` exist and no ``Bj`` with ``j > 1`` does;
2. ``Ck`` (``k > 1``) exists iff ``r_1 / r_k <= theta_1``;
3. ``C1`` has the highest wage, ``B1`` the lowest, existing ``Ck`` wages fall with ``k``;
4. ``w_Ck = r_k`` whatever ``theta_k`` (to 1e-12 relative);
5. where ``Ck`` does not exist, ``w_Ck < w_B1``.
"""

from __future__ import annotations

import jax.numpy as jnp

from ._common import KNIFE_TOL, barrier, claim_code, near, ratio, summarise

CLAIMS = ("1", "2", "3", "4", "5")
CLAIM_TEXT = {
    "1": "B1 and C1 exist; no Bj with j > 1 exists",
    "2": "Ck (k > 1) exists iff r_1/r_k <= theta_1",
    "3": "C1 is the best equilibrium, B1 the worst; existing Ck wages fall with k",
    "4": "the wage of Ck (= r_k) does not depend on theta_k",
    "5": "where Ck does not exist, w_Ck < w_B1",
}


def labels(J: int, mixed: bool = False) -> list[str]:
    """Equilibrium labels in cube order: ``C1..CJ, B1..BJ`` (then ``M1..MJ``)."""
    out = [f"C{j}" for j in range(1, J + 1)] + [f"B{j}" for j in range(1, J + 1)]
    if mixed:
        out += [f"M{j}" for j in range(1, J + 1)]
    return out


def corners(b, w_C, C_ok):
    """Existence of the complete-specialization equilibria given unit-cost ratios.

    ``b[k]`` is what South's wage would have to be to break even in sector ``k``
    without a cluster (``r_k / theta_k``; dynamic model: ``r_k a_hat_k / theta_k``),
    ``w_C[j]`` the wage if all labour clusters in ``j`` and ``C_ok[j]`` whether a
    cluster in ``j`` is feasible at all. Shared by the static and dynamic models.

    Returns ``(C_exists, C_strict, B_exists, B_strict, knife)`` with ``knife`` true
    when any defining comparison holds with equality.
    """
    J = b.shape[0]
    other = ~jnp.eye(J, dtype=bool)  # [j, k]: k != j
    bk = b[None, :]
    C_exists = C_ok & jnp.all(jnp.where(other, bk <= w_C[:, None], True), axis=1)
    C_strict = jnp.all(jnp.where(other, bk < w_C[:, None], True), axis=1)
    B_exists = jnp.all(jnp.where(other, bk <= b[:, None], True), axis=1)
    B_strict = jnp.all(jnp.where(other, bk < b[:, None], True), axis=1)
    ties = jnp.any(other & near(bk, w_C[:, None])) | jnp.any(other & near(bk, b[:, None]))
    return C_exists, C_strict, B_exists, B_strict, ties


def _claims(r, theta, theta_S, out, w_C, knife):
    J = r.shape[0]
    b = ratio(r, theta)
    decreasing = jnp.all(r[:-1] > r[1:]) & jnp.all(b[:-1] > b[1:])
    applicable = decreasing & jnp.all(theta_S == theta) & ~knife
    ex, wage = out["exists"], out["wage"]
    C_ex, B_ex = ex[:J], ex[J : 2 * J]
    c1 = B_ex[0] & C_ex[0] & ~jnp.any(B_ex[1:])
    c2 = jnp.all(C_ex[1:] == (ratio(r[0], r[1:]) <= theta[0]))
    w_max, w_min = jnp.nanmax(wage), jnp.nanmin(wage)
    wC = wage[:J]
    # existing Ck wages strictly fall with k: compare each existing pair k < m
    km = jnp.triu(jnp.ones((J, J), dtype=bool), 1) & C_ex[:, None] & C_ex[None, :]
    falls = jnp.all(jnp.where(km, wC[:, None] > wC[None, :], True))
    c3 = (wage[0] == w_max) & (wage[J] == w_min) & falls
    c4 = jnp.all(jnp.abs(ratio(w_C, r) - 1.0) <= KNIFE_TOL)
    c5 = jnp.all(jnp.where(C_ex, True, w_C < b[0]))
    return jnp.stack([claim_code(c, applicable) for c in (c1, c2, c3, c4, c5)])


def _static(r, theta, theta_S):
    b = ratio(r, theta)
    # r_j (theta_jS / theta_j): exactly r_j when scale does not bind (claim 4, and equal
    # wages rank as ties), where (r_j theta_jS) / theta_j can land an ulp away
    w_C = barrier(r * ratio(theta_S, theta))
    edge_C_ok = near(theta_S, jnp.ones_like(theta_S))
    C_ex, C_st, B_ex, B_st, knife = corners(b, w_C, theta_S > 1.0)
    C_st = C_ex & C_st & ~edge_C_ok
    return b, w_C, C_ex, C_st, B_ex, B_ex & B_st, knife | jnp.any(edge_C_ok)


def coordination(r, theta):
    """Equilibria of ``coordination`` at one point: ``r, theta`` are float64[J]."""
    b, w_C, C_ex, C_st, B_ex, B_st, knife = _static(r, theta, theta)
    out = summarise(
        jnp.concatenate([C_ex, B_ex]), jnp.concatenate([C_st, B_st]), jnp.concatenate([w_C, b])
    )
    out["knife_edge"] = knife
    out["claims"] = _claims(r, theta, theta, out, w_C, knife)
    return out


def modes(r, theta, theta_S, Lbar, beta, alpha, L_S):
    """Equilibria of ``modes`` at one point.

    ``r, theta, theta_S, Lbar`` are float64[J] with ``theta_j = beta + alpha Lbar_j``
    and ``theta_jS = beta + alpha min(Lbar_j, L_S)`` (``= theta_j`` when
    ``L_S >= Lbar_j``); ``beta`` in (0, 1), ``alpha > 0`` and ``L_S > 0`` (``inf``:
    scale never binds) are scalars. The products-plus-sums are computed by the caller
    (:func:`pipeline.kernels.resolve_inputs`, numpy): XLA on CPU contracts
    ``beta + alpha * L`` into a fused multiply-add, which differs from plain numpy in
    the last bit, and an optimization barrier does not prevent it.
    """
    b, w_C, C_ex, C_st, B_ex, B_st, knife = _static(r, theta, theta_S)
    L_M = ratio(1.0 - beta, alpha)
    cap = jnp.minimum(L_S, Lbar)
    M_ex = B_ex & (L_M < cap)
    knife = knife | jnp.any(B_ex & near(L_M, cap))
    out = summarise(
        jnp.concatenate([C_ex, B_ex, M_ex]),
        jnp.concatenate([C_st, B_st, jnp.zeros_like(M_ex)]),
        jnp.concatenate([w_C, b, b]),
    )
    out["knife_edge"] = knife
    out["claims"] = _claims(r, theta, theta_S, out, w_C, knife)
    return out
