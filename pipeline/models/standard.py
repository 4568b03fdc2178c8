r"""Model ``standard`` (JDE section 2; docs/models.md#standard): externalities tied to a sector.

Two goods. Good 1 has productivity ``lam_1i`` and no externality; good 2 has
productivity ``lam_2i (1 + alpha min(Lbar, L_2i))``, so a full cluster multiplies it
by ``theta = 1 + alpha Lbar > 1``. South's labour ``L_S`` caps its own gain at
``theta_S = 1 + alpha min(Lbar, L_S)`` (``= theta`` when ``L_S >= Lbar``). North is
clustered in good 2, so world prices are ``p_1 = 1/lam_1N``, ``p_2 = 1/(theta lam_2N)``.
With ``c = r_2 / r_1`` (``r_j = lam_jS / lam_jN``):

======  ============================================  ===========================  ======
label   equilibrium                                   exists iff                   wage
======  ============================================  ===========================  ======
``B1``  all labour in good 1                          ``c <= theta``               ``r_1``
``C2``  all labour in good 2, cluster realised        ``c theta_S / theta >= 1``   ``r_2 theta_S / theta``
``D``   diversified, ``1 + alpha L_2 = theta / c``    ``1 < theta / c < theta_S``  ``r_1``
======  ============================================  ===========================  ======

``B1`` and ``C2`` are stable where their condition holds strictly; ``D`` never is.

Claims (``claim`` labels ``P``, ``CA``), checked where ``theta_S = theta``
(``L_S >= Lbar``) and the point is not knife-edge:

- ``P``: multiple stable equilibria iff ``1 < c < theta`` (condition P, strict inside);
- ``CA``: the Mill test for protecting good 2 passes iff South has comparative
  advantage in it, ``c > 1`` (MODEL.md section 8.3: the Mill test for ``C2`` is
  ``tau_min[C2] = 0``, i.e. ``C2`` exists without protection; JDE section 2).

Kernel inputs (float64 per point): ``r_1, r_2 > 0``; ``theta > 1``; ``theta_S`` in
``(1, theta]``, South's scale-limited gain.
"""

from __future__ import annotations

import numpy as np

from ._spec import (
    ALPHA,
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
    relative_productivity,
)

LABELS = ("B1", "C2", "D")


def economy(ops, r_1, r_2, theta, theta_S):
    """Defining conditions and candidate wages at one point (or arrays of points)."""
    c = ops.ratio(r_2, r_1)
    theta_over_c = ops.ratio(theta, c)
    gain = ops.ratio(theta_S, theta)  # exactly 1 when scale does not bind
    c_gain = ops.barrier(c * gain)  # c theta_S / theta
    w_C2 = ops.barrier(r_2 * gain)
    m = Margins(ops)
    m.add("B1", c, "<=", theta, "B1: c = theta", r"$c = \theta$")
    m.add(
        "C2",
        c_gain,
        ">=",
        1.0,
        "C2: c theta_S/theta = 1",
        r"$c\,\theta_S/\theta = 1$",
        draw_where=theta_S < theta,
    )  # fmt: skip  (= the CA line where theta_S = theta)
    m.add("D", theta_over_c, ">", 1.0, boundary=False)  # the B1 line again
    m.add("D", theta_over_c, "<", theta_S, boundary=False)  # the C2 line again
    m.add(None, c, ">=", 1.0, "CA: c = r_2/r_1 = 1", r"$c = r_2/r_1 = 1$")  # Mill test
    wage = ops.xp.stack([r_1, w_C2, r_1], axis=-1)
    return {"margins": m, "wage": wage, "aux": {"c": c, "w_C2": w_C2}}


def equilibria(r_1, r_2, theta, theta_S):
    """The kernel at one point (JAX): every output of the cube for these inputs."""
    from ._spec import point_kernel

    return point_kernel(MODEL, 2, r_1=r_1, r_2=r_2, theta=theta, theta_S=theta_S)


