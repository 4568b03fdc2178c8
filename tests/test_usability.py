"""Issue 20: results that read right. Each test failed before its fix.

- the dynamic kernel flags the knife-edge path ``0 <= 0`` (every ``a_hat`` 0);
- sensitivity under ``given`` warns where the inputs become dependent;
- a refined cube's regime shares are shares of area (the finest grid) by default;
- regime colours stay distinguishable; pv_gain colour limits are robust;
- starter and demo configs say what they sweep and sit off knife edges;
- the Mill test of ``standard`` is C2's existence, and it can fail.
"""

from __future__ import annotations

import numpy as np
import pytest

# ------------------------------------------------------------- 11: dynamic knife path


@pytest.mark.parametrize("save_paths", [True, False])
def test_every_a_hat_zero_is_a_knife_edge_path(save_paths):
    """Every ``a_hat`` 0 (``eps <= g`` in both sectors): ``x_k`` stays 0, so the path's
    least wage and the best alternative ``r_m a_hat_m / theta_m`` are both 0 and the
    path condition holds with equality, ``0 <= 0``: feasible, with status bit 64 (as
    every equality, docs/models.md#knife-edge-points). With ``a_hat_2 = 1/2`` the
    alternative to target 1 is positive and target 1's wage 0: infeasible, no flag;
    target 2 pays more than an alternative of 0: feasible, no flag."""
    import jax

    from pipeline.models import dynamic as dyn

    transition = jax.jit(dyn.transition, static_argnames=("T", "n_time", "save_paths"))
    r, theta = np.array([[1.0, 0.5]] * 3), np.full((3, 2), 2.0)
    g = np.array([[0.2, 0.1], [0.1, 0.1], [0.2, 0.05]])
    eps = np.full((3, 2), 0.1)  # a_hat: (0, 0); (0, 0) with eps = g; (0, 0.5)
    out = transition(r, theta, g, eps, np.full(3, 0.05), np.zeros(3), T=40.0, n_time=5,
                     save_paths=save_paths)  # fmt: skip
    out = {k: np.asarray(v) for k, v in out.items()}
    st = out["status"]
    assert out["path_feasible"][:2].all()
    assert (st[:2] & dyn.PATH_KNIFE).all(), st
    assert not out["path_feasible"][2, 0] and out["path_feasible"][2, 1]
    assert not (st[2] & dyn.PATH_KNIFE).any(), st
