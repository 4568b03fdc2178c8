"""The per-point adaptive integrator (:mod:`pipeline._ode`), which knows nothing of wages.

Every piece against diffrax's own (the written-out Tsit5 step against
``Tsit5().step``, the dense output against its interpolant, the step-size update
against ``PIDController``), and the whole solve against closed forms (the logistic, an
exponential decay, a discounted integral and crossing times) and scipy's ``solve_ivp``
on a field that is not the economics. Tolerances are relative to the solver's; no test
assumes XLA's last bit to be the same on every CPU.
"""

from __future__ import annotations

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

from pipeline import _ode as ode
from pipeline.models import dynamic as dyn


def test_dense_output_is_diffraxs():
    """The power-form coefficients reproduce diffrax's Tsit5 interpolant."""
    k = jnp.asarray(np.random.default_rng(0).normal(size=(7, 3)))
    x0 = jnp.array([0.1, 0.5, 2.0])
    ip = dfx.Tsit5.interpolation_cls(t0=0.0, t1=2.0, y0=x0, y1=x0, k=k)
    C = ode._dense_coeffs(k)
    for u in (0.0, 0.2, 0.7, 1.0):
        np.testing.assert_allclose(
            ode._poly(x0, C, u), ip.evaluate(2.0 * u), rtol=1e-13, atol=1e-13
        )


@pytest.mark.parametrize("fenced", [False, True])
def test_tsit5_step_is_diffraxs(fenced):
    """The written-out step equals ``dfx.Tsit5().step`` (solution, error estimate,
    stage increments for the dense output, FSAL derivative) to rounding, rows on the
    last axis with per-row times, ramps included; also with its stages fenced (as the
    loop runs it, with a traced True)."""
    rng = np.random.default_rng(1)
    n = 500
    x = jnp.asarray(rng.uniform(0.1, 1.3, (2, n)))
    eps = jnp.asarray(rng.uniform(0.05, 0.3, (2, n)))
    args = dict(g=0.5 * eps, eps=eps, Tc=jnp.asarray(rng.choice([0.0, 3.0, np.inf], (1, n))))
    ta = jnp.asarray(rng.uniform(0.0, 5.0, n))
    h = jnp.asarray(rng.uniform(0.01, 2.0, n))
    f0 = dyn._rhs(ta, x, args)
    if fenced:
        step = jax.jit(lambda *a: ode._tsit5_step(dyn._rhs, *a, fence=jnp.any(a[0] >= 0)))
    else:
        step = jax.jit(lambda *a: ode._tsit5_step(dyn._rhs, *a))
    x1, err, k, f1 = step(ta, h, x, f0, args)
    ref = dfx.Tsit5().step(dfx.ODETerm(dyn._rhs), ta, ta + h, x, args, (False, f0), False)
    x1_d, err_d, dense, (_, f1_d), _ = ref
    np.testing.assert_allclose(x1, x1_d, rtol=1e-15, atol=1e-16)
    np.testing.assert_allclose(err, err_d, rtol=0, atol=1e-15)
    # k = h f(stage): f cancels (g (s - 1) + eps (1 - x)), so to rounding of |x| h
    np.testing.assert_allclose(jnp.stack(k), dense["k"], rtol=0, atol=1e-14)
    np.testing.assert_allclose(f1, f1_d, rtol=0, atol=1e-14)


def test_inv_root_is_a_power():
    """``_inv_root(s, n) = s ** (-1 / n)`` to a few ulp over the whole range the step
    controller meets (the reference ``s ** (-1 / n)`` is itself off by ~ln(s) ulp, as
    ``1 / n`` is rounded), and the limits: 0 and inf clipped to finite, NaN kept."""
    rng = np.random.default_rng(7)
    s = np.concatenate(
        [rng.uniform(0.0, 3.0, 20_000) + 1e-300, 10.0 ** rng.uniform(-30, 30, 20_000),
         2.0 ** np.arange(-60, 61), np.nextafter(1.0, [0.0, 2.0])]
    )  # fmt: skip
    for n in (5, 4, 3, 2):
        got = np.asarray(jax.jit(lambda v, n=n: ode._inv_root(v, n))(s))
        want = s ** (-1.0 / n)
        rel = np.abs(got / want - 1.0)
        assert np.all(rel <= 6e-16 + 2.5e-17 * np.abs(np.log(s))), n
        assert np.median(rel) <= 2.3e-16, n
    edge = np.asarray(jax.jit(lambda v: ode._inv_root(v, 5))(jnp.array([0.0, np.inf, np.nan])))
    # 2^(+-200) to an ulp or two: XLA's last bit differs between CPUs (AVX2, AVX-512)
    np.testing.assert_allclose(edge[:2], [2.0**200, 2.0**-200], rtol=5e-16, atol=0)
    assert np.isnan(edge[2])
    # the controller's use: 0.9 s^(-1/5) clipped to [0.2, 10]; both clips reached
    f = np.clip(0.9 * edge[:2], 0.2, 10.0)  # s = 0 and s = inf
    np.testing.assert_array_equal(f, [10.0, 0.2])


