r"""Model ``standard`` (JDE section 2; MODEL.md section 2): externalities tied to a sector.

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
A condition holding with equality (relative 1e-12) sets ``knife_edge``; there the
equilibrium still exists (weak inequality) but is not counted as stable.

Claims (``claim`` labels ``P``, ``CA``), checked where ``theta_S = theta``
(``L_S >= Lbar``) and the point is not knife-edge:

- ``P``: multiple stable equilibria iff ``1 < c < theta`` (condition P, strict inside);
- ``CA``: where both corners exist, ``C2`` pays more than ``B1`` iff ``c > 1`` (the
  Mill test for protecting good 2 passes iff South has comparative advantage in it).

Parameters (each a float64 scalar for one point):
``r_1, r_2 > 0`` relative productivities; ``theta > 1`` gain of a full cluster;
``theta_S`` in ``(1, theta]`` South's scale-limited gain.
"""

from __future__ import annotations

import jax.numpy as jnp

from ._common import barrier, claim_code, near, ratio, summarise

LABELS = ("B1", "C2", "D")
CLAIMS = ("P", "CA")
CLAIM_TEXT = {
    "P": "multiple stable equilibria iff 1 < c < theta (c = r_2/r_1)",
    "CA": "where B1 and C2 both exist, w(C2) > w(B1) iff c > 1 (Mill test iff CA)",
}
INPUTS = ("r_1", "r_2", "theta", "theta_S")


def labels(J: int = 2) -> list[str]:
    return list(LABELS)


def equilibria(r_1, r_2, theta, theta_S):
    """Equilibria of the standard model at one point (see the module docstring)."""
    c = ratio(r_2, r_1)
    theta_over_c = ratio(theta, c)
    gain = ratio(theta_S, theta)  # exactly 1 when scale does not bind
    c_gain = barrier(c * gain)  # c theta_S / theta
    w_C2 = barrier(r_2 * gain)

    b1 = c <= theta
    c2 = c_gain >= 1.0
    d = (theta_over_c > 1.0) & (theta_over_c < theta_S)
    edge_b1, edge_c2 = near(c, theta), near(c_gain, 1.0)
    knife = edge_b1 | edge_c2 | near(theta_over_c, 1.0) | near(theta_over_c, theta_S)

    exists = jnp.stack([b1, c2, d])
    stable = jnp.stack([(c < theta) & ~edge_b1, (c_gain > 1.0) & ~edge_c2, jnp.zeros_like(b1)])
    wage = jnp.stack([r_1, w_C2, r_1])
    out = summarise(exists, stable, wage)

    applicable = (theta_S == theta) & ~knife
    claim_p = (out["n_stable"] >= 2) == ((c > 1.0) & (c < theta))
    both = b1 & c2
    claim_ca = jnp.where(both, (w_C2 > r_1) == (c > 1.0), True)
    out["knife_edge"] = knife
    out["claims"] = jnp.stack(
        [claim_code(claim_p, applicable), claim_code(claim_ca, applicable & both)]
    )
    return out


def ppf(r_1, r_2, theta, L_S, alpha=None, Lbar=None, n: int = 201, lam_1N=1.0, lam_2N=1.0):
    """Production possibility frontier of JDE Fig. 1 (numpy, for figures).

    ``Q_1 = lam_1S (L_S - L_2)``, ``Q_2 = lam_2S (1 + alpha min(Lbar, L_2)) L_2`` for
    ``L_2`` in ``[0, L_S]``; also the frontier without externality (``alpha = 0``) and
    the world price ratio ``p_1/p_2 = theta lam_2N / lam_1N``. ``Lbar`` defaults to
    ``L_S`` and ``alpha`` to ``(theta - 1) / Lbar``.
    """
    import numpy as np

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
