r"""J-sector models: ``modes`` (JDE section 3) and ``coordination`` (WP section 5).

docs/models.md#modes and #coordination. ``J >= 2`` goods; South's relative
productivity in ``j`` is ``r_j = lam_jS / lam_jN``; a full cluster (coordination)
multiplies productivity by ``theta_j > 1``; North is clustered everywhere, so
``p_j = 1 / (theta_j lam_jN)``.

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
A tie ``r_j/theta_j = r_k/theta_k`` means a continuum of equilibria spread over ``j``
and ``k``: knife-edge, not counted.

Claims (``claim`` labels ``1``..``5``), checked where ``r_j`` and ``r_j/theta_j`` are
strictly decreasing in ``j``, ``theta_jS = theta_j`` for all ``j`` (``L_S >= max
Lbar_j``) and the point is not knife-edge (:func:`sector_claims`, shared with the
``asymmetric`` and ``dynamic`` models):

1. ``B1`` and ``C1`` exist and no ``Bj`` with ``j > 1`` does;
2. ``Ck`` (``k > 1``) exists iff ``r_1 / r_k <= theta_1``;
3. ``C1`` has the highest wage, ``B1`` the lowest, existing ``Ck`` wages fall with ``k``;
4. ``w_Ck = r_k`` whatever ``theta_k`` (to 1e-12 relative);
5. where ``Ck`` does not exist, ``w_Ck < w_B1``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ._spec import (
    ALPHA,
    KNIFE_TOL,
    LABOUR_FORCE,
    MAGNITUDE,
    PRODUCTIVITY,
    Claim,
    Margins,
    Model,
    Param,
    claim_code,
    need,
    need_relative_productivity,
    per_sector,
    relative_productivity,
)

#: the claims of JDE section 3 / WP section 5, checked by every sector model
SECTOR_CLAIMS = (
    Claim("1", "B1 and C1 exist; no Bj with j > 1 exists"),
    Claim("2", "Ck (k > 1) exists iff r_1/r_k <= theta_1"),
    Claim("3", "C1 is the best equilibrium, B1 the worst; existing Ck wages fall with k"),
    Claim("4", "the wage of Ck (= r_k) does not depend on theta_k"),
    Claim("5", "where Ck does not exist, w_Ck < w_B1"),
)

THETA = Param("theta_{j}", "gain from a full cluster in sector {j}", "\\theta_{{j}}", lo=1.0,
              hi=MAGNITUDE[1], example=2.0,
              hint=" (theta <= 1 means clustering loses productivity)")  # fmt: skip


def labels(J: int, mixed: bool = False) -> list[str]:
    """Equilibrium labels in cube order: ``C1..CJ, B1..BJ`` (then ``M1..MJ``)."""
    out = [f"C{j}" for j in range(1, J + 1)] + [f"B{j}" for j in range(1, J + 1)]
    if mixed:
        out += [f"M{j}" for j in range(1, J + 1)]
    return out


# ------------------------------------------------------------ the corner equilibria


def _names_static(j, k, scale):
    """Name and mathtext of ``Cj``'s condition against sector ``k``."""
    if scale:
        return (
            f"C{j}: r_{k}/theta_{k} = r_{j} theta_{j}S/theta_{j}",
            rf"$r_{{{k}}}/\theta_{{{k}}} = r_{{{j}}}\theta_{{{j}S}}/\theta_{{{j}}}$",
        )
    return f"C{j}: r_{k}/r_{j} = theta_{k}", rf"$r_{{{k}}}/r_{{{j}}} = \theta_{{{k}}}$"


def _names_tie(j, k):
    return (
        f"B{j}/B{k}: r_{j}/theta_{j} = r_{k}/theta_{k}",
        rf"$r_{{{j}}}/\theta_{{{j}}} = r_{{{k}}}/\theta_{{{k}}}$",
    )


