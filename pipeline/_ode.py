r"""Adaptive Tsit5 for a batch of small ODE systems, every system with its own steps.

The integrator of the dynamic model (:mod:`pipeline.models.dynamic`), which knows
nothing of wages or productivity: it is given a vector field, a weight ``m(t)`` that
is affine in ``t`` between the given kinks, and a discount rate, and returns the
saved paths ``x(t)`` (or an affine image of them), the running minimum of ``x m(t)``
over the saved times, the discounted integral ``int e^{-rho t} x(t) m(t) dt`` (or of
``(x m)'``), exact in the discount for any step, and the first crossing times of given
levels, all on the solver's dense output.

It is diffrax's Tsit5 (tableau and dense output) and diffrax's PID step-size
controller, written out as one vectorised loop over many points (``diffeqsolve`` has
no per-step hook, see :func:`_integrate`). Written by hand for speed, and isolated
here behind :func:`integrate` (:data:`DIFFRAX`: the diffrax minor series whose
internals it mirrors; pyproject pins it, and tests check every piece against
diffrax's own ``Tsit5.step``, ``PIDController`` and ``diffeqsolve``, and against
scipy's ``solve_ivp``).
"""

from __future__ import annotations

import functools
import math

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from . import _jax  # noqa: F401  (float64 on)
from .models._spec import jax_ops

#: the diffrax series whose Tsit5 tableau, interpolation and PID arithmetic this mirrors
DIFFRAX = "0.7"
#: Default tolerances (max-norm over a point's J paths) and step budget per point.
RTOL, ATOL, MAX_STEPS = 3e-10, 1e-12, 4096

_SOLVER = dfx.Tsit5()
_OPS = jax_ops()

barrier = _OPS.barrier


def _tsit5_poly() -> np.ndarray:
    """Tsit5's dense-output weights as polynomials: ``b_i(u) = sum_p B[i, p] u^(p+1)``.

    Read off diffrax's own ``Tsit5.interpolation_cls`` (``y0 = 0``, ``k = I``) at four
    nodes, so saving, crossing times and quadrature all use exactly the solver's
    interpolant.
    """
    u = np.array([0.25, 0.5, 0.75, 1.0])
    with jax.ensure_compile_time_eval():  # numbers, also if first imported inside a trace
        ip = dfx.Tsit5.interpolation_cls(
            t0=0.0, t1=1.0, y0=jnp.zeros(7), y1=jnp.zeros(7), k=jnp.eye(7, dtype=jnp.float64)
        )
        b = np.stack([np.asarray(ip.evaluate(ui)) for ui in u])  # [node, stage]
    V = np.stack([u ** (p + 1) for p in range(4)], axis=1)
    B = np.linalg.solve(V, b).T  # [stage, power]
    B[np.abs(B) < 1e-12] = 0.0  # exact zeros (b_i(u) = O(u^2) for i > 1), not round-off
    return B


_B = _tsit5_poly()
_TABLEAU = dfx.Tsit5.tableau


