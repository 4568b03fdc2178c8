"""Independent plain-numpy evaluation of MODEL.md's existence rules (sections 2-4).

Written from MODEL.md's tables with explicit loops over sectors, sharing no code with
``pipeline.models``. The arithmetic of every ratio is the same expression as in the
model's docstring, so the booleans must agree exactly and the wages to the last bit.
"""

from __future__ import annotations

import numpy as np


def standard(r_1, r_2, theta, theta_S):
    c = r_2 / r_1
    exists = np.stack(
        [c <= theta, c * (theta_S / theta) >= 1.0, (theta / c > 1.0) & (theta / c < theta_S)],
        axis=-1,
    )
    wage = np.stack([r_1, r_2 * (theta_S / theta), r_1], axis=-1)
    return exists, np.where(exists, wage, np.nan)


def sectors(r, theta, theta_S=None, mixed=None):
    """r, theta, theta_S: [N, J]; mixed: [N, J] bool ((1-beta)/alpha < min(L_S, Lbar_j)) or None."""
    N, J = r.shape
    theta_S = theta if theta_S is None else theta_S
    b = r / theta
    wC = r * (theta_S / theta)
    C = np.zeros((N, J), bool)
    B = np.zeros((N, J), bool)
    for j in range(J):
        c_ok = theta_S[:, j] > 1.0
        b_ok = np.ones(N, bool)
        for k in range(J):
            if k == j:
                continue
            c_ok &= b[:, k] <= wC[:, j]
            b_ok &= b[:, k] <= b[:, j]
        C[:, j], B[:, j] = c_ok, b_ok
    parts, wages = [C, B], [wC, b]
    if mixed is not None:
        parts.append(B & mixed)
        wages.append(b)
    exists = np.concatenate(parts, axis=1)
    wage = np.concatenate(wages, axis=1)
    return exists, np.where(exists, wage, np.nan)
