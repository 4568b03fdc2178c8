r"""Model ``dynamic`` (JDE section 4): learning by doing and international spillovers.

docs/models.md#dynamic (with the papers' erratum: ``min``, not ``max``). The ``coordination``
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

Parameters (per sector ``j = 1..J`` unless said otherwise), with their documented
ranges (the config's; the kernel flags a point outside as invalid input):

* ``r_j`` in ``[1e-6, 1e6]``: South's raw productivity relative to North,
  ``lam_jS / lam_jN``;
* ``theta_j`` in ``(1, 1e6]`` (the kernel: ``[1e-6, 1e6]``): static gain from a full
  cluster;
* ``g_j`` in ``[1e-12, 10]`` per year (the kernel: also 0): learning-by-doing rate;
  ``eps_j`` likewise: spillover rate (``eps_j <= g_j`` gives ``a_hat_j = 0``);
  ``eps_j T <= 1000``;
* ``rho`` in ``[1e-6, 1e6]`` per year (per point): discount rate of the
  present-value gain;
* ``Tc`` 0 or in ``[1e-6, 1e4]`` years (per point): coordination ramp,
  ``s(t) = min(1, t / Tc)`` (``Tc = 0``: ``s = 1`` from ``t = 0``); ``T`` in
  ``[1e-3, 1e4]`` years, ``n_time`` in ``[2, 100001]``.

This file holds the economics only; the ODE solver is :mod:`pipeline._ode`, which
knows nothing of wages (the vector field, the wage's multiplier and the discount rate
come in as arguments). Two kernels, pure array functions (nothing here jits or
vmaps; JAX is imported only when a kernel runs):

* :func:`economy` — one point: the defining conditions of the steady-state
  equilibria ``C1..CJ, B1..BJ`` (existence, wages, ranks and claims follow from them,
  as for every sector model);
* :func:`transition` — a whole batch: the coordination experiment for every target
  sector ``k``, solved by adaptive Tsit5, every point with its own steps, all points
  in one vectorised loop, with the crossing times and the discounted gain computed to
  solver accuracy, independent of the saved grid.

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

import enum

import numpy as np

from ._spec import (
    EQUILIBRIUM_OUTPUTS,
    MAGNITUDE,
    NUMPY,
    PRODUCTIVITY,
    Claim,
    Kernel,
    Margins,
    Model,
    Output,
    Param,
    claim_code,
    evaluate,
    jax_ops,
    need,
    per_sector,
    relative_productivity,
)
from .sectors import SECTOR_CLAIMS, THETA, corners, decreasing, sector_claims
from .sectors import coordination_requires as _theta_required
from .sectors import labels as _sector_labels


class Status(enum.IntFlag):
    """``status`` bits of :func:`transition` (a value is the bitwise OR of its flags)."""

    HALF_LIFE_NOT_REACHED = 1
    T99_NOT_REACHED = 2
    SOLVER_FAILED = 4
    BASELINE_WAGE_ZERO = 8
    A_HAT_K_ZERO = 16
    INVALID_INPUT = 32
    PATH_KNIFE_EDGE = 64


#: what each status bit means (the cube's ``status_bits`` attribute, the CLI's decoding)
STATUS_TEXT = {
    Status.HALF_LIFE_NOT_REACHED: "half_life not reached by T (NaN)",
    Status.T99_NOT_REACHED: "t99 not reached by T (NaN)",
    Status.SOLVER_FAILED: "solver failure: the point's solve did not reach T (max_steps) or "
    "went non-finite; summaries NaN, saved paths NaN from where the solve stopped",
    Status.BASELINE_WAGE_ZERO: "a_hat_1 = 0, so the baseline wage w_B = 0: jump, pv_gain, "
    "breakeven_kappa NaN",
    Status.A_HAT_K_ZERO: "a_hat_k = 0: x_k(0) = 0 is a rest point, x_k stays 0 (half_life, "
    "t99 NaN)",
    Status.INVALID_INPUT: "invalid input, outside the documented range (r, theta in [1e-6, "
    "1e6]; g, eps 0 or in [1e-12, 10]; rho in [1e-6, 1e6]; Tc 0 or in [1e-6, 1e4]; T in "
    "[1e-3, 1e4]; eps T <= 1e3; NaN): all outputs NaN, path_feasible False",
    Status.PATH_KNIFE_EDGE: "knife-edge path: the least wage along the path is within 1e-12 "
    "(relative) of the best alternative r_m a_hat_m / theta_m, so path_feasible holds "
    "with equality (True) and a rounding would decide it",
}
#: ``{0: "ok", 1: ..., 2: ...}``
STATUS = {0: "ok"} | {int(k): v for k, v in STATUS_TEXT.items()}
HALF_LIFE_NOT_REACHED = int(Status.HALF_LIFE_NOT_REACHED)
T99_NOT_REACHED = int(Status.T99_NOT_REACHED)
SOLVER_FAILED = int(Status.SOLVER_FAILED)
NO_BASELINE = int(Status.BASELINE_WAGE_ZERO)
STUCK = int(Status.A_HAT_K_ZERO)
INVALID = int(Status.INVALID_INPUT)
PATH_KNIFE = int(Status.PATH_KNIFE_EDGE)

#: ``transition`` pads smaller batches to this many points (see there).
_MIN_ROWS = 8

#: Documented ranges (MODEL's Param table, docs/models.md#dynamic-parameters), over
#: which the kernel is accurate (tests/test_dynamic.py's property test); a point
#: outside is INVALID_INPUT. ``r``, ``theta``: :data:`MAGNITUDE`; rates ``g``,
#: ``eps``: 0 or in RATE_RANGE (per year; a smaller one would underflow to
#: subnormals, which XLA flushes to 0); ``rho``; ``Tc``: 0 or in TC_RANGE (years);
#: ``T`` (years) and ``n_time`` bound in the config.
RATE_RANGE = (1e-12, 10.0)
RHO_RANGE = (1e-6, 1e6)
TC_RANGE = (1e-6, 1e4)
T_RANGE = (1e-3, 1e4)
N_TIME_MAX = 100_001
#: at most this many spillover times ``1 / eps`` in the horizon: ``eps T <= EPS_T_MAX``.
#: Near its limit the path is stiff for an explicit solver (rate ``-eps``), whose
#: steps are then held at ~3 / eps: ~0.4 steps per unit of ``eps T`` on top of the
#: transient's few hundred, ~1,100 steps in all at the bound (budget: 4,096).
EPS_T_MAX = 1000.0
_DEFAULT_T = 400.0
#: :func:`transition`'s tolerances on its variable ``e`` (:func:`_gap_form`, ``e(0) =
#: 0``): ``atol + rtol |e|`` with ``atol = ATOL_E`` times :func:`_early_scale` (1 but for
#: a large ``rho``) and ``rtol = _ode.RTOL``: relative to ``1 + |e|``, i.e. to ``x`` or
#: to the initial gap ``1 - a_hat``, and where ``rho`` is large also to ``e`` itself
#: at ``t ~ 1 / rho``, where the discounted gain is made.
ATOL_E = 3e-10

CLAIMS_LIST = (
    Claim("1", "B1 and C1 exist in steady state; no Bj with j > 1 exists"),
    Claim("2", "Ck (k > 1) exists in steady state iff r_1/r_k <= theta_1/a_hat_1"),
    Claim("3", "C1 is the best steady state, B1 the worst; existing Ck wages fall with k"),
    Claim("4", "the steady-state wage of Ck (= r_k) does not depend on theta_k"),
    Claim("5", SECTOR_CLAIMS[4].text),
    Claim("6", "every Ck of the static coordination model (r_1/r_k <= theta_1) exists in "
          "steady state"),
)  # fmt: skip
CLAIMS = tuple(c.label for c in CLAIMS_LIST)
CLAIM_TEXT = {c.label: c.text for c in CLAIMS_LIST}


def labels(J: int) -> list[str]:
    """Equilibrium labels in cube order: ``C1..CJ, B1..BJ`` (as the sector models)."""
    return _sector_labels(J)


def _xp(*arrays):
    """``jax.numpy`` if any argument is a JAX array (or tracer), else numpy."""
    for a in arrays:
        if type(a).__module__.split(".")[0] in ("jax", "jaxlib"):
            import jax.numpy as jnp

            return jnp
    return np


def _ops(*arrays):
    return jax_ops() if _xp(*arrays) is not np else NUMPY


# ----------------------------------------------------------------------- primitives


def a_hat(g, eps, ops=None):
    r"""Steady-state relative productivity without a cluster.

    .. math:: \hat a_j = \max\Bigl(0,\ 1 - \frac{g_j}{\varepsilon_j}\Bigr)

    the rest point of :func:`vector_field` with ``s = 0`` (``0`` when
    ``eps_j <= g_j``: spillovers cannot offset the missing learning, ``x_j -> 0``).
    Works elementwise on float64 arrays of any shape (numpy or JAX).
    """
    ops = ops or _ops(g, eps)
    xp = ops.xp
    g, eps = xp.asarray(g, xp.float64), xp.asarray(eps, xp.float64)
    pos = eps > g
    # (eps - g) / eps, not 1 - g / eps: to 2 ulp relative even where a_hat is tiny
    # (eps - g is exact where g / eps is in [1/2, 2])
    return xp.where(pos, ops.ratio(eps - g, xp.where(pos, eps, 1.0)), 0.0)


def ramp(t, Tc):
    r"""Cluster intensity during coordination: ``s(t) = 1`` if ``Tc == 0``, else
    ``min(1, t / Tc)`` (``t >= 0``; ``Tc = inf`` gives ``s = 0``)."""
    xp = _xp(t, Tc)
    pos = Tc > 0
    return xp.where(pos, xp.clip(t / xp.where(pos, Tc, 1.0), 0.0, 1.0), 1.0)


def theta_S(t, Tc, theta):
    r"""Realised static gain ``theta_kS(t) = 1 + s(t) (theta_k - 1)``."""
    return 1.0 + ramp(t, Tc) * (theta - 1.0)


def wage_of(t, x, r, theta, Tc):
    r"""South's wage while coordinated in ``k``: ``w = r_k (x_k theta_kS(t)) / theta_k``."""
    return r * (x * theta_S(t, Tc, theta)) / theta