def test_step_size_update_is_diffraxs():
    """The per-row update equals diffrax's ``PIDController(step_ts=...)``, vmapped:
    accept/reject and the next step's ends, at kinks and one ulp before them too."""
    rng = np.random.default_rng(2)
    n = 400
    J = 2
    rtol, atol, order = ode.RTOL, ode.ATOL, 5
    ta = rng.uniform(0.0, 40.0, n)
    h = rng.uniform(1e-3, 2.0, n)
    tb = ta + h
    kinks = np.where(rng.random(n) < 0.5, rng.uniform(0.0, 60.0, n), 100.0)
    # edge cases: the step ends exactly at its kink, or one ulp before it
    kinks[:40] = tb[:40]
    kinks[40:80] = np.nextafter(tb[40:80], np.inf)
    x_a = rng.uniform(0.1, 1.0, (J, n))
    x_b = x_a + rng.normal(0.0, 1e-3, (J, n))
    err = np.abs(rng.normal(0.0, 1.0, (J, n))) * 10.0 ** rng.uniform(-14, -8, (1, n))
    dtmax = np.full(n, 100.0 / 64)
    kinks2 = kinks[None, :]
    keep, nt0, nt1 = ode._adapt_rows(
        ta, tb, x_a, x_b, err, kinks2, np.nextafter(kinks2, -np.inf), dtmax,
        rtol=rtol, atol=atol, order=order,
    )  # fmt: skip

    def diffrax_one(ta, tb, xa, xb, e, kink, dtm):
        import optimistix as optx

        ctrl = dfx.PIDController(
            rtol=rtol, atol=atol, norm=optx.max_norm, dtmax=dtm, step_ts=kink[None]
        )
        term = dfx.ODETerm(dyn._rhs)
        args = dict(g=jnp.zeros(J), eps=jnp.ones(J), Tc=0.0)
        _, state = ctrl.init(term, ta, 100.0, xa, None, args, dfx.Tsit5().func, order)
        k, t0, t1, _, _, _ = ctrl.adapt_step_size(ta, tb, xa, xb, args, e, order, state)
        return k, t0, t1

    k_d, t0_d, t1_d = jax.vmap(diffrax_one, in_axes=(0, 0, 1, 1, 1, 0, 0))(
        ta, tb, x_a, x_b, err, kinks, dtmax
    )
    assert 0.2 < np.mean(keep) < 0.8  # both branches exercised
    np.testing.assert_array_equal(keep, k_d)
    np.testing.assert_array_equal(nt0, t0_d)
    # the factor is exp(log(.)/5) here, a power in diffrax: equal to rounding
    np.testing.assert_allclose(nt1, t1_d, rtol=1e-14, atol=0)
    t1_d, keep_d = np.asarray(t1_d), np.asarray(k_d)
    assert np.any(t1_d[80:] == kinks[80:])  # a kink ahead clips the next step
    # an accepted step ending at (or one ulp before) its kink steps past it
    assert np.all(t1_d[:80][keep_d[:80]] != kinks[:80][keep_d[:80]])


@pytest.mark.parametrize(("T_", "n"), [(100.0, 401), (200.0, 201), (37.3, 1001), (1.0, 2)])
def test_uniform_grid_is_numpys(T_, n):
    """Saved times on a uniform grid are computed, not gathered: exactly np.linspace."""
    ts = np.linspace(0.0, T_, n)
    step = ode._uniform_step(ts)
    assert step is not None
    i = np.arange(n)
    np.testing.assert_array_equal(np.where(i >= n - 1, ts[-1], i * step), ts)
    assert ode._uniform_step(np.geomspace(1.0, T_ + 1, n) - 1.0) is None or n == 2
    assert ode._uniform_step(jnp.asarray(ts)) is None  # not concrete numpy: gathered


# ------------------------------------------------------------- the whole solve


def _field(t, x, a):
    """A field that is not the economics: dx/dt = k x (1 - x / K) + c sin(w t)."""
    return a["k"] * x * (1.0 - x / a["K"]) + a["c"] * jnp.sin(a["w"] * t)


def _np_field(t, x, k, K, c, w):
    return k * x * (1.0 - x / K) + c * np.sin(w * t)


def _solve(x0, a, ts, **kw):
    n = x0.shape[0]
    kinks = jnp.full((n, 1), float(ts[-1]))
    return ode.integrate(jnp.asarray(x0), _field, {k: jnp.asarray(v) for k, v in a.items()},
                         np.asarray(ts), kinks, save=True, quad=False, **kw)  # fmt: skip


