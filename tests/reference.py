"""Independent plain-numpy evaluation of the existence rules of docs/models.md.

Written from the documentation's tables with explicit loops over sectors, sharing no
code with ``pipeline.models``. The arithmetic of every ratio is the same expression as
in the model's docstring, so the booleans must agree exactly and the wages to the last
bit. The knife-edge convention: a condition within ``|lhs/rhs - 1| <= 1e-12`` holds
with equality, so a weak inequality holds there and a strict one does not.
"""

from __future__ import annotations

import numpy as np

TOL = 1e-12


def _near(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return ((a == 0) & (b == 0)) | (np.abs(a / b - 1.0) <= TOL)


def le(a, b):
    """``a <= b`` as a weak condition (holds inside the knife-edge band)."""
    return (a <= b) | _near(a, b)


def lt(a, b):
    """``a < b`` as a strict condition (fails inside the knife-edge band)."""
    return (a < b) & ~_near(a, b)


def standard(r_1, r_2, theta, theta_S):
    c = r_2 / r_1
    t_c = theta / c
    exists = np.stack(
        [le(c, theta), le(1.0, c * (theta_S / theta)), lt(1.0, t_c) & lt(t_c, theta_S)],
        axis=-1,
    )
    wage = np.stack([r_1, r_2 * (theta_S / theta), r_1], axis=-1)
    return exists, np.where(exists, wage, np.nan)


def sectors(r, theta, theta_S=None, mixed=None):
    """r, theta, theta_S: [N, J]; mixed: [N, J] bool ((1-beta)/alpha < min(L_S, Lbar_j),
    strict, knife-edge band applied by the caller) or None."""
    N, J = r.shape
    theta_S = theta if theta_S is None else theta_S
    b = r / theta
    wC = r * (theta_S / theta)
    C = np.zeros((N, J), bool)
    B = np.zeros((N, J), bool)
    for j in range(J):
        c_ok = lt(1.0, theta_S[:, j])
        b_ok = np.ones(N, bool)
        for k in range(J):
            if k == j:
                continue
            c_ok &= le(b[:, k], wC[:, j])
            b_ok &= le(b[:, k], b[:, j])
        C[:, j], B[:, j] = c_ok, b_ok
    parts, wages = [C, B], [wC, b]
    if mixed is not None:
        parts.append(B & mixed)
        wages.append(b)
    exists = np.concatenate(parts, axis=1)
    wage = np.concatenate(wages, axis=1)
    return exists, np.where(exists, wage, np.nan)