def corners(m: Margins, b, w_C, J: int, *, C_ok=None, names_C=_names_static, names_B=_names_tie,
            scale: bool = False):  # fmt: skip
    """Add the conditions of ``C1..CJ`` and ``B1..BJ`` to ``m``.

    ``b[..., k]`` is what South's wage would have to be to break even in sector ``k``
    without a cluster (``r_k / theta_k``; dynamic model: ``r_k a_hat_k / theta_k``),
    ``w_C[..., j]`` the wage if all labour clusters in ``j``, and ``C_ok[..., j]``
    (optional) South's own gain ``theta_jS``, which must exceed 1 for ``Cj``.
    ``Cj``: ``b_k <= w_Cj`` for all ``k != j``; ``Bj``: ``b_k <= b_j`` for all ``k != j``.
    Shared by every sector model (static and dynamic).
    """
    for j in range(J):
        if C_ok is not None:
            m.add(f"C{j + 1}", C_ok[..., j], ">", 1.0, f"C{j + 1}: theta_{j + 1}S = 1",
                  rf"$\theta_{{{j + 1}S}} = 1$")  # fmt: skip
        for k in range(J):
            if k != j:
                m.add(f"C{j + 1}", b[..., k], "<=", w_C[..., j], *names_C(j + 1, k + 1, scale))
    for j in range(J):
        for k in range(J):
            if k != j:  # the tie b_j = b_k is one curve: drawn once, from the lower j
                m.add(f"B{j + 1}", b[..., k], "<=", b[..., j], *names_B(min(j, k) + 1,
                      max(j, k) + 1), boundary=k > j)  # fmt: skip
    return m


def sector_claims(ops, r, b, w_C, out, applicable, star):
    """Claims 1-5 (module docstring) as int8[5] codes at one point.

    ``r``: float[J]; ``b``: break-even wages ``b_k`` as in :func:`corners`; ``w_C``:
    the ``Ck`` wages; ``out``: the classified point; ``applicable``: the claims'
    assumptions hold here; ``star[k - 2]``: claim 2's condition for ``Ck``, ``k > 1``.
    """
    xp = ops.xp
    J = r.shape[-1]
    ex, wage = out["exists"], out["wage"]
    C_ex, B_ex = ex[:J], ex[J : 2 * J]
    c1 = B_ex[0] & C_ex[0] & ~xp.any(B_ex[1:])
    c2 = xp.all(C_ex[1:] == star)
    w_max, w_min = xp.nanmax(wage), xp.nanmin(wage)
    wC = wage[:J]
    # existing Ck wages strictly fall with k: compare each existing pair k < m
    km = xp.triu(xp.ones((J, J), dtype=bool), 1) & C_ex[:, None] & C_ex[None, :]
    falls = xp.all(xp.where(km, wC[:, None] > wC[None, :], True))
    c3 = (wage[0] == w_max) & (wage[J] == w_min) & falls
    c4 = xp.all(xp.abs(ops.ratio(w_C, r) - 1.0) <= KNIFE_TOL)
    c5 = xp.all(xp.where(C_ex, True, w_C < b[0]))
    return [claim_code(ops, c, applicable) for c in (c1, c2, c3, c4, c5)]


def decreasing(ops, *vs):
    """Every vector strictly decreasing in ``j`` (the papers' ordering assumptions)."""
    xp = ops.xp
    out = True
    for v in vs:
        out = out & xp.all(v[:-1] > v[1:])
    return out


# -------------------------------------------------------------------- the models


def _static(ops, r, theta, theta_S, scale):
    """``b = r / theta``, ``w_C = r theta_S / theta`` and the corner conditions."""
    b = ops.ratio(r, theta)
    # r_j (theta_jS / theta_j): exactly r_j when scale does not bind (claim 4, and equal
    # wages rank as ties), where (r_j theta_jS) / theta_j can land an ulp away
    w_C = ops.barrier(r * ops.ratio(theta_S, theta))
    m = corners(Margins(ops), b, w_C, r.shape[-1], C_ok=theta_S, scale=scale)
    return b, w_C, m


def _binds(ops, theta_S, theta) -> bool:
    """Does South's scale bind anywhere (numpy only; names the boundaries)?"""
    return bool(ops.concrete and np.any(np.abs(theta_S / theta - 1) > 1e-12))


def coordination_economy(ops, r, theta, **_):
    """Conditions and wages of ``coordination`` at one point: ``r, theta`` float64[J]."""
    b, w_C, m = _static(ops, r, theta, theta, scale=False)
    wage = ops.xp.concatenate([w_C, b], axis=-1)
    return {"margins": m, "wage": wage, "aux": {"b": b, "w_C": w_C}}