def test_integrate_vs_logistic_closed_form():
    """With c = 0 the field is logistic: x(t) = K / (1 + (K/x0 - 1) e^{-k t})."""
    rng = np.random.default_rng(11)
    n = 64
    x0 = rng.uniform(0.01, 2.0, (n, 1))
    k, K = rng.uniform(0.01, 0.5, (n, 1)), rng.uniform(0.5, 3.0, (n, 1))
    a = dict(k=k, K=K, c=np.zeros((n, 1)), w=np.ones((n, 1)))
    ts = np.linspace(0.0, 80.0, 161)
    out = _solve(x0, a, ts)
    assert np.all(np.asarray(out["ok"]))
    ref = K / (1.0 + (K / x0 - 1.0) * np.exp(-k * ts[None, :]))
    np.testing.assert_allclose(np.asarray(out["buf"])[:, 0, :], ref, rtol=1e-8, atol=1e-12)


def test_integrate_vs_scipy_nonlinear_forced():
    """A forced logistic (no closed form) against scipy's DOP853 at tight tolerances."""
    rng = np.random.default_rng(12)
    n = 12
    x0 = rng.uniform(0.1, 1.5, (n, 1))
    p = {k: rng.uniform(lo, hi, (n, 1)) for k, (lo, hi) in
         dict(k=(0.05, 0.4), K=(0.5, 2.0), c=(0.01, 0.2), w=(0.1, 1.0)).items()}  # fmt: skip
    ts = np.linspace(0.0, 60.0, 121)
    out = _solve(x0, p, ts)
    got = np.asarray(out["buf"])[:, 0, :]
    for i in range(n):
        args = tuple(float(p[k][i, 0]) for k in ("k", "K", "c", "w"))
        ref = solve_ivp(_np_field, (0.0, ts[-1]), [float(x0[i, 0])], t_eval=ts, args=args,
                        method="DOP853", rtol=1e-12, atol=1e-14).y[0]  # fmt: skip
        np.testing.assert_allclose(got[i], ref, rtol=2e-8, atol=1e-11)


def test_integrate_discounted_integral_and_crossings():
    """Exponential decay x' = -k x: int_0^T e^{-rho t} x(t) m(t) dt with m(t) = 1 + t/2
    (affine) and the first time x falls to a level, against closed forms."""
    n = 8
    k = jnp.linspace(0.05, 0.5, n)[:, None]
    rho = jnp.full((n, 1), 0.1)
    x0 = jnp.ones((n, 1))
    T = 30.0
    ts = np.linspace(0.0, T, 31)
    level = jnp.full((n, 1), 0.25)
    out = ode.integrate(
        x0, lambda t, x, a: -a["k"] * x, {"k": k}, ts, jnp.full((n, 1), T), (level,),
        weight=lambda t, w: 1.0 + 0.5 * t + 0.0 * w["one"], wargs={"one": jnp.ones((n, 1))},
        rho=rho, save=False, quad=True,
    )  # fmt: skip
    kk, r = np.asarray(k)[:, 0], 0.1
    s = kk + r
    # int_0^T e^{-s t} (1 + t/2) dt
    ref = (1 - np.exp(-s * T)) / s + 0.5 * ((1 - np.exp(-s * T)) / s**2 - T * np.exp(-s * T) / s)
    np.testing.assert_allclose(np.asarray(out["V"])[:, 0], ref, rtol=1e-9)
    t_cross = np.log(4.0) / kk
    got = np.asarray(out["cross"][0])[:, 0]
    reached = t_cross <= T
    np.testing.assert_allclose(got[reached], t_cross[reached], rtol=1e-9)
    assert np.all(np.isnan(got[~reached]))
    # zmin: the running minimum of x m(t) over the saved times
    zs = np.exp(-kk[:, None] * ts[None, :]) * (1 + 0.5 * ts[None, :])
    np.testing.assert_allclose(np.asarray(out["zmin"])[:, 0], zs.min(axis=1), rtol=1e-9, atol=1e-11)


def test_integrate_is_diffeqsolve():
    """The whole loop against diffrax's diffeqsolve with the same solver and controller
    (per point), at the saved times: both to solver accuracy (their step sequences
    differ in where steps are clipped, so not to rounding)."""
    import optimistix as optx

    rng = np.random.default_rng(13)
    n = 6
    x0 = rng.uniform(0.1, 1.5, (n, 1))
    p = {k: rng.uniform(lo, hi, (n, 1)) for k, (lo, hi) in
         dict(k=(0.05, 0.4), K=(0.5, 2.0), c=(0.01, 0.2), w=(0.1, 1.0)).items()}  # fmt: skip
    ts = np.linspace(0.0, 40.0, 81)
    got = np.asarray(_solve(x0, p, ts)["buf"])[:, 0, :]
    for i in range(n):
        a = {k: jnp.asarray(v[i]) for k, v in p.items()}
        sol = dfx.diffeqsolve(
            dfx.ODETerm(_field), dfx.Tsit5(), 0.0, ts[-1], None, jnp.asarray(x0[i]), a,
            saveat=dfx.SaveAt(ts=jnp.asarray(ts)),
            stepsize_controller=dfx.PIDController(rtol=ode.RTOL, atol=ode.ATOL,
                                                  norm=optx.max_norm, dtmax=ts[-1] / 64),
            max_steps=ode.MAX_STEPS,
        )  # fmt: skip
        np.testing.assert_allclose(got[i], np.asarray(sol.ys)[:, 0], rtol=2e-8, atol=1e-12)