def claims(ops, inp, out, aux):
    """Claims ``P`` and ``CA`` (module docstring) as int8 codes."""
    c, theta = aux["c"], inp["theta"]
    applicable = (inp["theta_S"] == theta) & ~out["knife_edge"]
    claim_p = (out["n_stable"] >= 2) == ((c > 1.0) & (c < theta))
    # the Mill test is C2's existence at world prices (tau_min[C2] = 0), against CA;
    # not a comparison of wages where both corners exist (w(C2) > w(B1) iff c > 1 is
    # arithmetic, r_2 > r_1, and cannot fail)
    claim_ca = out["exists"][1] == (c > 1.0)
    return ops.xp.stack(
        [claim_code(ops, claim_p, applicable), claim_code(ops, claim_ca, applicable)]
    )


def scale(theta=None, alpha=None, Lbar=None, L_S=None):
    """``(theta, alpha, Lbar, theta_S)`` as the model derives them from what is given
    (numpy arrays or floats): ``theta`` from ``theta`` or ``1 + alpha Lbar``; a missing
    ``alpha`` or ``Lbar`` from the other and ``theta`` (None when neither is given);
    ``theta_S = theta`` if ``L_S >= Lbar`` (or no scale given) else ``1 + alpha L_S``."""
    if theta is None:
        theta = 1.0 + alpha * Lbar
    elif alpha is None and Lbar is not None:
        alpha = (theta - 1.0) / Lbar
    elif Lbar is None and alpha is not None:
        Lbar = (theta - 1.0) / alpha
    if Lbar is None:  # no scale information: scale never binds
        theta_S = np.array(theta, copy=True)
    else:
        L_S = np.inf if L_S is None else L_S
        theta_S = np.where(L_S >= Lbar, theta, 1.0 + alpha * np.minimum(L_S, Lbar))
    return theta, alpha, Lbar, theta_S


def inputs(p: dict[str, np.ndarray], J: int = 2) -> dict[str, np.ndarray]:
    """Config values -> kernel inputs: ``r_j`` (or ``lam_jS / lam_jN``), ``theta`` and
    South's gain ``theta_S`` (:func:`scale`)."""
    r = relative_productivity(p, 2)
    theta, _, _, theta_S = scale(p.get("theta"), p.get("alpha"), p.get("Lbar"), p.get("L_S"))
    return {"r_1": r[:, 0], "r_2": r[:, 1], "theta": theta, "theta_S": theta_S}


def point_equilibria(r_1: float, r_2: float, theta: float, theta_S: float) -> dict:
    """Which equilibria exist at one point, as a sweep classifies them (the model's own
    :func:`economy`, classified by numpy): ``{"labels", "exists", "stable",
    "knife_edge"}`` (label -> bool for the two middle entries)."""
    from ._spec import NUMPY, evaluate

    inp = {
        k: np.float64(v) for k, v in dict(r_1=r_1, r_2=r_2, theta=theta, theta_S=theta_S).items()
    }
    out = evaluate(MODEL, NUMPY, LABELS, inp)
    return {
        "labels": list(LABELS),
        "exists": {lab: bool(v) for lab, v in zip(LABELS, np.asarray(out["exists"]))},
        "stable": {lab: bool(v) for lab, v in zip(LABELS, np.asarray(out["stable"]))},
        "knife_edge": bool(out["knife_edge"]),
    }


def ppf_point(p: dict[str, float]) -> dict[str, float | None]:
    """Parameters of the PPF (JDE Fig. 1) at one point of a cube (``p``: the point's
    parameter values by config name): ``r_j``, ``lam_jN``, ``theta``, ``alpha``,
    ``Lbar``, and a finite ``L_S`` to draw (``Lbar`` when scale never binds)."""
    one = {k: np.array([float(v)]) for k, v in p.items()}
    r = relative_productivity(one, 2)[0]
    out: dict[str, float | None] = {"r_1": float(r[0]), "r_2": float(r[1])}
    for j in (1, 2):
        out[f"lam_{j}N"] = float(p[f"lam_{j}N"]) if f"r_{j}" not in p else 1.0
    theta, alpha, Lbar, _ = scale(*(p.get(k) for k in ("theta", "alpha", "Lbar", "L_S")))
    L_S = float(p.get("L_S", np.inf))
    if not np.isfinite(L_S):  # scale never binds: draw a South that just completes it
        L_S = float(Lbar) if Lbar is not None else 1.0
    out.update(theta=float(theta), L_S=L_S, alpha=None if alpha is None else float(alpha),
               Lbar=None if Lbar is None else float(Lbar))  # fmt: skip
    return out