def coordination_claims(ops, inp, out, aux):
    r, theta = inp["r"], inp["theta"]
    b = aux["b"]
    applicable = decreasing(ops, r, b) & ~out["knife_edge"]
    star = ops.ratio(r[0], r[1:]) <= theta[0]
    return ops.xp.stack(sector_claims(ops, r, b, aux["w_C"], out, applicable, star))


def modes_economy(ops, r, theta, theta_S, Lbar, beta, alpha, L_S, **_):
    """Conditions and wages of ``modes`` at one point.

    ``r, theta, theta_S, Lbar``: float64[J] with ``theta_j = beta + alpha Lbar_j`` and
    ``theta_jS = beta + alpha min(Lbar_j, L_S)`` (``= theta_j`` when ``L_S >= Lbar_j``);
    ``beta`` in (0, 1), ``alpha > 0`` and ``L_S > 0`` (``inf``: scale never binds).
    The products-plus-sums are computed by :func:`modes_inputs` (numpy): XLA on CPU
    contracts ``beta + alpha * L`` into a fused multiply-add, which differs from
    plain numpy in the last bit, and an optimization barrier does not prevent it.
    """
    xp = ops.xp
    J = r.shape[-1]
    b, w_C, m = _static(ops, r, theta, theta_S, scale=_binds(ops, theta_S, theta))
    L_M = ops.ratio(1.0 - beta, alpha)
    cap = xp.minimum(L_S[..., None], Lbar)  # L_S: one per point
    for j in range(J):  # Mj: Bj's conditions and the mixed-technology labour fits
        n0 = len(m)
        for i in range(n0):
            if m.eq[i] == f"B{j + 1}":
                m.add(f"M{j + 1}", m.lhs[i], m.op[i], m.rhs[i], m.name[i], m.label[i],
                      boundary=False)  # fmt: skip
        m.add(f"M{j + 1}", L_M, "<", cap[..., j],
              f"M{j + 1}: (1 - beta)/alpha = min(L_S, Lbar_{j + 1})",
              rf"$(1-\beta)/\alpha = \min(L_S, \bar L_{{{j + 1}}})$")  # fmt: skip
    wage = xp.concatenate([w_C, b, b], axis=-1)
    return {"margins": m, "wage": wage, "aux": {"b": b, "w_C": w_C}}


def modes_claims(ops, inp, out, aux):
    r, theta = inp["r"], inp["theta"]
    b = aux["b"]
    applicable = decreasing(ops, r, b) & ops.xp.all(inp["theta_S"] == theta) & ~out["knife_edge"]
    star = ops.ratio(r[0], r[1:]) <= theta[0]
    return ops.xp.stack(sector_claims(ops, r, b, aux["w_C"], out, applicable, star))


def coordination(r, theta):
    """The ``coordination`` kernel at one point (JAX): ``r, theta`` float64[J]."""
    from ._spec import point_kernel

    return point_kernel(COORDINATION, len(r), r=r, theta=theta)


def modes(r, theta, theta_S, Lbar, beta, alpha, L_S):
    """The ``modes`` kernel at one point (JAX); see :func:`modes_economy`."""
    from ._spec import point_kernel

    return point_kernel(MODES, len(r), r=r, theta=theta, theta_S=theta_S, Lbar=Lbar,
                        beta=beta, alpha=alpha, L_S=L_S)  # fmt: skip


def coordination_inputs(p: dict[str, np.ndarray], J: int) -> dict[str, np.ndarray]:
    """``r`` and ``theta`` float64[N, J]."""
    return {"r": relative_productivity(p, J), "theta": per_sector(p, "theta_{j}", J)}


def modes_inputs(p: dict[str, np.ndarray], J: int) -> dict[str, np.ndarray]:
    """``theta_j = beta + alpha Lbar_j`` or ``Lbar_j = (theta_j - beta)/alpha``, whichever
    was not given; ``theta_jS = beta + alpha min(L_S, Lbar_j)``; ``L_S`` defaults to inf."""
    n = len(next(iter(p.values())))
    beta, alpha = p["beta"], p["alpha"]
    theta, Lbar = np.empty((n, J)), np.empty((n, J))
    for j in range(J):  # each sector gives theta_j or Lbar_j; derive the other
        if f"Lbar_{j + 1}" in p:
            Lbar[:, j] = p[f"Lbar_{j + 1}"]
            theta[:, j] = beta + alpha * Lbar[:, j]
        else:
            theta[:, j] = p[f"theta_{j + 1}"]
            Lbar[:, j] = (theta[:, j] - beta) / alpha
    L_S = p.get("L_S", np.full(n, np.inf))
    theta_S = np.where(
        L_S[:, None] >= Lbar,
        theta,
        beta[:, None] + alpha[:, None] * np.minimum(L_S[:, None], Lbar),
    )
    return {
        "r": relative_productivity(p, J),
        "theta": theta,
        "theta_S": theta_S,
        "Lbar": Lbar,
        "beta": beta,
        "alpha": alpha,
        "L_S": L_S,
    }


