r"""Model ``dynamic`` (JDE section 4): learning by doing and international spillovers.

MODEL.md section 5 (with erratum 1: ``min``, not ``max``). The ``coordination``
economy of :mod:`pipeline.models.sectors` plus a productivity index ``A_jit`` that
grows with learning by doing (rate ``g_j``, scaled by the cluster intensity
``s_ji`` in ``[0, 1]``) and with spillovers from the leader (rate ``eps_j``, the
"benefits of backwardness"). The state that matters is South's relative
productivity ``x_j = A_jS / A_jN`` (North is clustered everywhere, ``s_jN = 1``):

.. math::

    \dot x_j = x_j \bigl( g_j (s_j - 1) + \varepsilon_j (1 - \min(x_j, 1))
               - \varepsilon_j (1 - \min(1/x_j, 1)) \bigr)

Without a cluster (``s = 0``) ``x_j -> a_hat_j = max(0, 1 - g_j / eps_j)``; with a
full cluster (``s = 1``) ``x_j -> 1``. While ``x <= 1`` and ``s`` is constant the
equation is logistic: ``q = eps + g (s - 1)``, ``K = q / eps``,
``x(t) = K / (1 + (K / x_0 - 1) e^{-q t})``.

Parameters (per sector ``j = 1..J`` unless said otherwise)

* ``r_j > 0``: South's raw productivity relative to North, ``lam_jS / lam_jN``;
* ``theta_j > 0`` (the paper: ``> 1``): static gain from a full cluster;
* ``g_j >= 0``: learning-by-doing rate; ``eps_j >= 0``: spillover rate
  (``eps_j <= g_j`` gives ``a_hat_j = 0``);
* ``rho > 0`` (per point): discount rate of the present-value gain;
* ``Tc >= 0`` (per point): coordination ramp, ``s(t) = min(1, t / Tc)``
  (``Tc = 0``: ``s = 1`` from ``t = 0``).

Two kernels, both pure ``jax.numpy`` (nothing here jits; the one vmap is the
per-point step-size controller inside the integrator):

* :func:`steady_state` — one point: existence, wages, ranks and claims of the
  steady-state equilibria ``C1..CJ, B1..BJ``;
* :func:`transition` — a whole batch: the coordination experiment of MODEL.md
  section 5 for every target sector ``k``, solved by adaptive Tsit5, every point
  with its own steps, all points in one vectorised loop
  (diffrax solver, PID step control, dense output) with the crossing times and the
  discounted gain computed to solver accuracy, independent of the saved grid.

Steady states (the rules of section 3 with North's advantage scaled by ``1/x_j``):

=====  =============================  ==============================================
label  wage                           exists iff
=====  =============================  ==============================================
Cj     ``r_j``                        ``r_k a_hat_k / theta_k <= r_j``, all ``k != j``
Bj     ``r_j a_hat_j / theta_j``      ``r_k a_hat_k / theta_k <= r_j a_hat_j / theta_j``
=====  =============================  ==============================================

Claims (``claim`` labels ``1``..``6``), checked where ``g`` and ``eps`` are common to
all sectors, ``a_hat > 0``, ``r_j`` and ``r_j a_hat_j / theta_j`` are strictly
decreasing in ``j`` and the point is not knife-edge (else ``-1``, missing):

1. ``B1`` and ``C1`` exist; no ``Bj`` with ``j > 1`` does;
2. ``Ck`` (``k > 1``) exists iff ``r_1 / r_k <= theta_1 / a_hat_1`` (dynamic (*));
3. ``C1`` is the best steady state, ``B1`` the worst; existing ``Ck`` wages fall with ``k``;
4. ``w_Ck = r_k`` whatever ``theta_k`` (to 1e-12 relative);
5. where ``Ck`` does not exist, ``w_Ck < w_B1``;
6. every ``Ck`` that exists in the static ``coordination`` model
   (``r_1 / r_k <= theta_1``) exists in the dynamic steady state (learning and
   spillovers widen the set of feasible clusters, since ``a_hat <= 1``).
"""

from __future__ import annotations

import functools

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from .. import _jax  # noqa: F401  (float64 on)
from ._common import KNIFE_TOL, barrier, claim_code, ratio, summarise
from .sectors import corners
from .sectors import labels as _sector_labels

CLAIMS = ("1", "2", "3", "4", "5", "6")
CLAIM_TEXT = {
    "1": "B1 and C1 exist in steady state; no Bj with j > 1 exists",
    "2": "Ck (k > 1) exists in steady state iff r_1/r_k <= theta_1/a_hat_1",
    "3": "C1 is the best steady state, B1 the worst; existing Ck wages fall with k",
    "4": "the steady-state wage of Ck (= r_k) does not depend on theta_k",
    "5": "where Ck does not exist, w_Ck < w_B1",
    "6": "every Ck of the static coordination model (r_1/r_k <= theta_1) exists in steady state",
}

#: ``status`` bit flags of :func:`transition` (a value is the bitwise OR of its flags).
STATUS = {
    0: "ok",
    1: "half_life not reached by T (NaN)",
    2: "t99 not reached by T (NaN)",
    4: "solver failure: the point's solve did not reach T (max_steps) or went non-finite; "
    "summaries NaN, saved paths NaN from where the solve stopped",
    8: "a_hat_1 = 0, so the baseline wage w_B = 0: jump, pv_gain, breakeven_kappa NaN",
    16: "a_hat_k = 0: x_k(0) = 0 is a rest point, x_k stays 0 (half_life, t99 NaN)",
    32: "invalid input (non-finite, r or theta <= 0, g or eps < 0, rho <= 0, Tc < 0): "
    "all outputs NaN, path_feasible False",
}
HALF_LIFE_NOT_REACHED = 1
T99_NOT_REACHED = 2
SOLVER_FAILED = 4
NO_BASELINE = 8
STUCK = 16
INVALID = 32

#: Default tolerances (max-norm over a point's J paths) and step budget per point.
RTOL, ATOL, MAX_STEPS = 3e-10, 1e-12, 4096

_SOLVER = dfx.Tsit5()


def labels(J: int) -> list[str]:
    """Equilibrium labels in cube order: ``C1..CJ, B1..BJ`` (as :func:`sectors.labels`)."""
    return _sector_labels(J)


# ----------------------------------------------------------------------- primitives