def _rate(x, g, eps, s):
    """Right-hand side of :func:`vector_field` for a given cluster intensity ``s``."""
    xp = _xp(x, g, eps, s)
    return x * (g * (s - 1.0) + eps * (1.0 - xp.minimum(x, 1.0))) - eps * xp.maximum(x - 1.0, 0.0)


def vector_field(t, x, args):
    r"""Law of motion of South's relative productivity (docs/models.md#dynamic).

    .. math::

        \dot x = x\,\bigl(g\,(s(t) - 1) + \varepsilon\,(1 - \min(x, 1))\bigr)
                 - \varepsilon \max(x - 1, 0)

    which is ``x (g (s-1) + eps (1 - min(x,1)) - eps (1 - min(1/x,1)))`` with
    ``x (1 - min(1/x, 1)) = max(x - 1, 0)`` (no division, so ``x = 0`` is a
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


def _rhs(t, x, args):
    """:func:`vector_field` with ``args`` a dict (``g``, ``eps``, ``Tc``): the field the
    solver integrates."""
    return _rate(x, args["g"], args["eps"], ramp(t, args["Tc"]))


def _weight(t, w):
    """The wage's multiplier ``theta_kS(t)`` (affine in ``t`` between the ramp's kinks):
    ``w_k(t) = r_k x_k(t) theta_kS(t) / theta_k``."""
    return theta_S(t, w["Tc"], w["theta"])


def _gap_form(g, eps, ah):
    r"""The variable :func:`transition` integrates, and its crossing levels.

    With ``y = 1 - x`` and ``y_0 = g / eps`` (``= 1 - a_hat``), the transition's path
    (``x_0 = a_hat``, :func:`vector_field` below 1, where it stays) is written as

    .. math::

        x = \hat a + B e,\quad e(0) = 0,\qquad
        \dot e = (\hat a + B e)\,(\beta\, s(t) - \varepsilon\, e)

    * ``a_hat >= 1/2``, the gap form: ``e = y / y_0 - 1`` in ``[-1, 0]``,
      ``B = -y_0``, ``beta = -eps``;
    * ``a_hat < 1/2``, the level form: ``e = x / a_hat - 1 >= 0``, ``B = a_hat``,
      ``beta = g / a_hat``

    (both the logistic ``x' = x (eps - g (1 - s) - eps x)``, by ``g = eps y_0``). The
    solver's tolerances on ``e`` (``atol + rtol |e|`` with ``atol = rtol``, see
    :func:`transition`) are then relative tolerances on the smaller of ``x`` and
    ``1 - x``: the gap keeps its relative accuracy when it is 1e-12, ``x`` when
    ``a_hat`` is. ``a_hat = 0`` (``x`` stays 0) and ``g = 0`` (``x`` stays 1) are
    frozen (``B = beta = eps = 0``). The field is polynomial in ``e`` (no kink at
    ``x = 1``: the path never reaches it).

    Levels of ``e`` (``[N, J]`` each): the half-life's ``y = y_0 / 2`` (``-1/2``, or
    ``y_0 / (2 a_hat)``), and t99's ``x = 0.99`` (``0.01 / y_0 - 1``, or ``0.99 /
    a_hat - 1``); a level the path meets at ``t = 0`` is ``e = 0`` (time 0: ``g = 0``,
    or ``a_hat >= 0.99`` for t99); ``a_hat = 0``: 1, never reached. Returns
    ``(fargs, levels)``, ``fargs`` with ``x0``, ``B``, ``beta``, ``eps``.
    """
    import jax.numpy as jnp

    pos = eps > g
    y0 = jnp.where(pos, g / jnp.where(pos, eps, 1.0), 1.0)
    gap = ah >= 0.5
    stuck, top = ah == 0, y0 == 0
    frozen = stuck | top
    a1 = jnp.where(stuck, 1.0, ah)
    B = jnp.where(frozen, 0.0, jnp.where(gap, -y0, ah))
    beta = jnp.where(frozen, 0.0, jnp.where(gap, -eps, g / a1))
    half = jnp.where(gap, jnp.where(top, 0.0, -0.5), y0 / (2.0 * a1))
    # t99's level in the gap form, c / y0 - 1 with c = 0.01, as
    # (c eps - g) / g with c eps - g exact (an error-free product, and Sterbenz where c
    # eps ~ g): a path starting just below 0.99 meets it after a time proportional to
    # that small difference, which the rounding of y0 = g / eps would swamp
    pin = jax_ops().barrier
    p, err = _two_product(jnp.full_like(eps, _ONE_PERCENT[0]), eps, pin)
    g1 = jnp.where(top, 1.0, g)
    near = pin(pin(p - g1) + pin(err + _ONE_PERCENT[1] * eps)) / g1
    t99 = jnp.where(gap, jnp.where(ah >= 0.99, 0.0, jnp.minimum(near, 0.0)),
                    0.99 / a1 - 1.0)  # fmt: skip
    half, t99 = (jnp.where(stuck, 1.0, lv) for lv in (half, t99))
    fargs = dict(x0=ah, B=B, beta=beta, eps=jnp.where(frozen, 0.0, eps))
    return fargs, (half, t99)


#: the gap ``1 - x`` at t99's level ``x = 0.99``, 0.01 as a double-double ``hi + lo``
#: (the float nearest 0.01 is 2e-17 relative off, which the crossing time of a path
#: starting just below 0.99 amplifies by ``g / (0.01 eps - g)``)
_ONE_PERCENT = (0.01, -2.0816681711721684e-19)


def _two_product(a, b, pin):
    """``(p, err)`` with ``p = fl(a b)`` and ``a b = p + err`` exactly (Dekker's
    product by Veltkamp's split; every partial product is exact, so a multiply-add
    that XLA may fuse in changes nothing; the split is pinned by ``pin``, the
    kernel's :attr:`Ops.barrier`)."""

    def split(v):
        t = pin(134217729.0 * v)  # 2^27 + 1
        hi = pin(t - pin(t - v))
        return hi, v - hi

    p = pin(a * b)
    ah, al = split(a)
    bh, bl = split(b)
    err = ((pin(ah * bh - p) + ah * bl) + al * bh) + al * bl
    return p, err


def _gap_field(t, e, a):
    """The field of :func:`_gap_form`: ``e' = (x0 + B e) (beta s(t) - eps e)``."""
    return (a["x0"] + a["B"] * e) * (a["beta"] * ramp(t, a["Tc"]) - a["eps"] * e)


#: :func:`_early_scale`'s margin: ``e`` at ``t ~ 1 / rho`` to ``rtol / _EARLY`` relative
#: (the discounted gain to ~1e-9, within the 1e-8 aimed at).
_EARLY = 10.0


def _early_scale(fargs, rho, Tc):
    r"""The size of ``e`` at ``t ~ 1 / rho`` (capped at 1), where the discounted gain of a
    large ``rho`` lives: ``e ~ |e'(0)| t = a_hat |beta| t`` (``Tc = 0``), or ``~ a_hat
    |beta| t^2 / (2 Tc)`` on the ramp. :func:`transition`'s absolute tolerance on ``e``
    is ``rtol`` times this, so ``e`` is relatively accurate there too."""
    import jax.numpy as jnp

    rate = jnp.abs(fargs["x0"] * fargs["beta"]) / rho
    ramp_part = jnp.where(Tc > 0, jnp.minimum(1.0, 1.0 / (2.0 * rho * jnp.where(Tc > 0, Tc, 1.0))),
                          1.0)  # fmt: skip
    return jnp.clip(_EARLY * rate * ramp_part, 1e-20, 1.0)


def _in(v, lo, hi):
    """``lo <= v <= hi`` (False for NaN)."""
    return (v >= lo) & (v <= hi)


def _subnormal(v):
    """``v`` is a subnormal number, read from its bits (exponent 0, mantissa not): XLA's
    CPU flushes denormals, so it compares a subnormal input as 0 (``v == 0``)."""
    import jax

    bits = jax.lax.bitcast_convert_type(v, np.int64)
    exp0 = (bits & np.int64(0x7FF0000000000000)) == 0
    return exp0 & ((bits & np.int64(0x000FFFFFFFFFFFFF)) != 0)


def _rate_ok(v):
    """A rate ``g`` or ``eps`` in its documented range: 0, or in ``RATE_RANGE``."""
    return ~_subnormal(v) & ((v == 0) | _in(v, *RATE_RANGE))


def _kinks(Tc, T):
    """Where the ramp ``s(t)`` has its kink: ``Tc`` inside ``(0, T)``, else ``T``."""
    xp = _xp(Tc)
    return xp.where((Tc > 0) & (Tc < T), Tc, T)


def logistic(t, x0, g, eps, s=1.0):
    r"""Closed form while ``x <= 1`` at constant ``s`` (docs/models.md#dynamic).

    .. math:: q = \varepsilon + g (s - 1),\quad K = q/\varepsilon,\quad
              x(t) = \frac{K}{1 + (K / x_0 - 1) e^{-q t}}

    numpy or jax arrays; the reference for the integrator, not a replacement.
    """
    xp = _xp(t, x0, g, eps, s)
    q = eps + g * (s - 1.0)
    K = q / eps
    return K / (1.0 + (K / x0 - 1.0) * xp.exp(-q * t))


# -------------------------------------------------------------------- steady states


def _names_C(j, k, scale):
    return (
        f"C{j}: r_{k}/r_{j} = theta_{k}/a_hat_{k}",
        rf"$r_{{{k}}}/r_{{{j}}} = \theta_{{{k}}}/\hat a_{{{k}}}$",
    )


def _names_B(j, k):
    return (
        f"B{j}/B{k}: r_{j} a_hat_{j}/theta_{j} = r_{k} a_hat_{k}/theta_{k}",
        rf"$r_{{{j}}}\hat a_{{{j}}}/\theta_{{{j}}} = r_{{{k}}}\hat a_{{{k}}}/\theta_{{{k}}}$",
    )


def economy(ops, r, theta, g, eps, **_):
    r"""Steady-state equilibria of ``dynamic`` (one point, or arrays of points).

    ``r, theta, g, eps``: float64[..., J]. With ``b_k = r_k a_hat_k / theta_k``
    (the wage at which South breaks even in ``k`` without a cluster):

    * ``Cj``: wage ``r_j`` (``x_j -> 1``), exists iff ``b_k <= r_j`` for all ``k != j``;
    * ``Bj``: wage ``b_j``, exists iff ``b_k <= b_j`` for all ``k``.

    The conditions are :func:`pipeline.models.sectors.corners`, shared with the static
    models. ``a_hat = 0`` in two or more sectors makes their ``Bj`` wages ``0`` and
    tie: a knife-edge continuum (flagged, the ``Bj`` not stable, never an exception).
    Income gap ``1 / w``: ``(theta_1 / a_hat_1) / r_1`` in ``B1``, ``1 / r_1`` in ``C1``.
    Also returns ``a_hat`` (float64[J]) as an extra output.
    """
    J = r.shape[-1]
    ah = a_hat(g, eps, ops)
    b = ops.ratio(ops.barrier(r * ah), theta)
    w_C = r
    m = corners(Margins(ops), b, w_C, J, names_C=_names_C, names_B=_names_B)
    # reference lines of the phase diagrams (no equilibrium's condition): where learning
    # outruns spillovers (a_hat_k = 0, B1's wage 0), and the static condition (*)
    for k in range(J):
        K = k + 1
        m.add(None, eps[..., k], ">", g[..., k], f"a_hat_{K} = 0: eps_{K} = g_{K}",
              rf"$\varepsilon_{{{K}}} = g_{{{K}}}$ ($\hat a_{{{K}}} = 0$)")  # fmt: skip
    static = ops.ratio(r, theta)
    for j in range(J):
        for k in range(J):
            if k != j:
                J1, K1 = j + 1, k + 1
                m.add(None, static[..., k], "<=", r[..., j],
                      f"C{J1} static: r_{K1}/r_{J1} = theta_{K1}",
                      rf"static $r_{{{K1}}}/r_{{{J1}}} = \theta_{{{K1}}}$")  # fmt: skip
    wage = ops.xp.concatenate([w_C, b], axis=-1)
    return {"margins": m, "wage": wage, "aux": {"b": b, "a_hat": ah}, "extra": {"a_hat": ah}}


def claims(ops, inp, out, aux):
    """Claims 1-6 (module docstring) as int8[6] codes at one point."""
    xp = ops.xp
    r, theta, g, eps = inp["r"], inp["theta"], inp["g"], inp["eps"]
    ah, b = aux["a_hat"], aux["b"]
    common = xp.all(g == g[0]) & xp.all(eps == eps[0])
    applicable = common & decreasing(ops, r, b) & xp.all(ah > 0) & ~out["knife_edge"]
    star = ops.ratio(r[0], r[1:]) <= ops.ratio(theta[0], ah[0])
    codes = sector_claims(ops, r, b, r, out, applicable, star)
    static_C = ops.ratio(r[0], r[1:]) <= theta[0]
    c6 = xp.all(xp.where(static_C, out["exists"][1 : r.shape[-1]], True))
    return xp.stack(codes + [claim_code(ops, c6, applicable)])


def steady_state(r, theta, g, eps):
    """The steady-state equilibria at ONE point (``r, theta, g, eps``: float64[J]), as
    a sweep computes them: :func:`economy` classified and summarised, with the claims
    and ``a_hat`` (:func:`pipeline.models._spec.evaluate`)."""
    ops = _ops(r, theta, g, eps)
    xp = ops.xp
    inp = {k: xp.asarray(v, xp.float64) for k, v in dict(r=r, theta=theta, g=g, eps=eps).items()}
    return evaluate(MODEL, ops, labels(inp["r"].shape[-1]), inp)


# --------------------------------------------------------------------- the solver


def integrate_path(x0, g, eps, Tc, ts, *, rtol=None, atol=None, max_steps=None):
    r"""Integrate :func:`vector_field` for a batch of single-sector paths ``x(t)``.

    ``x0, g, eps, Tc``: broadcastable float64 arrays (any ``x0 >= 0``, including
    ``x0 > 1``; ``s(t) = ramp(t, Tc)``); ``ts``: increasing saved times from 0.
    The solver of :func:`transition` (:func:`pipeline._ode.integrate`), every path with
    its own steps. Returns ``(x, ok)``: ``x`` float64[..., n_time], ``ok`` False where
    the solve failed.
    """
    import jax
    import jax.numpy as jnp

    from .. import _ode

    rtol = _ode.RTOL if rtol is None else rtol
    atol = _ode.ATOL if atol is None else atol
    max_steps = _ode.MAX_STEPS if max_steps is None else max_steps
    x0, g, eps, Tc = jnp.broadcast_arrays(*(jnp.asarray(a, jnp.float64) for a in (x0, g, eps, Tc)))
    # concrete times stay numpy: a uniform grid is then computed, not gathered
    ts = (
        jnp.asarray(ts, jnp.float64)
        if isinstance(ts, jax.core.Tracer)
        else np.asarray(ts, np.float64)
    )
    T = ts[-1]
    opts = dict(save=True, quad=False, rtol=rtol, atol=atol, max_steps=max_steps, kink_at=1.0)
    shape = x0.shape
    x0, g, eps, Tc = (a.reshape(-1, 1) for a in (x0, g, eps, Tc))  # one point per path
    out = _ode.integrate(x0, _rhs, dict(g=g, eps=eps, Tc=Tc), ts, _kinks(Tc, T), **opts)
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
    rtol: float | None = None,
    atol: float | None = None,
    max_steps: int | None = None,
    pad_paths: bool = False,
):
    r"""The coordination experiment (docs/models.md#dynamic) for a WHOLE BATCH of points.

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
          = (\mathrm{jump}_k - 1) + \int_0^T e^{-\rho t} \frac{w_k'(t)}{w_B} dt

    (by parts; ``w_k`` held at ``w_k(T)`` beyond ``T``). The last integral is a sum
    of non-negative terms, no cancellation whatever ``rho`` (see the code): the
    ramp's ``int e^{-rho t} theta_kS'`` in closed form, and ``int e^{-rho t} (e
    theta_kS)'`` (:func:`_gap_form`) from the derivative of the solver's dense output
    of every step, exact in the discount for any ``rho h``
    (:func:`pipeline._ode._exp_moments`). ``half_life_k``:
    first ``t`` with ``1 - x_k(t) = (1 - a_hat_k) / 2``; ``t99_k``: first ``t`` with
    ``x_k(t) >= 0.99`` (``x_k(inf) = 1``), 0 where ``a_hat_k >= 0.99``; both solved
    by Newton on the dense output, so accurate to solver tolerance whatever
    ``n_time``; NaN if not reached by ``T``. ``path_feasible_k``: ``Ck`` is an equilibrium at every saved time,
    ``r_m a_hat_m / theta_m <= w_k(t)`` for all ``m != k``; with ``Tc > 0`` the
    path starts at ``w_k(0) = r_k a_hat_k / theta_k`` (no cluster yet), so this
    asks for ``Bk``-like dominance at ``t = 0``. ``breakeven_kappa = pv_gain / rho``
    (Bastable: a policy costing ``kappa`` years of baseline income passes iff
    ``kappa <= breakeven_kappa``).

    Numerics (:func:`pipeline._ode.integrate`): adaptive Tsit5 with diffrax's PID
    controller on the variable of :func:`_gap_form` (relative accuracy in both ``x``
    and the gap ``1 - x``), steps clipped to ``Tc``, where the ramp has its kink;
    accurate to 1e-8 over the documented ranges (tests/test_dynamic_accuracy.py). Every point is its own
    system (its ``J`` targets share its steps, error in the max-norm over them), the
    points advanced together in one vectorised loop: a point's results are the same
    bit for bit whatever batch or chunk it is solved in, so a sweep's cube does not
    depend on its chunking. No exception ever: failures are ``status``
    bits (:class:`Status`); invalid points (outside the documented ranges:
    :data:`MAGNITUDE`, :data:`RATE_RANGE`, :data:`RHO_RANGE`, :data:`TC_RANGE`,
    :data:`T_RANGE`, ``eps T <= EPS_T_MAX``; subnormal numbers, which XLA reads as 0,
    included) are replaced by harmless values before the solve, bit 32. ``a_hat_1 = 0`` (``w_B = 0``): the ratios to ``w_B`` (``jump``,
    ``pv_gain``, ``breakeven_kappa``) are NaN, bit 8. ``a_hat_k = 0``: ``x_k`` stays
    0, ``w_k = 0``, bits 16 | 1 | 2; where every ``a_hat`` is 0 the path condition
    reads ``0 <= 0``: an equality, so ``path_feasible`` is True with bit 64 as well.

    Returns a dict: ``jump, half_life, t99, pv_gain, breakeven_kappa``
    float64[N, J]; ``path_feasible`` bool[N, J]; ``status`` int8[N, J]; and if
    ``save_paths``: ``x_path, wage_path`` float64[N, J, n_time] (with ``pad_paths``
    followed by a few NaN times, as the solver writes them: the caller takes the
    view ``[..., :n_time]`` and XLA copies 2 x 8 N J n_time bytes less; the sweeps
    do).
    """
    import jax.numpy as jnp

    from .. import _ode

    f64 = jnp.float64
    ops = jax_ops()
    ratio, barrier = ops.ratio, ops.barrier
    rtol = _ode.RTOL if rtol is None else rtol
    atol = ATOL_E if atol is None else atol
    max_steps = _ode.MAX_STEPS if max_steps is None else max_steps
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

    valid = jnp.all(
        _in(r, *MAGNITUDE) & _in(theta, *MAGNITUDE) & _rate_ok(g) & _rate_ok(eps), axis=1
    ) & _in(rho, *RHO_RANGE) & ~_subnormal(Tc) & ((Tc == 0) | _in(Tc, *TC_RANGE))  # fmt: skip
    valid = valid & (jnp.max(eps, axis=1) * float(T) <= EPS_T_MAX)
    valid = valid & (T_RANGE[0] <= float(T) <= T_RANGE[1])
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
    T_ = ts[-1]
    # the solved variable e (_gap_form): x = a_hat + B e, e(0) = 0; its error judged
    # relative to max(|e|, scale) (scale 1, or smaller for a large rho), and the first
    # step chosen as for 1 + e
    fargs, levels = _gap_form(g, eps, ah)
    B = fargs["B"]
    wargs = dict(Tc=Tc1, theta=theta)
    atol_e = atol * _early_scale(fargs, rho1, Tc1)
    out = _ode.integrate(
        jnp.zeros_like(ah), _gap_field, dict(fargs, Tc=Tc1), ts, _kinks(Tc1, T_), levels,
        weight=_weight, wargs=wargs, rho=rho1, valid=v2, save_map=(ah, B),
        init_shift=jnp.ones_like(ah), save=save_paths, quad="rate", rtol=rtol, atol=atol_e,
        max_steps=max_steps, trim=not pad_paths,
    )  # fmt: skip

    # pv_gain = (jump - 1) + D, by parts D = int_0^T e^{-rho t} w'(t) / w_B dt: with
    # w / w_B = c (a_hat + B e) theta_S, D = c (a_hat Phi + B V), Phi = int_0^T e^{-rho t}
    # theta_S' dt (closed form), V = int_0^T e^{-rho t} (e theta_S)' dt (the solver's,
    # quad="rate"): a sum of non-negative terms, no cancellation whatever rho
    # jump_k = r_k a_k theta_1 / (r_1 a_1 Theta_k), Theta_k = theta_k with a ramp (no
    # cluster yet at t = 0) and 1 without (theta_S(0) = theta_k cancels); jump - 1 as
    # (num - den) / den, not from the rounded jump: a small pv_gain at a tie would be
    # all rounding. The baseline target with a ramp is a tie by construction (jump =
    # 1): exactly 0 there, whatever XLA fuses (a multiply-add may keep the rounding of
    # one product of num - den, ~4e-17 for equal products); elsewhere a tie costs a
    # few ulp of jump (the conditioning of jump - 1 in the inputs)
    ramp_on = Tc1 > 0
    th0 = jnp.where(ramp_on, 1.0, theta)
    jump = c * (ah * th0)
    num = barrier(r * ah) * theta[:, :1]
    den = barrier(r[:, :1] * ah[:, :1]) * jnp.where(ramp_on, theta, 1.0)
    jump_m1 = ratio(num - den, jnp.where(base_ok, den, 1.0))
    jump_m1 = jnp.where(ramp_on & (jnp.arange(J) == 0), 0.0, jump_m1)
    tau = jnp.minimum(Tc1, T_)
    Tc_1 = jnp.where(ramp_on, Tc1, 1.0)
    Phi = jnp.where(ramp_on, (theta - 1.0) * (-jnp.expm1(-rho1 * tau) / rho1 / Tc_1), 0.0)
    D = c * (ah * Phi + B * out["V"])
    pv = jump_m1 + D
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
    # within the knife band the condition holds with equality (as every condition of the
    # models, docs/models.md#knife-edge-points): feasible, and flagged (e.g. Tc = 0 and
    # r_m / r_k = theta_m with common rates: w_k(0) = b_m exactly, which rounding would
    # otherwise decide point by point)
    # 0 = 0 (every a_hat 0: the path's wage and every alternative are 0) is an equality
    # too, exact: feasible (0 <= 0) and flagged like any other
    pos = (b_other > 0) & (w_min > 0) & jnp.isfinite(b_other)
    both_zero = (b_other == 0) & (w_min == 0)
    path_knife = (pos & ops.near(w_min, jnp.where(pos, b_other, 1.0))) | both_zero
    feasible = (b_other <= w_min) | path_knife

    S = Status
    status = (
        jnp.where(jnp.isnan(half_life), int(S.HALF_LIFE_NOT_REACHED), 0)
        | jnp.where(jnp.isnan(t99), int(S.T99_NOT_REACHED), 0)
        | jnp.where(out["ok"], 0, int(S.SOLVER_FAILED))
        | jnp.where(base_ok, 0, int(S.BASELINE_WAGE_ZERO))
        | jnp.where(ah == 0, int(S.A_HAT_K_ZERO), 0)
        | jnp.where(v2, 0, int(S.INVALID_INPUT))
        | jnp.where(path_knife & v2 & out["ok"], int(S.PATH_KNIFE_EDGE), 0)
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


# ----------------------------------------------------------------- the declaration


def inputs(p: dict[str, np.ndarray], J: int) -> dict[str, np.ndarray]:
    """``r, theta, g, eps`` float64[N, J] (``g``, ``eps`` scalar for all sectors or per
    sector), ``rho``, ``Tc`` float64[N]."""
    return {
        "r": relative_productivity(p, J),
        "theta": per_sector(p, "theta_{j}", J),
        "g": per_sector(p, "g_{j}", J, scalar="g"),
        "eps": per_sector(p, "eps_{j}", J, scalar="eps"),
        "rho": p["rho"],
        "Tc": p["Tc"],
    }


def requires(given: set[str], J: int) -> list[tuple[str, str]]:
    out = _theta_required(given, J)
    for base in ("g", "eps"):
        per = {f"{base}_{j}" for j in range(1, J + 1)} & given
        if base in given and per:
            out.append((f"params.{base}", f"give {base} or {base}_j per sector, not both"))
        elif base not in given and len(per) < J:
            missing = sorted({f"{base}_{j}" for j in range(1, J + 1)} - per)
            out.append(
                need(base, f"give {base} (all sectors) or every {base}_j; missing {missing}")
            )
    return out


def check(values, given: set[str], J: int) -> list[tuple[str, str]]:
    """``eps_j T <= EPS_T_MAX`` over the whole grid (its corners)."""
    names = ["eps"] if "eps" in given else [f"eps_{j}" for j in range(1, J + 1) if
                                            f"eps_{j}" in given]  # fmt: skip
    if not names:
        return []
    T = float(values(["T"])["T"][0]) if "T" in given else _DEFAULT_T
    eps = max(float(np.max(values([n])[n])) for n in names)
    if eps * T > EPS_T_MAX:
        field = "params.T" if "T" in given else f"params.{names[0]}"
        return [(field, f"eps T must be <= {EPS_T_MAX:g} (the horizon at most {EPS_T_MAX:g} "
                 f"spillover times 1/eps, which the solver's step budget covers); it is "
                 f"{eps:g} x {T:g} = {eps * T:g}: shorten T or lower eps")]  # fmt: skip
    return []


def _static(spec) -> dict:
    return {
        "T": float(spec.fixed["T"]),
        "n_time": int(spec.fixed["n_time"]),
        "save_paths": bool(spec.save_paths),
    }


def _batch(inp, *, T, n_time, save_paths):
    return transition(
        inp["r"], inp["theta"], inp["g"], inp["eps"], inp["rho"], inp["Tc"],
        T=T, n_time=n_time, save_paths=save_paths,
        pad_paths=True,  # trimmed by a view in _post
    )  # fmt: skip


def _post(out, *, n_time, **_):
    """Saved paths cut to ``n_time`` times: a view (the kernel returns them as its loop
    wrote them, see ``transition(pad_paths=True)``)."""
    for k in ("x_path", "wage_path"):
        if k in out:
            out[k] = out[k][..., :n_time]
    return out


def _dims(spec) -> dict:
    J = spec.J
    out = {
        "sector": (np.arange(1, J + 1), {"long_name": "sector j"}),
        "target": (np.arange(1, J + 1), {"long_name": "sector k where South coordinates at t = 0"}),
    }
    if spec.save_paths:
        n_time = int(spec.fixed["n_time"])
        out["time"] = (
            np.linspace(0.0, spec.fixed["T"], n_time),
            {"long_name": "time since coordination", "units": "year"},
        )
    return out


_T = ("target",)
OUTPUTS = EQUILIBRIUM_OUTPUTS + (
    Output("a_hat", ("sector",), "float64", np.nan,
           "steady-state relative productivity without a cluster", "1"),
    Output("jump", _T, "float64", np.nan, "static wage jump w(0+)/w_B on coordinating", "1"),
    Output("half_life", _T, "float64", np.nan, "time until the gap 1 - x_k halves", "year"),
    Output("t99", _T, "float64", np.nan, "time until x_k reaches 99% of its limit", "year"),
    Output("pv_gain", _T, "float64", np.nan,
           "annuity-equivalent income gain over staying in B1", "1",
           comment="in units of the baseline income w_B"),
    Output("breakeven_kappa", _T, "float64", np.nan, "Bastable break-even cost pv_gain/rho",
           "year", comment="in years of baseline income"),
    Output("path_feasible", _T, "bool", False, "C_k is an equilibrium at every saved time"),
    Output("status", _T, "int8", -1, "transition status (0 = ok)", flags=Status,
           flag_text=STATUS_TEXT),
    Output("x_path", ("target", "time"), "float64", np.nan,
           "relative productivity x_k(t) = A_kS/A_kN", "1", paths=True),
    Output("wage_path", ("target", "time"), "float64", np.nan,
           "South's wage on the transition", "1", paths=True,
           comment="in units of North's wage"),
)  # fmt: skip

MODEL = Model(
    name="dynamic",
    title="learning by doing and international spillovers",
    source="JDE section 4",
    anchor="dynamic",
    params=PRODUCTIVITY
    + (
        THETA,
        Param(
            "g",
            "learning-by-doing rate (all sectors)",
            "g",
            lo=0.0,
            floor=RATE_RANGE[0],
            hi=RATE_RANGE[1],
            units="year-1",
            example=0.02,
        ),
        Param(
            "eps",
            "strength of international spillovers (all sectors)",
            "\\varepsilon",
            lo=0.0,
            floor=RATE_RANGE[0],
            hi=RATE_RANGE[1],
            units="year-1",
            example=0.05,
        ),
        Param(
            "g_{j}",
            "learning-by-doing rate in sector {j}",
            "g_{{j}}",
            lo=0.0,
            floor=RATE_RANGE[0],
            hi=RATE_RANGE[1],
            units="year-1",
        ),
        Param(
            "eps_{j}",
            "international spillovers in sector {j}",
            "\\varepsilon_{{j}}",
            lo=0.0,
            floor=RATE_RANGE[0],
            hi=RATE_RANGE[1],
            units="year-1",
        ),
        Param(
            "rho",
            "discount rate",
            "\\rho",
            lo=0.0,
            floor=RHO_RANGE[0],
            hi=RHO_RANGE[1],
            default=0.05,
            units="year-1",
        ),
        Param(
            "T",
            "horizon of the transition",
            "T",
            lo=0.0,
            floor=T_RANGE[0],
            hi=T_RANGE[1],
            default=_DEFAULT_T,
            sweep=False,
            setting=True,
            units="year",
        ),
        Param(
            "n_time",
            "number of saved times",
            "n_{time}",
            lo=2.0,
            lo_open=False,
            hi=float(N_TIME_MAX),
            default=401.0,
            sweep=False,
            integer=True,
            setting=True,
        ),
        Param(
            "Tc",
            "years over which coordination ramps up (0: at once)",
            "T_c",
            lo=0.0,
            lo_open=False,
            floor=TC_RANGE[0],
            hi=TC_RANGE[1],
            default=0.0,
            units="year",
        ),
    ),  # fmt: skip
    labels=labels,
    claims_list=CLAIMS_LIST,
    inputs=inputs,
    requires=requires,
    check=check,
    economy=economy,
    claims=claims,
    outputs=OUTPUTS,
    extra_dims=_dims,
    kernel=Kernel(batch=_batch, static=_static, slice=None, threads=True, post=_post),
    figures=("phase", "welfare", "income-gap", "paths"),
    rate=2.5e4,
    compile_s=10.0,  # cold, 2-core VM: issue 20 measured 12 s (3.7 s cached)
    expects="{r_j}, {theta_j}, g and eps (or g_j, eps_j); optional rho, T, n_time, Tc",
)