def requires(given: set[str], J: int) -> list[tuple[str, str]]:
    out = need_relative_productivity(given, 2)
    t, a, lb = "theta" in given, "alpha" in given, "Lbar" in given
    if t and a and lb:
        out.append(
            (
                "params.theta",
                "over-determined: give theta or alpha and Lbar (theta = 1 + alpha Lbar), "
                "not all three",
            )
        )
    elif not t and not (a and lb):
        out.append(need("theta", "give theta > 1, or alpha and Lbar"))
    if "L_S" in given and not lb and not (t and a):
        out.append(("params.L_S", "L_S needs the cluster size: give Lbar (or alpha)"))
    return out


def ppf(r_1, r_2, theta, L_S, alpha=None, Lbar=None, n: int = 201, lam_1N=1.0, lam_2N=1.0):
    """Production possibility frontier of JDE Fig. 1 (numpy, for figures).

    ``Q_1 = lam_1S (L_S - L_2)``, ``Q_2 = lam_2S (1 + alpha min(Lbar, L_2)) L_2`` for
    ``L_2`` in ``[0, L_S]``; also the frontier without externality (``alpha = 0``) and
    the world price ratio ``p_1/p_2 = theta lam_2N / lam_1N``. ``Lbar`` defaults to
    ``L_S`` and ``alpha`` to ``(theta - 1) / Lbar``.
    """
    Lbar = L_S if Lbar is None else Lbar
    alpha = (theta - 1.0) / Lbar if alpha is None else alpha
    lam_1S, lam_2S = r_1 * lam_1N, r_2 * lam_2N
    L2 = np.linspace(0.0, L_S, n)
    q1 = lam_1S * (L_S - L2)
    q2 = lam_2S * (1.0 + alpha * np.minimum(Lbar, L2)) * L2
    q2_lin = lam_2S * L2
    return {
        "L_2": L2,
        "Q_1": q1,
        "Q_2": q2,
        "Q_2_no_externality": q2_lin,
        "price_ratio": theta * lam_2N / lam_1N,
    }


def _plot_ppf(ds, at=None, ax=None):
    from ..figures import plot_ppf

    return plot_ppf(ds=ds, at=at, ax=ax)


MODEL = Model(
    name="standard",
    title="externalities tied to a sector",
    source="JDE section 2",
    anchor="standard",
    sectors=2,
    params=PRODUCTIVITY
    + (
        Param(
            "theta",
            "gain from a full cluster in good 2",
            "\\theta",
            lo=1.0,
            hi=MAGNITUDE[1],
            example=2.0,
            hint=" (theta <= 1 means clustering loses productivity)",
        ),
        ALPHA,
        Param(
            "Lbar",
            "labour at which the cluster is complete",
            "\\bar L",
            lo=0.0,
            floor=MAGNITUDE[0],
            hi=MAGNITUDE[1],
            example=2.0,
        ),
        LABOUR_FORCE,
    ),  # fmt: skip
    labels=lambda J=2: list(LABELS),
    claims_list=(
        Claim("P", "multiple stable equilibria iff 1 < c < theta (c = r_2/r_1)"),
        Claim("CA", "Mill test: C2 exists without protection iff c > 1 (CA)"),
    ),
    inputs=inputs,
    requires=requires,
    economy=economy,
    claims=claims,
    stable_capable=lambda lab: lab in ("B1", "C2"),
    figures=("phase", "welfare", "income-gap", "ppf"),
    plots={"ppf": _plot_ppf},
    income_gap="C2",
    expressions={"c": "r_2 / r_1"},
    rate=2.5e6,
    compile_s=3.0,  # cold, 2-core VM: issue 20 measured 2.7-4.3 s
    expects="r_1, r_2 and theta (or alpha and Lbar); optional L_S",
)