def _tsit5_step(field, ta, h, x, f0, args, fence=None):
    """One Tsit5 step of ``dx/dt = field(t, x, args)`` from ``(ta, x)`` of length ``h``
    (diffrax's tableau, FSAL).

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
        f = field(ta + float(ci) * h, y, args)
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
#: Paths within this distance of x = 1 at a step's start cross the kink unclipped.
_KINK_TOL = 1e-8
_MOMENT_SWITCH = 1.5


def _series(n):
    """``m_{n-1}(a) = int_0^1 u^(n-1) e^{-a u} du = sum_k (-a)^k / (k! (k + n))``: the
    coefficients, 22 terms (the rest is below 1e-17 for ``a <= _MOMENT_SWITCH``)."""
    return [(-1.0) ** k / (math.factorial(k) * (k + n)) for k in range(22)]


def _exp_moments(rho, ta, h, n=5):
    r"""``M_q = int_0^1 u^q e^{-rho (ta + u h)} du``, ``q = 0..n-1``, elementwise, to
    ~2e-14 relative for every ``a = rho h >= 0``.

    With ``m_q(a) = int_0^1 u^q e^{-a u} du`` (so ``M_q = e^{-rho ta} m_q(a)``):
    ``m_q = (q m_{q-1} - e^{-a}) / a`` from ``m_0 = (1 - e^{-a}) / a``. Upwards this
    recurrence is stable for large ``a`` and loses ``(q / a)``-fold per step for small
    ``a``; downwards, from ``m_{n-1}`` by its power series, the other way round. So:
    for ``a <= 1.5`` the series and the downward recurrence (error ~1e-15), beyond the
    upward one (~2e-14 at ``a = 1.5``, 1e-15 from ``a = 4``). Exact integrals of the
    dense output times the discount, whatever ``rho h``: a large discount rate needs no
    small steps (a step with ``rho h >> 1`` sees its start only, as it should).
    """
    a = rho * h
    small = a <= _MOMENT_SWITCH
    ea = jnp.exp(-a)
    c = _series(n)
    top = functools.reduce(lambda acc, ck: acc * a + ck, reversed(c[:-1]), jnp.full_like(a, c[-1]))
    down = [top]
    for q in range(n - 1, 0, -1):
        down.append((a * down[-1] + ea) * (1.0 / q))
    down = down[::-1]
    # upward (a > 1.5; a kept > 1.5 where it is not used)
    a1 = jnp.where(small, 2.0, a)
    inv = 1.0 / a1
    ea1 = jnp.where(small, np.exp(-2.0), ea)
    up = [-jnp.expm1(-a1) * inv]
    for q in range(1, n):
        up.append((q * up[-1] - ea1) * inv)
    e0 = barrier(jnp.exp(-rho * ta))
    return [e0 * jnp.where(small, d, u) for d, u in zip(down, up, strict=True)]


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


def _cross_time(field, ta, h, x_a, args, level, sign0):
    """When a path crosses ``level`` in its step ``(ta, h)`` from ``x_a`` (elementwise):
    the step taken again (the same arithmetic as in the loop, stages fenced alike, so
    that XLA compiles it alike for any batch size), then :func:`_cross` on its dense
    output. Recording three numbers per path in the loop, not the step's eight, halves
    what the loop writes for each level."""
    fence = _fence_pred(ta)
    x_b, _, k, _ = _tsit5_step(field, ta, h, x_a, field(ta, x_a, args), args, fence=fence)
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


def integrate(
    x0,
    field,
    fargs,
    ts,
    kinks,
    levels=(),
    *,
    weight=None,
    wargs=None,
    rho=None,
    valid=None,
    kink_at: float | None = None,
    save_map=None,
    init_shift=None,
    save: bool,
    quad: bool | str,
    rtol: float = RTOL,
    atol=ATOL,
    max_steps: int = MAX_STEPS,
    trim: bool = True,
):
    r"""Adaptive Tsit5 solve of ``dx/dt = field(t, x, fargs)`` for a batch of points,
    every point with its own steps.

    ``x0``: float64 ``[N, J]`` (a point's ``J`` paths share its steps, error in the
    max-norm over them); ``fargs``: a dict of ``[N, J]`` or ``[N, 1]`` arrays, the
    field's arguments; ``weight(t, wargs)``: a multiplier ``m(t)`` of the paths,
    affine in ``t`` on every step (the ``kinks`` are step ends), with ``wargs`` a dict
    of ``[N, J]``/``[N, 1]`` arrays; ``rho`` ``[N, 1]``: the discount rate (``quad``);
    ``valid`` ``[N, 1]`` (paths saved as NaN where False); ``kink_at``: a level of ``x``
    where the field has a kink (steps are not let across it); ``kinks`` ``[N, n_kinks]``
    (times each point's steps must end at, ``step_ts``); ``levels``: ``[N, J]``
    arrays. Every point is its own system with
    its own time, step size and controller, all advanced together in one vectorised
    loop until the last one reaches ``T`` (a point that is done stands still). A
    point's results are then those it would get solved alone, bit for bit, whatever
    else is in the batch.

    ``atol``: a number or ``[N, J]`` (per path). ``init_shift``: None, or ``[N, J]``:
    the first step is diffrax's ``PIDController.init`` for the state ``x + init_shift``
    (for a state that starts at 0 but whose error is to be judged as if it started at
    the shift, e.g. a deviation from 1; without it diffrax falls back to 1e-6).
    ``dtmax = T / _MIN_STEPS``. ``save_map``: None, or ``(A, B)`` (``[N, J]``
    arrays): what is saved and minimised is then the affine image ``X = A + B x`` of
    the state (a model that integrates a transformed variable, e.g. a scaled
    distance to a limit for relative accuracy, saves its own variable at no extra
    pass over the paths). After each accepted step, on the solver's dense output of
    that step (diffrax's Tsit5 interpolant in power form, :func:`_dense_coeffs`):

    * ``X`` (``= x`` without ``save_map``) at the ``ts`` inside it (as
      ``SaveAt(ts=...)``) into ``buf`` if ``save`` (times a failed solve never reached
      stay NaN; paths where ``valid`` is False are saved as NaN), else the running
      minimum over them of ``z = X m(t)`` (``zmin``; ``z = X`` without a weight);
    * if ``quad``: ``V += int_step e^{-rho t} x(t) m(t) dt`` (of the state ``x``, not
      ``X``; ``m = 1`` without a weight), exactly for the step's dense output
      (:func:`_exp_moments`, any ``rho h``); with ``quad="rate"`` instead
      ``V += int_step e^{-rho t} (x m)'(t) dt``, from the derivative of the dense
      output (relatively accurate where ``x m`` has moved little from its start,
      which the integral of ``x m`` is not: ``int_0^T e^{-rho t} (x m)' dt`` is
      ``rho int_0^T e^{-rho t} (x m - x(0) m(0)) dt + e^{-rho T} (x m - x(0) m(0))(T)``
      without the cancellation). The weight is read inside each step (a weight that
      jumps at a kink, a step end, is affine on each side);
    * per level in ``levels``, the step in which the path first crosses it; the
      crossing time is solved once, after the loop, on that step (:func:`_cross`).

    With ``kink_at``, a step in which a path crosses that level is rejected and
    retried up to the first such crossing (an event in all but name), so that no step
    straddles the field's kink (the dynamic model's ``min(x, 1)`` in
    ``integrate_path``, whose paths may start above 1).

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
    valid = jnp.ones((N, 1), bool) if valid is None else valid

    def tr(d):  # [N, ...] -> [..., N]
        return None if d is None else {k: v.T for k, v in d.items()}

    # points on the LAST axis, [J, N]: XLA's CPU loops vectorise along the minor
    # dimension, and with [N, J] that is J = 2 (the step ran ~3x slower)
    out = _solve(
        x0.T, field, tr(fargs), ts, kinks.T, tuple(L.T for L in levels),
        weight=weight, wargs=tr(wargs), rho=None if rho is None else rho.T, valid=valid.T,
        kink_at=kink_at, save_map=None if save_map is None else tuple(a.T for a in save_map),
        init_shift=None if init_shift is None else init_shift.T, save=save, quad=quad,
        rtol=rtol, atol=jnp.broadcast_to(jnp.asarray(atol, x0.dtype).T, x0.T.shape),
        max_steps=max_steps,
    )  # fmt: skip
    return dict(
        out, x=out["x"].T, zmin=out["zmin"].T, V=out["V"].T, ok=out["ok"][:, None],
        buf=out["buf"][..., : len(ts)] if trim else out["buf"],
        cross=tuple(c.T for c in out["cross"]),
    )  # fmt: skip


def _solve(x0, field, args, ts, kinks, levels, *, weight, wargs, rho, valid, kink_at, save_map,
           init_shift, save, quad, rtol, atol, max_steps):  # fmt: skip
    """:func:`integrate`'s loop, points on the last axis: ``x0``, ``levels``, ``args``,
    ``wargs``, ``rho``, ``valid`` ``[J or 1, N]``, ``kinks`` ``[n_kinks, N]``. Returns ``x, zmin, V,
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

    term = dfx.ODETerm(field)
    err_order = _SOLVER.error_order(term)
    # no step longer than T / _MIN_STEPS: slow points would otherwise take steps
    # spanning tens of saved times; independent of n_time, so are the summaries
    dtmax = jnp.full((N,), T / _MIN_STEPS)

    shift = jnp.zeros_like(x0) if init_shift is None else init_shift
    shifted = dfx.ODETerm(lambda t, y, a: field(t, y - a[1], a[0]))

    def first_step(x0_p, ode_p, kinks_p, dtmax_p, atol_p, shift_p):
        ctrl = dfx.PIDController(
            rtol=rtol, atol=atol_p, norm=optx.max_norm, dtmax=dtmax_p, step_ts=kinks_p
        )
        t1, _ = ctrl.init(shifted, 0.0, T, x0_p + shift_p, None, (ode_p, shift_p), _SOLVER.func,
                          err_order)  # fmt: skip
        return jnp.minimum(t1, T)

    # diffrax's first step per point (once); in the loop diffrax's controller
    # arithmetic, elementwise over points (_adapt_rows)
    t1 = jax.vmap(first_step, in_axes=-1)(x0, args, kinks, dtmax, atol, shift)
    kinks_prev = jnp.nextafter(kinks, -jnp.inf)
    budget = max_steps + jnp.sum(kinks < T, axis=0)  # each ramp end may cost a step
    signs = tuple(jnp.sign(x0 - lv) for lv in levels)

    def affine(wfn, ta, h):
        """``(m0, m1)``: a weight ``m = m0 + m1 u`` on the step ``(ta, h)``, read at
        ``u = 1/4`` and ``3/4`` (inside the step: a weight may jump at a kink)."""
        if wfn is None:
            return 1.0, 0.0
        q1, q3 = wfn(ta + 0.25 * h, wargs), wfn(ta + 0.75 * h, wargs)
        return 1.5 * q1 - 0.5 * q3, 2.0 * (q3 - q1)

    def X_of(x):  # what is saved: the state, or its affine image (save_map)
        return x if save_map is None else save_map[0] + save_map[1] * x

    def z_of(t, x):
        return X_of(x) if weight is None else X_of(x) * weight(t, wargs)

    zero = jnp.zeros_like(x0)
    n0 = jnp.zeros((N,), int)
    # the saved paths in the output layout [N, J, n_time + W] (W spare times at the
    # end for the last windows): a strided write per step costs less than a
    # transpose of the whole buffer afterwards
    buf = jnp.full((N, J, (n_time + W) if save else 0), jnp.nan, x0.dtype)
    if save:
        buf = buf.at[..., 0].set(jnp.where(valid, X_of(x0), jnp.nan).T)
    t0 = jnp.zeros((N,), x0.dtype)
    carry = dict(
        t0=t0, t1=t1, x=x0, f0=field(t0, x0, args), i_save=n0 + 1, buf=buf,
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
        x_b, err, k, f1 = _tsit5_step(field, ta, h, x_a, c["f0"], args, fence=_fence_pred(live))
        err = jnp.where(jnp.isnan(err), jnp.inf, err)
        keep, nt0, nt1 = _adapt_rows(
            ta, tb, x_a, x_b, err, kinks, kinks_prev, dtmax,
            rtol=rtol, atol=atol, order=err_order,
        )  # fmt: skip
        keep = keep & live
        C = _dense_coeffs(k)  # this step's dense output: x(u) = x_a + sum_p C_p u^(p+1)

        if kink_at is not None:
            # x = kink_at is a kink of the vector field (C^1, f'' jumps): an accepted
            # step in which some path crosses it is retried up to the first crossing
            # time on the dense output, so that no step straddles it; a crossing in the
            # step's first or last thousandth is accepted as it is (the dynamic model's
            # paths never cross it: they rise to it)
            side = x_a - kink_at
            kink = keep & (side * (x_b - kink_at) < 0) & (jnp.abs(side) > _KINK_TOL)

            def first_kink(_):
                u = _cross(x_a, C, x_b, kink_at, jnp.sign(side))
                inside = kink & (u > 1e-3) & (u < 1.0 - 1e-3)
                return _fold(jnp.minimum, jnp.where(inside, u, jnp.inf))

            none = lambda _: jnp.full_like(ta, jnp.inf)  # noqa: E731
            u_k = jax.lax.cond(jnp.any(kink), first_kink, none, None)
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
            if save_map is not None:
                x = save_map[0][:, None] + save_map[1][:, None] * x
            if save:
                x = jnp.where(d & valid[:, None], x, jnp.nan)
                buf = jax.vmap(jax.lax.dynamic_update_slice)(
                    buf, jnp.moveaxis(x, -1, 0), jnp.stack([jnp.zeros_like(i), i], axis=1)
                )
            else:
                th = 1.0 if weight is None else weight(t, {k: v[:, None] for k, v in wargs.items()})
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
            # int_ta^tb e^{-rho t} y dt for y = x m (or y = (x m)'), m = m0 + m1 u affine
            # on the step (the kinks are step ends), u the step's fraction, through the
            # moments M_q = int_0^1 u^q e^{-rho (ta + h u)} du (_exp_moments, per point,
            # not per path): x m = sum_q Y_q u^q, Y_q = m0 X_q + m1 X_{q-1}, with x(u) =
            # x_a + sum_p C_p u^(p+1); dt (x m)' = du d(x m)/du = du sum_q q Y_q u^(q-1)
            m0, m1 = affine(weight, ta, h)
            X = (x_a, *C)
            if quad == "rate":
                M = [(q + 1) * Mq for q, Mq in enumerate(_exp_moments(rho, ta, h, 5))]
                Y = [m0 * X[q] + m1 * X[q - 1] for q in range(1, 5)] + [m1 * X[4]]
                dV = sum(Y[q] * M[q] for q in range(5))
            else:
                M = _exp_moments(rho, ta, h, 6)
                dV = h * (m0 * sum(X[q] * M[q] for q in range(5))
                          + m1 * sum(X[q] * M[q + 1] for q in range(5)))  # fmt: skip
            V = jnp.where(keep, V + dV, V)

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
        t_x = _cross_time(field, bk[:, 0], bk[:, 1], bk[:, 2], args, jnp.stack(levels), s0)
        cross = tuple(jnp.where(s0 == 0, 0.0, jnp.where(found, t_x, jnp.nan)))
    ok = out["ok"] & (out["t0"] >= T) & (out["i_save"] == n_time)
    return dict(
        x=out["x"], zmin=out["zmin"], V=out["V"], buf=out["buf"], ok=ok, cross=cross,
        n_steps=out["n_steps"], n_accepted=out["n_accepted"],
    )  # fmt: skip