def a_hat(g, eps):
    r"""Steady-state relative productivity without a cluster.

    .. math:: \hat a_j = \max\Bigl(0,\ 1 - \frac{g_j}{\varepsilon_j}\Bigr)

    the rest point of :func:`vector_field` with ``s = 0`` (``0`` when
    ``eps_j <= g_j``: spillovers cannot offset the missing learning, ``x_j -> 0``).
    Works elementwise on float64 arrays of any shape.
    """
    g, eps = jnp.asarray(g, jnp.float64), jnp.asarray(eps, jnp.float64)
    pos = eps > g
    return jnp.where(pos, 1.0 - ratio(g, jnp.where(pos, eps, 1.0)), 0.0)


def ramp(t, Tc):
    r"""Cluster intensity during coordination: ``s(t) = 1`` if ``Tc == 0``, else
    ``min(1, t / Tc)`` (``t >= 0``; ``Tc = inf`` gives ``s = 0``)."""
    pos = Tc > 0
    return jnp.where(pos, jnp.clip(t / jnp.where(pos, Tc, 1.0), 0.0, 1.0), 1.0)


def theta_S(t, Tc, theta):
    r"""Realised static gain ``theta_kS(t) = 1 + s(t) (theta_k - 1)``."""
    return 1.0 + ramp(t, Tc) * (theta - 1.0)


def wage_of(t, x, r, theta, Tc):
    r"""South's wage while coordinated in ``k``: ``w = r_k (x_k theta_kS(t)) / theta_k``."""
    return r * (x * theta_S(t, Tc, theta)) / theta


def _rate(x, g, eps, s):
    """Right-hand side of :func:`vector_field` for a given cluster intensity ``s``."""
    return x * (g * (s - 1.0) + eps * (1.0 - jnp.minimum(x, 1.0))) - eps * jnp.maximum(x - 1.0, 0.0)


def vector_field(t, x, args):
    r"""Law of motion of South's relative productivity (MODEL.md section 5).

    .. math::

        \dot x = x\,\bigl(g\,(s(t) - 1) + \varepsilon\,(1 - \min(x, 1))\bigr)
                 - \varepsilon \max(x - 1, 0)

    which is MODEL.md's ``x (g (s-1) + eps (1 - min(x,1)) - eps (1 - min(1/x,1)))``
    with ``x (1 - min(1/x, 1)) = max(x - 1, 0)`` (no division, so ``x = 0`` is a
    regular rest point). ``s(t) = ramp(t, Tc)``. Signature as a diffrax ``ODETerm``.

    Parameters
    ----------
    t : float
        Time in years since coordination started (``t >= 0``).
    x : float64 array
        Relative productivity ``A_S / A_N >= 0``.
    args : tuple ``(g, eps, Tc)``
        Arrays broadcastable against ``x``.
    """
    g, eps, Tc = args[0], args[1], args[2]
    return _rate(x, g, eps, ramp(t, Tc))


def logistic(t, x0, g, eps, s=1.0):
    r"""Closed form while ``x <= 1`` at constant ``s`` (MODEL.md section 5).

    .. math:: q = \varepsilon + g (s - 1),\quad K = q/\varepsilon,\quad
              x(t) = \frac{K}{1 + (K / x_0 - 1) e^{-q t}}

    numpy or jax arrays; the reference for the integrator, not a replacement.
    """
    xp = jnp if any(isinstance(a, jax.Array) for a in (t, x0, g, eps, s)) else np
    q = eps + g * (s - 1.0)
    K = q / eps
    return K / (1.0 + (K / x0 - 1.0) * xp.exp(-q * t))


# -------------------------------------------------------------------- steady states


def steady_state(r, theta, g, eps):
    r"""Steady-state equilibria of ``dynamic`` at ONE point (MODEL.md section 5).

    ``r, theta, g, eps``: float64[J]. With ``b_k = r_k a_hat_k / theta_k``
    (the wage at which South breaks even in ``k`` without a cluster):

    * ``Cj``: wage ``r_j`` (``x_j -> 1``), exists iff ``b_k <= r_j`` for all ``k != j``;
    * ``Bj``: wage ``b_j``, exists iff ``b_k <= b_j`` for all ``k``.

    Both share :func:`pipeline.models.sectors.corners` with the static models.
    Equalities (relative 1e-12) set ``knife_edge``; in particular ``a_hat = 0``
    in two or more sectors makes their ``Bj`` wages ``0`` and tie: a knife-edge
    continuum (flagged, the ``Bj`` not stable, never an exception). Income gap
    ``1 / w``: ``(theta_1 / a_hat_1) / r_1`` in ``B1``, ``1 / r_1`` in ``C1``.

    Returns :func:`~pipeline.models._common.summarise`'s dict over
    :func:`labels` plus ``knife_edge`` (bool), ``claims`` (int8[6], see
    :data:`CLAIMS`) and ``a_hat`` (float64[J]).
    """
    r, theta = jnp.asarray(r, jnp.float64), jnp.asarray(theta, jnp.float64)
    g, eps = jnp.asarray(g, jnp.float64), jnp.asarray(eps, jnp.float64)
    J = r.shape[0]
    ah = a_hat(g, eps)
    b = ratio(barrier(r * ah), theta)
    w_C = r
    C_ex, C_st, B_ex, B_st, knife = corners(b, w_C, jnp.ones(J, bool))
    out = summarise(
        jnp.concatenate([C_ex, B_ex]),
        jnp.concatenate([C_ex & C_st, B_ex & B_st]),
        jnp.concatenate([w_C, b]),
    )
    out["knife_edge"] = knife
    out["claims"] = _claims(r, theta, g, eps, ah, b, w_C, out, knife)
    out["a_hat"] = ah
    return out


def _claims(r, theta, g, eps, ah, b, w_C, out, knife):
    J = r.shape[0]
    common = jnp.all(g == g[0]) & jnp.all(eps == eps[0])
    decreasing = jnp.all(r[:-1] > r[1:]) & jnp.all(b[:-1] > b[1:])
    applicable = common & decreasing & jnp.all(ah > 0) & ~knife
    ex, wage = out["exists"], out["wage"]
    C_ex, B_ex = ex[:J], ex[J : 2 * J]
    c1 = B_ex[0] & C_ex[0] & ~jnp.any(B_ex[1:])
    c2 = jnp.all(C_ex[1:] == (ratio(r[0], r[1:]) <= ratio(theta[0], ah[0])))
    w_max, w_min = jnp.nanmax(wage), jnp.nanmin(wage)
    wC = wage[:J]
    km = jnp.triu(jnp.ones((J, J), dtype=bool), 1) & C_ex[:, None] & C_ex[None, :]
    falls = jnp.all(jnp.where(km, wC[:, None] > wC[None, :], True))
    c3 = (wage[0] == w_max) & (wage[J] == w_min) & falls
    c4 = jnp.all(jnp.abs(ratio(w_C, r) - 1.0) <= KNIFE_TOL)
    c5 = jnp.all(jnp.where(C_ex, True, r < b[0]))
    static_C = ratio(r[0], r[1:]) <= theta[0]
    c6 = jnp.all(jnp.where(static_C, C_ex[1:], True))
    return jnp.stack([claim_code(c, applicable) for c in (c1, c2, c3, c4, c5, c6)])


