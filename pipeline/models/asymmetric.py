r"""Model ``asymmetric`` (JDE footnote 11; docs/models.md#asymmetric): South's
clustering gains differ from North's.

JDE footnote 11 notes that the paper's policy conclusion rests on the gains from
clustering being the same in North and South, and that "if such gains were somehow
stronger in South, then cluster promotion against natural comparative advantage could
make sense". This model drops that assumption from ``coordination``: North's gain
``theta_jN > 1`` sets the world price ``p_j = 1/(theta_jN lam_jN)``; South's own gain
from coordinating in ``j`` is ``theta_jS > 0``, above or below ``theta_jN``.

=======  ===============================  ===========================================  =============================
label    equilibrium                      exists iff                                   wage
=======  ===============================  ===========================================  =============================
``Cj``   all labour in ``j``, coordinated ``theta_jS > 1`` and ``r_k/theta_kN <= w_Cj``  ``w_Cj = r_j theta_jS/theta_jN``
                                          for all ``k != j``
``Bj``   all labour in ``j``, not         ``r_k/theta_kN <= r_j/theta_jN``, all          ``r_j / theta_jN``
         coordinated                      ``k != j``
=======  ===============================  ===========================================  =============================

With ``theta_jS = theta_jN`` for every ``j`` it is ``coordination``, point for point
(the same arithmetic: :func:`pipeline.models.sectors.corners`). Under the ordering
assumptions (``r_j`` and ``r_j/theta_jN`` strictly decreasing in ``j``), ``Ck`` exists
iff ``r_1/r_k <= theta_1N theta_kS/theta_kN``, and ``Ck`` pays more than ``C1`` iff
``theta_kS/theta_kN > (r_1/r_k)(theta_1S/theta_1N)``.

Claims: the five claims of the sector models, word for word (claim 2 reads
``r_1/r_k <= theta_1N``), checked where the ordering assumptions hold, every
``theta_jS > 1`` and the point is not knife-edge. Claims 1 and 5 hold wherever they
are checked; 2, 3 and 4 can fail only where some ``theta_kS != theta_kN``, and the cube
shows where they do.
"""

from __future__ import annotations

import numpy as np

from ._spec import (
    MAGNITUDE,
    PRODUCTIVITY,
    Margins,
    Model,
    Param,
    need,
    need_relative_productivity,
    per_sector,
    relative_productivity,
)
from .sectors import SECTOR_CLAIMS, corners, decreasing, labels, sector_claims


def _names_C(j, k, scale):
    return (
        f"C{j}: r_{k}/theta_{k}N = r_{j} theta_{j}S/theta_{j}N",
        rf"$r_{{{k}}}/\theta_{{{k}N}} = r_{{{j}}}\theta_{{{j}S}}/\theta_{{{j}N}}$",
    )


def _names_B(j, k):
    return (
        f"B{j}/B{k}: r_{j}/theta_{j}N = r_{k}/theta_{k}N",
        rf"$r_{{{j}}}/\theta_{{{j}N}} = r_{{{k}}}/\theta_{{{k}N}}$",
    )


def economy(ops, r, theta_N, theta_S, **_):
    """Conditions and wages at one point: ``r, theta_N, theta_S`` float64[J]."""
    b = ops.ratio(r, theta_N)
    w_C = ops.barrier(r * ops.ratio(theta_S, theta_N))  # exactly r_j where theta_jS = theta_jN
    m = corners(Margins(ops), b, w_C, r.shape[-1], C_ok=theta_S, names_C=_names_C,
                names_B=_names_B)  # fmt: skip
    for k in range(1, r.shape[-1]):  # where a cluster in k pays as much as one in 1
        K = k + 1
        m.add(None, w_C[..., k], ">=", w_C[..., 0],
              f"C{K} pays as C1: theta_{K}S/theta_{K}N = (r_1/r_{K}) theta_1S/theta_1N",
              rf"$w_{{C{K}}} = w_{{C1}}$: $\theta_{{{K}S}}/\theta_{{{K}N}} = "
              rf"(r_1/r_{{{K}}})\,\theta_{{1S}}/\theta_{{1N}}$")  # fmt: skip
    wage = ops.xp.concatenate([w_C, b], axis=-1)
    return {"margins": m, "wage": wage, "aux": {"b": b, "w_C": w_C}}


def claims(ops, inp, out, aux):
    r, theta_N, theta_S = inp["r"], inp["theta_N"], inp["theta_S"]
    b = aux["b"]
    applicable = decreasing(ops, r, b) & ops.xp.all(theta_S > 1.0) & ~out["knife_edge"]
    star = ops.ratio(r[0], r[1:]) <= theta_N[0]  # claim 2 as the paper states it
    return ops.xp.stack(sector_claims(ops, r, b, aux["w_C"], out, applicable, star))


def inputs(p: dict[str, np.ndarray], J: int) -> dict[str, np.ndarray]:
    """``r``, ``theta_N``, ``theta_S`` float64[N, J]."""
    return {
        "r": relative_productivity(p, J),
        "theta_N": per_sector(p, "theta_{j}N", J),
        "theta_S": per_sector(p, "theta_{j}S", J),
    }


def requires(given: set[str], J: int) -> list[tuple[str, str]]:
    out = need_relative_productivity(given, J)
    for j in range(1, J + 1):
        if f"theta_{j}N" not in given:
            out.append(need(f"theta_{j}N", f"give theta_{j}N > 1 (North's gain in sector {j}; "
                            f"alias theta_{j})"))  # fmt: skip
        if f"theta_{j}S" not in given:
            out.append(need(f"theta_{j}S", f"give theta_{j}S > 0 (South's gain in sector {j})"))
    return out


MODEL = Model(
    name="asymmetric",
    title="South's clustering gains differ from North's",
    source="JDE footnote 11",
    anchor="asymmetric",
    params=PRODUCTIVITY
    + (
        Param(
            "theta_{j}N",
            "North's gain from a full cluster in sector {j} (sets the price)",
            "\\theta_{{j}N}",
            lo=1.0,
            hi=MAGNITUDE[1],
            aliases=("theta_{j}",),
            example=2.0,
            hint=" (theta <= 1 means clustering loses productivity)",
        ),
        Param(
            "theta_{j}S",
            "South's gain from coordinating in sector {j}",
            "\\theta_{{j}S}",
            lo=0.0,
            floor=MAGNITUDE[0],
            hi=MAGNITUDE[1],
            example=2.0,
        ),
    ),  # fmt: skip
    labels=labels,
    claims_list=SECTOR_CLAIMS,
    inputs=inputs,
    requires=requires,
    economy=economy,
    claims=claims,
    rate=2e6,
    compile_s=3.5,  # cold, 2-core VM: issue 20 measured 3.2-4.5 s
    claims_note=(
        "claims 2, 3 and 4 of the symmetric model are expected to fail where some "
        "theta_kS != theta_kN: that is the point of JDE footnote 11 (docs/models.md#asymmetric)"
    ),
    expects="{r_j}, {theta_jN} and {theta_jS}",
)