def coordination_requires(given: set[str], J: int) -> list[tuple[str, str]]:
    out = need_relative_productivity(given, J)
    for j in range(1, J + 1):
        if f"theta_{j}" not in given:
            out.append(
                need(f"theta_{j}", f"give theta_{j} > 1 (gain from a cluster in sector {j})")
            )
    return out


def modes_requires(given: set[str], J: int) -> list[tuple[str, str]]:
    out = need_relative_productivity(given, J)
    for s, what in (("beta", "productivity of the modern technology with no cluster"),
                    ("alpha", "strength of the clustering externality")):  # fmt: skip
        if s not in given:
            out.append(need(s, f"give {s} ({what})"))
    for j in range(1, J + 1):
        t, lb = f"theta_{j}" in given, f"Lbar_{j}" in given
        if t and lb:
            out.append((f"params.theta_{j}", f"give theta_{j} or Lbar_{j}, not both"))
        elif not (t or lb):
            out.append(
                need(
                    f"theta_{j}", f"give theta_{j} > 1 or Lbar_{j} (theta_j = beta + alpha Lbar_j)"
                )
            )
    return out


def modes_check(corner_values, given: set[str], J: int) -> list[tuple[str, str]]:
    """``theta_j = beta + alpha Lbar_j > 1`` over the whole grid (monotone in each input,
    so its extremes sit at the grid's corners)."""
    out = []
    for j in range(1, J + 1):
        if f"Lbar_{j}" in given:
            v = corner_values(["beta", "alpha", f"Lbar_{j}"])
            theta = v["beta"] + v["alpha"] * v[f"Lbar_{j}"]
            if np.any(theta <= 1):
                out.append(
                    (
                        f"params.Lbar_{j}",
                        f"theta_{j} = beta + alpha Lbar_{j} must be > 1; it is {theta.min():g} "
                        f"at the grid's corner. Raise alpha or Lbar_{j}",
                    )
                )
    return out


COORDINATION = Model(
    name="coordination",
    title="coordination failures with J sectors",
    source="WP section 5",
    anchor="coordination",
    params=PRODUCTIVITY + (THETA,),
    labels=labels,
    claims_list=SECTOR_CLAIMS,
    inputs=coordination_inputs,
    requires=coordination_requires,
    economy=coordination_economy,
    claims=coordination_claims,
    rate=2e6,
    compile_s=2.5,  # cold, 2-core VM: issue 20 measured 2.9 s
    expects="{r_j} and {theta_j}",
)

MODES = Model(
    name="modes",
    title="externalities tied to the mode of production",
    source="JDE section 3",
    anchor="modes",
    params=PRODUCTIVITY
    + (
        THETA,
        Param(
            "Lbar_{j}",
            "labour at which the cluster in sector {j} is complete",
            "\\bar L_{{j}}",
            lo=0.0,
            floor=MAGNITUDE[0],
            hi=MAGNITUDE[1],
            example=6.0,
        ),
        Param(
            "beta",
            "productivity of the modern technology with no cluster",
            "\\beta",
            lo=0.0,
            floor=MAGNITUDE[0],
            hi=1.0,
            hi_open=True,
            example=0.5,
        ),
        dataclasses.replace(ALPHA, example=0.25),
        LABOUR_FORCE,
    ),  # fmt: skip
    labels=lambda J: labels(J, mixed=True),
    claims_list=SECTOR_CLAIMS,
    inputs=modes_inputs,
    requires=modes_requires,
    check=modes_check,
    economy=modes_economy,
    claims=modes_claims,
    rate=1.2e6,
    compile_s=5.5,  # cold, 2-core VM: issue 20 measured 5.8-6.0 s
    expects="{r_j}, beta, alpha and {theta_j} (or Lbar_j); optional L_S",
)