# ------------------------------------------------------------------ the batch solver


def _tsit5_poly() -> np.ndarray:
    """Tsit5's dense-output weights as polynomials: ``b_i(u) = sum_p B[i, p] u^(p+1)``.

    Read off diffrax's own ``Tsit5.interpolation_cls`` (``y0 = 0``, ``k = I``) at four
    nodes, so saving, crossing times and quadrature all use exactly the solver's
    interpolant.
    """
    ip = dfx.Tsit5.interpolation_cls(
        t0=0.0, t1=1.0, y0=jnp.zeros(7), y1=jnp.zeros(7), k=jnp.eye(7, dtype=jnp.float64)
    )
    u = np.array([0.25, 0.5, 0.75, 1.0])
    b = np.stack([np.asarray(ip.evaluate(ui)) for ui in u])  # [node, stage]
    V = np.stack([u ** (p + 1) for p in range(4)], axis=1)
    B = np.linalg.solve(V, b).T  # [stage, power]
    B[np.abs(B) < 1e-12] = 0.0  # exact zeros (b_i(u) = O(u^2) for i > 1), not round-off
    return B


_B = _tsit5_poly()
_TABLEAU = dfx.Tsit5.tableau


def _tsit5_step(ta, h, x, f0, args, fence=None):
    """One Tsit5 step from ``(ta, x)`` of length ``h`` (diffrax's tableau, FSAL).

    The stages written out, as a straight line of elementwise operations that XLA
    fuses: diffrax's ``Tsit5.step`` runs its stages in a ``while_loop`` over a
    stage buffer, which on CPU costs ~10x more than the vector field itself for
    arrays of a few thousand paths. ``fence``: None, or a traced boolean to fence
    each stage with (:func:`_fence`). ``f0 = f(ta, x)``. Returns ``(x1, err, k, f1)``:
    the solution, diffrax's error estimate, the seven stage increments ``k_i = h
    f_i`` (for the dense output, :func:`_dense_coeffs`) and ``f1 = f(ta + h, x1)``.
    """
    tab = _TABLEAU
    k = [_fence(fence, h * f0)]
    y = x
    for ci, ai in zip(tab.c, tab.a_lower, strict=True):
        y = x + sum(float(a) * kj for a, kj in zip(ai, k, strict=True))
        f = _rhs(ta + float(ci) * h, y, args)
        k.append(_fence(fence, h * f))
    # first same as last: the last stage is at (ta + h, x1), so x1 = y and f1 = f
    err = sum(float(e) * kj for e, kj in zip(tab.b_error, k, strict=True))
    return y, err, tuple(k), f


def _fence(pred, v):
    """``v``, computed once: XLA's CPU fusion copies a chain of elementwise operations
    into every consumer that it fuses into (an optimisation barrier did not stop it),
    so the seven stages of a step, each used by the later stages, the error
    and the dense output, ran five times over (~200 operations per fusion). A value
    returned by a ``cond`` branch is a fusion boundary. ``pred`` is any traced
    boolean XLA cannot fold: both branches return ``v`` (the other as ``v + 0.0``,
    which only turns -0.0 into 0.0 and which XLA does not simplify away); None: no
    fence, ``v`` as it is."""
    if pred is None:
        return v
    return jax.lax.cond(pred, lambda v: v, lambda v: jax.tree.map(lambda a: a + 0.0, v), v)


def _fence_pred(a):
    """The predicate for :func:`_fence` on XLA's CPU backend, None elsewhere: a GPU
    fuses differently, and there a ``cond`` reads its predicate back to the host."""
    return jnp.any(a) if jax.default_backend() == "cpu" else None


#: The least number of steps per point (``dtmax = T / _MIN_STEPS``), and the saved
#: times written per point and pass of the save loop off a uniform grid.
_SAVE_WINDOW, _MIN_STEPS = 8, 64
#: ``transition`` pads smaller batches to this many points (see there).
_MIN_ROWS = 8
#: Paths within this distance of x = 1 at a step's start cross the kink unclipped.
_KINK_TOL = 1e-8
#: Gauss-Legendre nodes and weights on [0, 1] for the discounted integral (exact for
#: polynomials of degree 9; the integrand is a degree-5 polynomial times exp(-rho t)).
_GL_X, _GL_WX = np.polynomial.legendre.leggauss(5)
_GL_U, _GL_W = 0.5 * (_GL_X + 1.0), 0.5 * _GL_WX


def _kinks(Tc, T):
    """Where the ramp ``s(t)`` has its kink: ``Tc`` inside ``(0, T)``, else ``T``."""
    return jnp.where((Tc > 0) & (Tc < T), Tc, T)


def _rhs(t, x, args):
    """:func:`vector_field` with ``args`` a dict (``g``, ``eps``, ``Tc``)."""
    return _rate(x, args["g"], args["eps"], ramp(t, args["Tc"]))


def _poly(x0, C, u):
    """Dense output of one step at the fraction ``u``: ``x0 + sum_p C_p u^(p+1)``."""
    return x0 + u * (C[0] + u * (C[1] + u * (C[2] + u * C[3])))


def _dense_coeffs(k):
    """Power-basis coefficients ``C_p = sum_i B[i, p] k_i`` of one step's dense
    output ``x(u) = x0 + sum_p C_p u^(p+1)`` (``k``: the seven stage increments),
    written out as sums so that they fuse with the step (a ``tensordot`` ran as a
    separate matrix product, ~5x the cost)."""
    return tuple(
        sum(float(_B[i, p]) * k[i] for i in range(len(k)) if _B[i, p] != 0.0) for p in range(4)
    )


def _fold(op, a):
    """``op``-reduce ``a`` over its first axis (a row's few paths), as elementwise
    operations on the slices: XLA fuses them, a ``reduce`` over an axis of length 2
    ran as a separate kernel costing as much as a Runge-Kutta stage."""
    return functools.reduce(op, [a[j] for j in range(a.shape[0])])