def test_exp_moments_for_any_rho_h():
    """``int_0^1 u^q e^{-rho (ta + u h)} du`` to 1e-12 relative for ``a = rho h`` from
    1e-8 to 1e8, against ``q! / a^{q+1} P(q+1, a)`` (scipy's regularized incomplete
    gamma), on both sides of the switch from Gauss-Legendre to the exact recurrence."""
    from math import factorial

    from scipy.special import gammainc

    a = np.concatenate([10.0 ** np.linspace(-8, 8, 161), [1.0, np.nextafter(1.0, 2.0)]])
    ta = np.where(a > 1e4, 0.0, 0.3)
    rho = np.full_like(a, 2.0)
    h = a / rho
    got = jax.jit(ode._exp_moments)(rho, ta, h)
    for q, Mq in enumerate(got):
        ref = np.exp(-rho * ta) * factorial(q) / a ** (q + 1) * gammainc(q + 1, a)
        np.testing.assert_allclose(np.asarray(Mq), ref, rtol=1e-12, atol=0, err_msg=str(q))


@pytest.mark.parametrize("rho", [1e-6, 0.1, 30.0, 1e4, 1e6])
def test_discounted_integral_for_large_rho(rho):
    """``int_0^T e^{-rho t} x(t) dt`` for ``x' = k (1 - x)``, ``x(0) = 0`` (``x = 1 -
    e^{-k t}``), to 1e-9 relative whatever ``rho``: a step much longer than ``1 / rho``
    integrates the discount exactly (no small steps needed; the integrand is ~ ``k t``
    where the discount is still ~1)."""
    n, T = 8, 50.0
    k = jnp.linspace(0.05, 2.0, n)[:, None]
    out = ode.integrate(
        jnp.zeros((n, 1)), lambda t, x, a: a["k"] * (1.0 - x), {"k": k}, np.linspace(0, T, 6),
        jnp.full((n, 1), T), rho=jnp.full((n, 1), rho), save=False, quad=True, atol=1e-30,
    )  # fmt: skip
    kk = np.asarray(k)[:, 0]
    # int_0^T e^{-rho t} (1 - e^{-k t}) dt, written without cancellation
    ref = -np.expm1(-rho * T) / rho - (-np.expm1(-(rho + kk) * T)) / (rho + kk)
    small = kk * T < 1e-3
    assert not small.any()
    ref = np.where(rho > 1.0, kk / (rho * (rho + kk)) * (1 - np.exp(-rho * T)), ref)
    np.testing.assert_allclose(np.asarray(out["V"])[:, 0], ref, rtol=1e-9)
    assert int(np.max(np.asarray(out["n_steps"]))) < 400


def test_save_map_saves_an_affine_image_of_the_state():
    """``save_map=(A, B)``: the saved paths and the running minimum are of ``A + B x``
    (the state itself is what the quadrature integrates)."""
    n = 4
    x0 = jnp.zeros((n, 1))
    A, B = jnp.full((n, 1), 0.25), jnp.linspace(-1.0, 2.0, n)[:, None]
    ts = np.linspace(0.0, 10.0, 11)
    kw = dict(save=True, quad=False)
    field = lambda t, x, a: a["k"] * (1.0 - x)  # noqa: E731
    args = {"k": jnp.full((n, 1), 0.3)}
    plain = ode.integrate(x0, field, args, ts, jnp.full((n, 1), 10.0), **kw)
    mapped = ode.integrate(x0, field, args, ts, jnp.full((n, 1), 10.0), save_map=(A, B), **kw)
    np.testing.assert_allclose(
        np.asarray(mapped["buf"])[:, 0], np.asarray(A + B * plain["buf"][:, 0]), rtol=1e-15
    )
    lean = ode.integrate(x0, field, args, ts, jnp.full((n, 1), 10.0), save_map=(A, B),
                         save=False, quad=False)  # fmt: skip
    np.testing.assert_allclose(
        np.asarray(lean["zmin"])[:, 0], np.asarray(mapped["buf"])[:, 0].min(axis=1), rtol=1e-15
    )