def _cross(x0, C, x1, level, sign0, n_iter=8):
    """Fraction ``u`` in ``[0, 1]`` of a step where its dense output hits ``level``.

    Solves ``x0 + sum_p C_p u^(p+1) = level`` elementwise by safeguarded Newton
    (bisection whenever the iterate leaves the bracket) from the secant guess
    ``(level - x0) / (x1 - x0)``; ``sign0 = sign(x(0) - level)`` orients the bracket.
    """
    d = level - x0

    def P(u):
        val = u * (C[0] + u * (C[1] + u * (C[2] + u * C[3]))) - d
        der = C[0] + u * (2.0 * C[1] + u * (3.0 * C[2] + u * 4.0 * C[3]))
        return val, der

    span = x1 - x0
    u = jnp.clip(jnp.where(span != 0, d / jnp.where(span != 0, span, 1.0), 0.5), 0.0, 1.0)
    lo, hi = jnp.zeros_like(u), jnp.ones_like(u)
    for _ in range(n_iter):
        val, der = P(u)
        below = val * sign0 > 0  # same side as u = 0: the root is above u
        lo = jnp.where(below, u, lo)
        hi = jnp.where(below, hi, u)
        un = u - val / jnp.where(der != 0, der, 1.0)
        ok = (der != 0) & (un >= lo) & (un <= hi)
        u = jnp.where(ok, un, 0.5 * (lo + hi))
    return u


def _cross_time(ta, h, x_a, args, level, sign0):
    """When a path crosses ``level`` in its step ``(ta, h)`` from ``x_a`` (elementwise):
    the step taken again (the same arithmetic as in the loop, stages fenced alike, so
    that XLA compiles it alike for any batch size), then :func:`_cross` on its dense
    output. Recording three numbers per path in the loop, not the step's eight, halves
    what the loop writes for each level."""
    fence = _fence_pred(ta)
    x_b, _, k, _ = _tsit5_step(ta, h, x_a, _rhs(ta, x_a, args), args, fence=fence)
    return ta + _cross(x_a, _dense_coeffs(k), x_b, level, sign0) * h


def _uniform_step(ts):
    """``step`` if ``ts`` is a concrete ``np.linspace(0, T, n)`` (element ``i`` is
    ``i * step``, the last ``T``, exactly as numpy makes it), else None."""
    if not isinstance(ts, np.ndarray) or ts.size < 2 or ts[0] != 0.0:
        return None
    step = (ts[-1] - ts[0]) / (ts.size - 1)
    grid = np.arange(ts.size) * step
    grid[-1] = ts[-1]
    return float(step) if np.array_equal(grid, ts) else None


def _inv_root(s, n):
    """``s ** (-1 / n)`` for float64 ``s >= 0`` (``n`` a positive int), to a few ulp,
    by Newton's method on the mantissa: XLA's CPU ``log`` and ``pow`` are scalar libm
    calls, this vectorises. ``0 -> 2**(1000 / n)``, ``inf -> 2**(-1000 / n)`` (finite:
    the callers clip), NaN -> NaN."""
    sc = jnp.clip(s, 2.0**-1000, 2.0**1000)
    b = jax.lax.bitcast_convert_type(sc, jnp.int64)
    e = ((b >> 52) - 1023).astype(jnp.int32)  # sc = m 2^e, m in [1, 2)
    m = jax.lax.bitcast_convert_type((b & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000, jnp.float64)
    q = e // n
    r = e - n * q  # sc = (m 2^r) 2^(n q), r in [0, n)
    M, c = m, jnp.ones_like(m)
    for k in range(1, n):
        M = jnp.where(r == k, m * 2.0**k, M)
        c = jnp.where(r == k, 2.0 ** (-k / n), c)
    # y = M^(-1/n) in (1/2, 1]: a quadratic guess in m (error < 2e-3), then Newton
    y = c * (_ROOT_GUESS[n][0] + m * (_ROOT_GUESS[n][1] + m * _ROOT_GUESS[n][2]))
    for _ in range(3):
        yn = functools.reduce(jnp.multiply, [y] * n)
        y = y * ((n + 1) / n - (1 / n) * M * yn)
    y = y * jax.lax.bitcast_convert_type((1023 - q).astype(jnp.int64) << 52, jnp.float64)
    return jnp.where(jnp.isnan(s), jnp.nan, y)


def _root_guess(n):
    """Least-squares quadratic in ``m`` for ``m ** (-1 / n)`` on ``[1, 2]``."""
    m = np.linspace(1.0, 2.0, 257)
    return np.polynomial.Polynomial.fit(m, m ** (-1 / n), 2).convert().coef


_ROOT_GUESS = {n: _root_guess(n) for n in range(1, 9)}


def _adapt_rows(ta, tb, x_a, x_b, err, kinks, kinks_prev, dtmax, *, rtol, atol, order):
    """diffrax's ``ClipStepSizeController(PIDController(...), step_ts)`` step-size
    update, elementwise for rows on the last axis (``ta, tb, dtmax``: ``[N]``; paths
    ``x_a, x_b, err``: ``[J, N]``; ``kinks``: ``[n_kinks, N]``).

    The arithmetic of ``PIDController.adapt_step_size`` with its defaults (an
    integral controller: ``pcoeff = dcoeff = 0``, ``icoeff = 1``, so no state;
    ``safety 0.9``, ``factormin 0.2``, ``factormax 10``), the max-norm over a row's
    paths, ``dtmax`` per row, then the step end clipped to the row's next kink
    (``step_ts``) after ``t0`` bumped as ``_bump_next_t0`` does. A ``jax.vmap`` of
    diffrax's controller would turn its index search (a while loop) into a batched
    loop selecting over the whole state. Returns ``(keep, next_t0, next_t1)``.
    """
    bad = _fold(jnp.logical_or, jnp.isnan(x_b))
    y = jnp.maximum(jnp.abs(x_a), jnp.abs(jnp.where(bad, x_a, x_b)))
    scaled = _fold(jnp.maximum, jnp.abs(err / (atol + y * rtol)))
    keep = scaled < 1
    # (1 / scaled) ** (1 / order) by _inv_root: XLA's CPU pow and log are scalar libm
    # calls per row (the step size only; to a few ulp of pow)
    factor = jnp.clip(
        0.9 * _inv_root(scaled, order),
        min=jnp.where(keep, 1, 0.2),
        max=jnp.where(keep, 10.0, 0.9),
    )
    dt = jnp.minimum((tb - ta) * factor, dtmax)
    nt0 = jnp.where(keep, tb, ta)
    nt1 = nt0 + dt
    # step_ts: clip to the next kink after t0, skipping one a single ulp after it
    # (diffrax's _bump_next_t0: ``kinks_prev = nextafter(kinks, -inf)``, given)
    ahead = (kinks > nt0) & (kinks_prev != nt0)
    nxt = _fold(jnp.minimum, jnp.where(ahead, kinks, jnp.inf))
    return keep, nt0, jnp.minimum(nxt, nt1)


def _integrate(
    x0,
    args,
    ts,
    kinks,
    levels=(),
    *,
    save: bool,
    quad: bool,
    rtol: float,
    atol: float,
    max_steps: int,
    trim: bool = True,
):
    r"""Adaptive Tsit5 solve of a batch of points, every point with its own steps.

    ``x0``: float64 ``[N, J]`` (a point's ``J`` paths share its steps, error in the
    max-norm over them); ``args``: ``g, eps`` ``[N, J]``, ``Tc`` ``[N, 1]`` and, if
    ``quad``, ``rho`` ``[N, 1]`` and ``theta`` ``[N, J]``; optional ``valid``
    ``[N, 1]``; ``kinks`` ``[N, n_kinks]`` (times each point's steps must end at,
    ``step_ts``); ``levels``: ``[N, J]`` arrays. Every point is its own system with
    its own time, step size and controller, all advanced together in one vectorised
    loop until the last one reaches ``T`` (a point that is done stands still). A
    point's results are then those it would get solved alone, bit for bit, whatever
    else is in the batch.

    ``dtmax = T / _MIN_STEPS``, with ``quad`` also at most ``max(1 / rho, T /
    512)`` (``rho h <= 1`` for the quadrature wherever ``e^{-rho t}`` still
    matters). After each accepted step, on the solver's dense output of that step
    (diffrax's Tsit5 interpolant in power form, :func:`_dense_coeffs`):

    * ``x`` at the ``ts`` inside it (as ``SaveAt(ts=...)``) into ``buf`` if ``save``
      (times a failed solve never reached stay NaN; paths where ``valid`` is False
      are saved as NaN), else the running minimum over them of
      ``z = x theta_S(t)`` (``zmin``);
    * if ``quad``: ``V += int_step e^{-rho t} z(t) dt`` by 5-point Gauss-Legendre;
    * per level in ``levels``, the step in which the path first crosses it; the
      crossing time is solved once, after the loop, on that step (:func:`_cross`).

    A step in which a path crosses the kink ``x = 1`` (``min(x, 1)``) is rejected
    and retried up to the first such crossing (an event in all but name), so that
    no step straddles it; in :func:`transition` paths start at ``a_hat <= 1`` and
    rise to 1 without crossing it, so this never fires there.

    The loop is ``diffeqsolve``'s (accept/reject/clip-to-end) around diffrax's
    Tsit5 (its tableau and dense output; the stages written out in
    :func:`_tsit5_step`) and diffrax's PID controller (the first step from
    ``PIDController.init``, then ``adapt_step_size``'s arithmetic per point in
    :func:`_adapt_rows`). It is written out because ``diffeqsolve`` has no per-step
    hook: a terminating ``Event`` would stop the whole batch at the first crossing,
    ``SaveAt(steps=True)`` or ``dense=True`` would store every step of every path
    (``max_steps x N x J``), and a vmapped ``diffeqsolve`` selects over its whole
    carry, saved paths included, at every step (~40x slower, benchmarks/RESULTS.md).
    Here memory is ``O(N J)`` besides the saved paths, written as one window of
    times per point and step.

    Returns a dict: ``x`` (at ``T``), ``zmin``, ``V`` ``[N, J]``; ``buf``
    ``[N, J, n_time]`` (if ``save``; with ``trim=False`` as the loop wrote it, with
    a few NaN times at the end, which saves a copy); ``cross`` (tuple of ``[N, J]``
    crossing times, NaN if not reached); ``ok`` ``[N, 1]``; ``n_steps``,
    ``n_accepted`` ``[N]``.
    """
    N = x0.shape[0]
    args = {"valid": jnp.ones((N, 1), bool), **args}
    # points on the LAST axis, [J, N]: XLA's CPU loops vectorise along the minor
    # dimension, and with [N, J] that is J = 2 (the step ran ~3x slower)
    out = _solve(
        x0.T, {k: v.T for k, v in args.items()}, ts, kinks.T, tuple(L.T for L in levels),
        save=save, quad=quad, rtol=rtol, atol=atol, max_steps=max_steps,
    )  # fmt: skip
    return dict(
        out, x=out["x"].T, zmin=out["zmin"].T, V=out["V"].T, ok=out["ok"][:, None],
        buf=out["buf"][..., : len(ts)] if trim else out["buf"],
        cross=tuple(c.T for c in out["cross"]),
    )  # fmt: skip


def _solve(x0, args, ts, kinks, levels, *, save, quad, rtol, atol, max_steps):
    """:func:`_integrate`'s loop, points on the last axis: ``x0``, ``levels`` and
    ``args`` ``[J or 1, N]``, ``kinks`` ``[n_kinks, N]``. Returns ``x, zmin, V,
    cross`` ``[J, N]``, ``ok, n_steps, n_accepted`` ``[N]``, ``buf``
    ``[N, J, n_time + W]``."""
    J, N = x0.shape
    T = ts[-1]
    n_time = ts.shape[0]
    step = _uniform_step(ts)
    # saved times are written W per point and pass. On a uniform grid a step (ta, tb]
    # at most dtmax = T / _MIN_STEPS long holds at most floor(q) + 1 of them, q =
    # (n_time - 1) / _MIN_STEPS its length in grid spacings (one more if q is a whole
    # number: rounding may let both ends in), so one pass per step does; else passes
    # of _SAVE_WINDOW until none is due
    one_pass = step is not None
    q, frac = divmod(n_time - 1, _MIN_STEPS)
    W = q + (1 if frac else 2) if one_pass else _SAVE_WINDOW

    def t_at(i):  # saved time i (i <= n_time - 1): ts[i], by arithmetic on a uniform grid
        if step is None:
            return jnp.asarray(ts)[jnp.minimum(i, n_time - 1)]
        return jnp.where(i >= n_time - 1, ts[-1], i * step)

    term = dfx.ODETerm(_rhs)
    err_order = _SOLVER.error_order(term)
    # no step longer than T / _MIN_STEPS: slow points would otherwise take steps
    # spanning tens of saved times; independent of n_time, so are the summaries
    dtmax = jnp.full((N,), T / _MIN_STEPS)
    if quad:
        dtmax = jnp.minimum(dtmax, jnp.maximum(1.0 / args["rho"][0], T / 512))

    def first_step(x0_p, ode_p, kinks_p, dtmax_p):
        ctrl = dfx.PIDController(
            rtol=rtol, atol=atol, norm=optx.max_norm, dtmax=dtmax_p, step_ts=kinks_p
        )
        t1, _ = ctrl.init(term, 0.0, T, x0_p, None, ode_p, _SOLVER.func, err_order)
        return jnp.minimum(t1, T)

    # diffrax's first step per point (once); in the loop diffrax's controller
    # arithmetic, elementwise over points (_adapt_rows)
    ode = {k: args[k] for k in ("g", "eps", "Tc")}
    t1 = jax.vmap(first_step, in_axes=-1)(x0, ode, kinks, dtmax)
    kinks_prev = jnp.nextafter(kinks, -jnp.inf)
    budget = max_steps + jnp.sum(kinks < T, axis=0)  # each ramp end may cost a step
    signs = tuple(jnp.sign(x0 - lv) for lv in levels)
    valid = args["valid"]

    def z_of(t, x):
        return x * theta_S(t, args["Tc"], args["theta"]) if "theta" in args else x

    zero = jnp.zeros_like(x0)
    n0 = jnp.zeros((N,), int)
    # the saved paths in the output layout [N, J, n_time + W] (W spare times at the
    # end for the last windows): a strided write per step costs less than a
    # transpose of the whole buffer afterwards
    buf = jnp.full((N, J, (n_time + W) if save else 0), jnp.nan, x0.dtype)
    if save:
        buf = buf.at[..., 0].set(jnp.where(valid, x0, jnp.nan).T)
    t0 = jnp.zeros((N,), x0.dtype)
    carry = dict(
        t0=t0, t1=t1, x=x0, f0=_rhs(t0, x0, args), i_save=n0 + 1, buf=buf,
        zmin=z_of(0.0, x0), V=zero, n_steps=n0, n_accepted=n0, ok=jnp.ones((N,), bool),
        # per level: found [J, N] and the start of the step it was crossed in, [3, J, N]
        # (ta, h, x_a): the step is taken again after the loop for its dense output
        brk=tuple((s == 0, jnp.stack([zero, zero, x0])) for s in signs),
    )  # fmt: skip

    def active(c):
        return (c["t0"] < T) & (c["n_steps"] < budget) & c["ok"]

    def body(c):
        live = active(c)
        ta, tb, x_a = c["t0"], c["t1"], c["x"]
        h = tb - ta
        # each stage computed once (_fence; any traced boolean will do)
        x_b, err, k, f1 = _tsit5_step(ta, h, x_a, c["f0"], args, fence=_fence_pred(live))
        err = jnp.where(jnp.isnan(err), jnp.inf, err)
        keep, nt0, nt1 = _adapt_rows(
            ta, tb, x_a, x_b, err, kinks, kinks_prev, dtmax,
            rtol=rtol, atol=atol, order=err_order,
        )  # fmt: skip
        keep = keep & live
        C = _dense_coeffs(k)  # this step's dense output: x(u) = x_a + sum_p C_p u^(p+1)

        # x = 1 is a kink of the vector field (C^1, f'' jumps): an accepted step in
        # which some path crosses it is retried up to the first crossing time on the
        # dense output, so that no step straddles it (never happens in transition())
        side = x_a - 1.0
        kink = keep & (side * (x_b - 1.0) < 0) & (jnp.abs(side) > _KINK_TOL)

        def first_kink(_):
            u = _cross(x_a, C, x_b, 1.0, jnp.sign(side))
            return _fold(jnp.minimum, jnp.where(kink & (u > 1e-3), u, jnp.inf))

        u_k = jax.lax.cond(jnp.any(kink), first_kink, lambda _: jnp.full_like(ta, jnp.inf), None)
        clip = u_k < 1.0
        keep = keep & ~clip
        nt0 = jnp.where(clip, ta, nt0)
        nt1 = jnp.where(clip, ta + u_k * h, nt1)
        nt0 = jnp.minimum(nt0, T)
        nt1 = jnp.where(nt1 > T, jnp.where(keep, T, nt0 + 0.5 * (T - nt0)), nt1)

        def due(i):
            return keep & (i < n_time) & (t_at(i) <= tb)

        def save_window(sc):
            # the next W saved times of every point at once ([J, W, N]), written as
            # one window per point at its i_save (NaN where not yet due: a later
            # window starts at or before the first of those and overwrites them),
            # never a select over the whole buffer
            i, buf, zmin = sc
            idx = i + jnp.arange(W)[:, None]  # [W, N]
            t = t_at(idx)
            d = keep & (idx < n_time) & (t <= tb)
            x = _poly(x_a[:, None], tuple(Cp[:, None] for Cp in C), (t - ta) / h)  # [J, W, N]
            if save:
                x = jnp.where(d & valid[:, None], x, jnp.nan)
                buf = jax.vmap(jax.lax.dynamic_update_slice)(
                    buf, jnp.moveaxis(x, -1, 0), jnp.stack([jnp.zeros_like(i), i], axis=1)
                )
            else:
                th = theta_S(t, args["Tc"], args["theta"][:, None])
                z = jnp.where(d, x * th, jnp.inf)
                zmin = jnp.minimum(zmin, _fold(jnp.minimum, jnp.moveaxis(z, 1, 0)))
            return i + _fold(jnp.add, d.astype(i.dtype)), buf, zmin

        sc = (c["i_save"], c["buf"], c["zmin"])
        if one_pass:
            i_save, buf, zmin = save_window(sc)
            lag = due(i_save)  # cannot happen (see W); a failed solve if it did
        else:
            i_save, buf, zmin = jax.lax.while_loop(lambda s: jnp.any(due(s[0])), save_window, sc)
            lag = jnp.zeros((), bool)

        V = c["V"]
        if quad:
            # int_ta^tb e^{-rho t} x(t) theta_S(t) dt, theta_S linear on the step (the
            # kinks Tc are step ends): 5-point Gauss-Legendre through the moments
            # M_q = sum_n w_n u_n^q e^{-rho h u_n}, computed per point, not per target
            rho = args["rho"]
            e = [barrier(jnp.exp(-rho * (ta + float(u) * h))) for u in _GL_U]
            M = [sum(float(w * u**q) * en for u, w, en in zip(_GL_U, _GL_W, e, strict=True))
                 for q in range(6)]  # fmt: skip
            X = (x_a, *C)
            th_a = theta_S(ta, args["Tc"], args["theta"])
            th_b = theta_S(tb, args["Tc"], args["theta"])
            dV = th_a * sum(X[q] * M[q] for q in range(5)) + (th_b - th_a) * sum(
                X[q] * M[q + 1] for q in range(5)
            )
            V = jnp.where(keep, V + h * dV, V)

        # per level, the start of the step in which a path first crosses it (ta, h,
        # x_a: the step is retaken after the loop for the crossing time)
        step_now = jnp.stack([jnp.broadcast_to(ta, x_a.shape), jnp.broadcast_to(h, x_a.shape), x_a])
        brk = []
        for lv, s0, (found, bk) in zip(levels, signs, c["brk"], strict=True):
            hit = keep & ~found & ((x_b - lv) * s0 <= 0)
            brk.append((found | hit, jnp.where(hit, step_now, bk)))

        finite = _fold(jnp.logical_and, jnp.isfinite(x_b))
        return dict(
            t0=jnp.where(live, nt0, ta),  # a finished point stands still
            t1=jnp.where(live, nt1, tb),
            x=jnp.where(keep, x_b, x_a),
            f0=jnp.where(keep, f1, c["f0"]),
            i_save=i_save, buf=buf, zmin=zmin, V=V, brk=tuple(brk),
            n_steps=c["n_steps"] + live, n_accepted=c["n_accepted"] + keep.astype(int),
            ok=c["ok"] & jnp.where(keep, finite, True) & ~lag,
        )  # fmt: skip

    out = jax.lax.while_loop(lambda c: jnp.any(active(c)), body, carry)
    cross = ()
    if levels:  # all levels at once ([n_levels, J, N]): one step's code to compile
        found, bk = (jnp.stack(a) for a in zip(*out["brk"], strict=True))
        s0 = jnp.stack(signs)
        t_x = _cross_time(bk[:, 0], bk[:, 1], bk[:, 2], args, jnp.stack(levels), s0)
        cross = tuple(jnp.where(s0 == 0, 0.0, jnp.where(found, t_x, jnp.nan)))
    ok = out["ok"] & (out["t0"] >= T) & (out["i_save"] == n_time)
    return dict(
        x=out["x"], zmin=out["zmin"], V=out["V"], buf=out["buf"], ok=ok, cross=cross,
        n_steps=out["n_steps"], n_accepted=out["n_accepted"],
    )  # fmt: skip


def integrate_path(x0, g, eps, Tc, ts, *, rtol=RTOL, atol=ATOL, max_steps=MAX_STEPS):
    r"""Integrate :func:`vector_field` for a batch of single-sector paths ``x(t)``.

    ``x0, g, eps, Tc``: broadcastable float64 arrays (any ``x0 >= 0``, including
    ``x0 > 1``; ``s(t) = ramp(t, Tc)``); ``ts``: increasing saved times from 0.
    The solver of :func:`transition`, every path with its own steps. Returns
    ``(x, ok)``: ``x`` float64[..., n_time], ``ok`` False where the solve failed.
    """
    x0, g, eps, Tc = jnp.broadcast_arrays(*(jnp.asarray(a, jnp.float64) for a in (x0, g, eps, Tc)))
    # concrete times stay numpy: a uniform grid is then computed, not gathered
    ts = (
        jnp.asarray(ts, jnp.float64)
        if isinstance(ts, jax.core.Tracer)
        else np.asarray(ts, np.float64)
    )
    T = ts[-1]
    opts = dict(save=True, quad=False, rtol=rtol, atol=atol, max_steps=max_steps)
    shape = x0.shape
    x0, g, eps, Tc = (a.reshape(-1, 1) for a in (x0, g, eps, Tc))  # one point per path
    out = _integrate(x0, dict(g=g, eps=eps, Tc=Tc), ts, _kinks(Tc, T), **opts)
    return out["buf"].reshape(*shape, -1), out["ok"].reshape(shape)


# ----------------------------------------------------------------- the transition


def transition(
    r,
    theta,
    g,
    eps,
    rho,
    Tc,
    *,
    T: float,
    n_time: int,
    save_paths: bool,
    rtol: float = RTOL,
    atol: float = ATOL,
    max_steps: int = MAX_STEPS,
    pad_paths: bool = False,
):
    r"""Coordination experiment of MODEL.md section 5 for a WHOLE BATCH of points.

    ``r, theta, g, eps``: float64[N, J]; ``rho, Tc``: float64[N]; ``T`` (years),
    ``n_time`` (saved times ``np.linspace(0, T, n_time)``) and ``save_paths`` are
    static. For every point and target ``k`` (axis 1): South starts in ``B1``
    (``x_j(0) = a_hat_j``, baseline wage ``w_B = r_1 a_hat_1 / theta_1``), and at
    ``t = 0`` all labour moves to ``k`` with cluster intensity ``s(t)`` =
    :func:`ramp` (``Tc = 0``: ``s = 1`` at once); ``x_k`` follows
    :func:`vector_field` with ``(g_k, eps_k)``, the other ``x_m = a_hat_m`` stay at
    rest. With ``theta_kS(t) = 1 + s(t) (theta_k - 1)``:

    .. math::

        w_k(t) = r_k x_k(t) \theta_{kS}(t) / \theta_k,\qquad
        \mathrm{jump}_k = w_k(0^+) / w_B,

        \mathrm{pv\_gain}_k = \rho \int_0^\infty e^{-\rho t}\Bigl(\frac{w_k(t)}{w_B}
            - 1\Bigr) dt
          = \rho c_k \int_0^T e^{-\rho t} x_k \theta_{kS}\,dt
            + e^{-\rho T} c_k x_k(T) \theta_{kS}(T) - 1,\quad
          c_k = \frac{r_k}{\theta_k w_B}

    (``w_k`` held at ``w_k(T)`` beyond ``T``; the integral by Gauss-Legendre on the
    solver's dense output of every step). ``half_life_k``: first ``t`` with
    ``1 - x_k(t) = (1 - a_hat_k) / 2``; ``t99_k``: first ``t`` with
    ``x_k(t) >= 0.99`` (``x_k(inf) = 1``); both solved by Newton on the dense
    output, so accurate to solver tolerance whatever ``n_time``; NaN if not reached
    by ``T``. ``path_feasible_k``: ``Ck`` is an equilibrium at every saved time,
    ``r_m a_hat_m / theta_m <= w_k(t)`` for all ``m != k``; with ``Tc > 0`` the
    path starts at ``w_k(0) = r_k a_hat_k / theta_k`` (no cluster yet), so this
    asks for ``Bk``-like dominance at ``t = 0``. ``breakeven_kappa = pv_gain / rho``
    (Bastable: a policy costing ``kappa`` years of baseline income passes iff
    ``kappa <= breakeven_kappa``).

    Numerics (:func:`_integrate`): adaptive Tsit5 with diffrax's PID controller,
    steps clipped to ``Tc``, where the ramp has its kink. Every point is its own
    system (its ``J`` targets share its steps, error in the max-norm over them), the
    points advanced together in one vectorised loop: a point's results are the same
    bit for bit whatever batch or chunk it is solved in, so a sweep's cube does not
    depend on its chunking. No exception ever: failures are ``status``
    bits (:data:`STATUS`); invalid points are replaced by harmless values before the
    solve. ``a_hat_1 = 0`` (``w_B = 0``): the ratios to ``w_B`` (``jump``,
    ``pv_gain``, ``breakeven_kappa``) are NaN, bit 8. ``a_hat_k = 0``: ``x_k`` stays
    0, ``w_k = 0``, bits 16 | 1 | 2.

    Returns a dict: ``jump, half_life, t99, pv_gain, breakeven_kappa``
    float64[N, J]; ``path_feasible`` bool[N, J]; ``status`` int8[N, J]; and if
    ``save_paths``: ``x_path, wage_path`` float64[N, J, n_time] (with ``pad_paths``
    followed by a few NaN times, as the solver writes them: the caller takes the
    view ``[..., :n_time]`` and XLA copies 2 x 8 N J n_time bytes less; the sweeps
    do).
    """
    f64 = jnp.float64
    r, theta, g, eps = (jnp.asarray(a, f64) for a in (r, theta, g, eps))
    rho, Tc = jnp.asarray(rho, f64), jnp.asarray(Tc, f64)
    N, J = r.shape
    if N < _MIN_ROWS:
        # XLA compiles tiny arrays differently (the crossing times moved by an ulp for
        # fewer than 4 rows on x86-64): pad with copies of the last row, so a point's
        # results stay the same bit for bit in a batch of any size
        pad = lambda a: jnp.concatenate([a, jnp.repeat(a[-1:], _MIN_ROWS - N, axis=0)])  # noqa: E731
        out = transition(
            *(pad(a) for a in (r, theta, g, eps, rho, Tc)), T=T, n_time=n_time,
            save_paths=save_paths, rtol=rtol, atol=atol, max_steps=max_steps,
            pad_paths=pad_paths,
        )  # fmt: skip
        return {k: v[:N] for k, v in out.items()}
    ts = np.linspace(0.0, float(T), int(n_time))

    finite = jnp.all(
        jnp.isfinite(r) & jnp.isfinite(theta) & jnp.isfinite(g) & jnp.isfinite(eps), axis=1
    )
    valid = (
        finite
        & jnp.all((r > 0) & (theta > 0) & (g >= 0) & (eps >= 0), axis=1)
        & jnp.isfinite(rho)
        & (rho > 0)
        & (Tc >= 0)
    )
    v2 = valid[:, None]
    r = jnp.where(v2, r, 1.0)
    theta = jnp.where(v2, theta, 2.0)
    g = jnp.where(v2, g, 0.02)
    eps = jnp.where(v2, eps, 0.1)
    rho1 = jnp.where(valid, rho, 0.05)[:, None]  # [N, 1]: per point
    Tc1 = jnp.where(valid, Tc, 0.0)[:, None]

    ah = a_hat(g, eps)
    w_B = ratio(barrier(r[:, :1] * ah[:, :1]), theta[:, :1])  # [N, 1]
    base_ok = w_B > 0
    c = ratio(r, barrier(theta * jnp.where(base_ok, w_B, 1.0)))  # r_k / (theta_k w_B)
    args = dict(g=g, eps=eps, Tc=Tc1, rho=rho1, theta=theta, valid=v2)
    T_ = ts[-1]
    levels = (0.5 * (1.0 + ah), jnp.full_like(ah, 0.99))
    opts = dict(save=save_paths, quad=True, rtol=rtol, atol=atol, max_steps=max_steps)
    out = _integrate(ah, args, ts, _kinks(Tc1, T_), levels, trim=not pad_paths, **opts)

    z_T = out["x"] * theta_S(T_, Tc1, theta)
    pv = rho1 * c * out["V"] + jnp.exp(-rho1 * T_) * c * z_T - 1.0
    jump = c * (ah * theta_S(0.0, Tc1, theta))
    half_life, t99 = out["cross"]
    b = ratio(barrier(r * ah), theta)  # r_m a_hat_m / theta_m
    other = ~jnp.eye(J, dtype=bool)
    b_other = jnp.max(jnp.where(other[None, :, :], b[:, None, :], -jnp.inf), axis=2)
    if save_paths:
        x_path = out["buf"]  # [N, J, n_time (+ pad)], NaN where invalid or never reached
        t_all = np.concatenate([ts, np.full(x_path.shape[-1] - n_time, ts[-1])])
        wage_path = wage_of(t_all, x_path, r[..., None], theta[..., None], Tc1[..., None])
        # the minimum read from the computed paths (XLA would fuse it with a second
        # evaluation of the wage formula over all N J n_time points, ~1/10 of a call)
        w_min = jnp.min(barrier(wage_path)[..., :n_time], axis=-1)
    else:
        w_min = r * out["zmin"] / theta  # the same numbers, tracked in the loop
    feasible = b_other <= w_min

    status = (
        jnp.where(jnp.isnan(half_life), HALF_LIFE_NOT_REACHED, 0)
        | jnp.where(jnp.isnan(t99), T99_NOT_REACHED, 0)
        | jnp.where(out["ok"], 0, SOLVER_FAILED)
        | jnp.where(base_ok, 0, NO_BASELINE)
        | jnp.where(ah == 0, STUCK, 0)
        | jnp.where(v2, 0, INVALID)
    )
    bad = ~(v2 & out["ok"])
    no_ratio = bad | ~base_ok
    nan = jnp.nan
    res = {
        "jump": jnp.where(no_ratio, nan, jump),
        "half_life": jnp.where(bad, nan, half_life),
        "t99": jnp.where(bad, nan, t99),
        "pv_gain": jnp.where(no_ratio, nan, pv),
        "breakeven_kappa": jnp.where(no_ratio, nan, pv / rho1),
        "path_feasible": feasible & ~bad,
        "status": status.astype(jnp.int8),
    }
    if save_paths:
        res["x_path"], res["wage_path"] = x_path, wage_path
    return res
