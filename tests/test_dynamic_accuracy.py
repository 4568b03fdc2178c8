"""The dynamic model's transition to 1e-8 over its whole documented input range.

An independent reference per path, in double precision with care:

* instant coordination (``Tc = 0``): the logistic closed form, written in the gap so
  that both ``x`` and ``1 - x`` keep their relative accuracy
  (``x = x_0 / (x_0 + y_0 e^{-eps t})``, ``y_0 = g / eps``), the crossing times in
  closed form (``half_life = log1p(1 / x_0) / eps``, ``t99 = log(99 y_0 / x_0) /
  eps``), and the discounted gain by ``scipy.integrate.quad`` on the closed form;
* gradual coordination (``Tc > 0``): ``scipy.integrate.solve_ivp`` (DOP853, rtol
  1e-13) on the log-odds ``z = log(x / (1 - x))``, ``z' = eps - g (1 - s) (1 + e^z)``
  (an absolute error in ``z`` is a relative one in ``x`` and ``1 - x``; solved for
  ``z - z_0``, whose field ``s eps - (1 - s) (eps - g) expm1(z - z_0)`` has no
  cancellation at the rest point), with the discounted gain as a second state and the
  crossings as events.

``pv_gain`` is compared through the identity ``pv_gain = (jump - 1) + D``, ``D =
rho int_0^inf e^{-rho t} (w(t) - w(0+)) / w_B dt = int_0^T e^{-rho t} w'(t) / w_B dt``
(by parts; the wage is constant beyond ``T``), with ``D`` computed by the reference
(the identity itself is checked against the definition in tests/test_dynamic.py).
"""

from __future__ import annotations

import math
from fractions import Fraction

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.integrate import quad, solve_ivp
from scipy.special import expit

from pipeline.models import dynamic as dyn

STATIC = ("T", "n_time", "save_paths", "rtol", "atol", "max_steps")
transition = jax.jit(dyn.transition, static_argnames=STATIC)


def np_out(out):
    return {k: np.asarray(v) for k, v in out.items()}


# ------------------------------------------------------------------ the reference


def _gap(g, eps):
    """``(x_0, y_0) = ((eps - g) / eps, g / eps)`` (``a_hat``, ``1 - a_hat``)."""
    return (eps - g) / eps, g / eps


def ref_instant(g, eps, rho, T, ts):
    """Instant coordination: ``(x(ts), half_life, t99, D_x)`` with ``D_x = int_0^T
    e^{-rho t} x'(t) dt`` (``x' = eps x y``), for one path with ``eps > g``."""
    x0, y0 = _gap(g, eps)
    u = np.exp(-eps * ts)
    x = x0 / (x0 + y0 * u)
    if y0 == 0:
        return x, 0.0, 0.0, 0.0
    half = math.log1p(1.0 / x0) / eps
    t99 = max(0.0, math.log(99.0 * y0 / x0) / eps)

    def xdot(t):
        v = math.exp(-eps * t)
        return eps * x0 * y0 * v / (x0 + y0 * v) ** 2 * math.exp(-rho * t)

    # break points at the discount's and the logistic's time scales
    t_mid = math.log(y0 / x0) / eps
    pts = {k / rho for k in (0.25, 1, 4, 16, 64, 256)}
    pts |= {t_mid + k / eps for k in (-64, -16, -4, -1, 0, 1, 4, 16, 64)}
    pts |= {k / eps for k in (0.25, 1, 4, 16)}
    pts = sorted(p for p in pts if 0 < p < T)
    bounds = [0.0, *pts, T]
    D = 0.0
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        D += quad(xdot, a, b, epsabs=0.0, epsrel=2e-14, limit=200)[0]
    return x, (half if half <= T else np.nan), (t99 if t99 <= T else np.nan), D


def ref_gradual(g, eps, rho, Tc, theta, T, ts):
    """Gradual coordination over ``Tc > 0``: ``(x(ts), half_life, t99, D_z)`` with
    ``D_z = int_0^T e^{-rho t} (x theta_S)'(t) dt``, by solve_ivp on the log-odds."""
    x0, y0 = _gap(g, eps)
    tau = min(Tc, T)
    phi = (theta - 1.0) * -math.expm1(-rho * tau) / (rho * Tc)
    if y0 == 0:  # x = 1 throughout: D_z = int_0^T e^{-rho t} theta_S' dt
        return np.ones(ts.size), 0.0, 0.0, phi
    z0 = math.log((eps - g) / g)

    def s_of(t):
        return min(1.0, t / Tc)

    def rhs(t, y):
        # w = z - z0: z' = eps - g (1 - s) (1 + e^z) = s eps - (1 - s) (eps - g) expm1(w)
        # (g e^{z0} = eps - g), without the cancellation at the rest point z0
        w = y[0]
        z = z0 + w
        s = s_of(t)
        dz = s * eps - (1.0 - s) * (eps - g) * math.expm1(min(w, 700.0)) if s < 1 else eps
        x, yy = expit(z), expit(-z)
        dth = (theta - 1.0) / Tc if t < Tc else 0.0
        thS = 1.0 + s * (theta - 1.0)
        return [dz, math.exp(-rho * t) * (x * yy * dz * thS + x * dth)]

    z_half = math.log((1.0 + x0) / y0)
    z99 = math.log(99.0)
    ev_half = lambda t, y: y[0] - (z_half - z0)  # noqa: E731
    ev_99 = lambda t, y: y[0] - (z99 - z0)  # noqa: E731
    cuts = [0.0] + ([Tc] if Tc < T else []) + [T]
    # the discount's time scale: the first piece ends at a few 1/rho
    if 8.0 / rho < cuts[1]:
        cuts.insert(1, 8.0 / rho)
    # D >= x_0 Phi, Phi = int_0^T e^{-rho t} theta_S' dt: its absolute tolerance below that
    atol = [1e-14, 1e-16 * x0 * max(phi, 1e-30)]
    y = [0.0, 0.0]
    zs, hits = [], ([], [])
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        sel = ts[(ts >= a) & ((ts < b) if b < T else (ts <= b))]
        sol = solve_ivp(rhs, (a, b), y, method="DOP853", rtol=1e-13,
                        atol=atol, t_eval=sel, events=[ev_half, ev_99],
                        dense_output=True)  # fmt: skip
        assert sol.success, sol.message
        zs.append(sol.y[0] if sel.size else np.empty(0))
        y = list(sol.sol(b)) if not (sel.size and sel[-1] == b) else list(sol.y[:, -1])
        for i in range(2):
            hits[i].extend(sol.t_events[i])
    z = z0 + np.concatenate(zs)
    x = expit(z)
    half = min(hits[0]) if hits[0] else np.nan
    t99 = 0.0 if z0 >= z99 else (min(hits[1]) if hits[1] else np.nan)
    return x, half, t99, y[1]


def reference(r, theta, g, eps, rho, Tc, T, ts):
    """Every output for one point (``r, theta, g, eps``: [J]), per target."""
    J = len(r)
    x0, _ = _gap(g, eps)
    w_B = r[0] * x0[0] / theta[0]
    out = {k: np.full(J, np.nan) for k in ("jump", "half_life", "t99", "pv_gain", "D")}
    out["x_path"] = np.full((J, ts.size), np.nan)
    out["wage_path"] = np.full((J, ts.size), np.nan)
    for k in range(J):
        c = r[k] / (theta[k] * w_B)
        thS = 1.0 + np.minimum(1.0, ts / Tc if Tc > 0 else 1.0) * (theta[k] - 1.0)
        if Tc == 0:
            x, half, t99, Dx = ref_instant(g[k], eps[k], rho, T, ts)
            D = c * theta[k] * Dx
            th0 = theta[k]
        else:
            x, half, t99, Dz = ref_gradual(g[k], eps[k], rho, Tc, theta[k], T, ts)
            D = c * Dz
            th0 = 1.0
        jump = c * x0[k] * th0
        # jump - 1 exactly (in rationals) for the float inputs and a_hat: a small
        # pv_gain (a tie, jump = 1) is then compared with its true value
        jm1 = float(
            Fraction(r[k]) * Fraction(x0[k]) * Fraction(th0) * Fraction(theta[0])
            / (Fraction(theta[k]) * Fraction(r[0]) * Fraction(x0[0])) - 1
        )  # fmt: skip
        out["jump"][k], out["half_life"][k], out["t99"][k] = jump, half, t99
        out["D"][k], out["pv_gain"][k] = D, jm1 + D
        out["x_path"][k], out["wage_path"][k] = x, r[k] * x * thS / theta[k]
    return out


# ---------------------------------------------------------------- the comparison


def check_point(got, ref, eps, T, where=""):
    """Outputs of one point (``got``: the kernel's) against the reference, wherever they
    are finite and status is 0 or only says that a level was not reached by ``T`` (bits
    1 and 2, themselves checked against the reference)."""
    st_ = got["status"]
    for k in range(len(eps)):
        msg = f"{where} target {k + 1}"
        assert st_[k] & ~(3 | dyn.PATH_KNIFE) == 0, (msg, "status", st_[k])
        assert bool(st_[k] & 1) == np.isnan(got["half_life"][k]), msg
        assert bool(st_[k] & 2) == np.isnan(got["t99"][k]), msg
        np.testing.assert_allclose(got["x_path"][k], ref["x_path"][k], rtol=1e-8, err_msg=msg)
        np.testing.assert_allclose(got["wage_path"][k], ref["wage_path"][k], rtol=1e-8,
                                   err_msg=msg)  # fmt: skip
        assert got["jump"][k] == pytest.approx(ref["jump"][k], rel=1e-13), msg
        # crossing times: 1e-8 relative, also near t = 0 (t99 just below 0.99)
        for key in ("half_life", "t99"):
            want, have = ref[key][k], got[key][k]
            if np.isnan(want):  # not reached by T (or reached within a hair of T)
                assert np.isnan(have) or have >= T * (1 - 1e-8), (msg, key, have)
                continue
            assert not np.isnan(have) or want >= T * (1 - 1e-8), (msg, key, want)
            if not np.isnan(have):
                assert abs(have - want) <= 1e-8 * want, (msg, key, have, want)
        # pv_gain = (jump - 1) + D: 1e-8 relative, except where it cancels (jump < 1
        # and D ~ 1 - jump): then to 1e-8 of D; and to the rounding of the two
        # products whose difference is jump - 1 (a few ulp of jump; no absolute slack
        # beyond that: a tie, jump = 1 exactly, leaves pv_gain = D to 1e-8 relative)
        want, have = ref["pv_gain"][k], got["pv_gain"][k]
        D, jump = ref["D"][k], ref["jump"][k]
        tol = 1e-8 * (abs(want) + (D if jump < 1 else 0.0)) + 4.5e-16 * jump
        assert abs(have - want) <= tol, (msg, "pv_gain", have, want, D)
        kappa = got["breakeven_kappa"][k]
        assert kappa == pytest.approx(have / got["rho"], rel=1e-15), msg


def run_points(pts, T, n_time=21):
    """The kernel on a batch of points (a list of dicts), save_paths on."""
    cols = {k: np.array([p[k] for p in pts], dtype=np.float64) for k in pts[0]}
    out = np_out(transition(cols["r"], cols["theta"], cols["g"], cols["eps"], cols["rho"],
                            cols["Tc"], T=T, n_time=n_time, save_paths=True))  # fmt: skip
    return [{k: v[i] for k, v in out.items()} | {"rho": pts[i]["rho"]} for i in range(len(pts))]


# ------------------------------------------------------------ the property test


def _pow10(draw, lo, hi):
    return 10.0 ** draw(st.floats(lo, hi))


@st.composite
def rates(draw, T):
    """``(g, eps)`` over the documented range with ``eps > g`` (``a_hat > 0``) and
    ``eps T <= 1000``: a gap ``1 - a_hat`` down to 1e-16, an ``a_hat`` down to 1e-15, or
    anything between."""
    eps = min(_pow10(draw, -12, math.log10(min(dyn.RATE_RANGE[1], dyn.EPS_T_MAX / T))), 10.0)
    kind = draw(st.sampled_from(["gap", "a_hat", "any", "g=0"]))
    if kind == "gap":
        g = eps * _pow10(draw, -16, 0)
    elif kind == "a_hat":
        g = eps * (1.0 - _pow10(draw, -15, -0.3))
    elif kind == "any":
        g = eps * draw(st.floats(0.0, 1.0, exclude_max=True))
    else:
        g = 0.0
    if 0 < g < dyn.RATE_RANGE[0]:
        g = 0.0
    assume(eps > g)
    return g, eps


@st.composite
def points(draw, J, T):
    r = [min(_pow10(draw, -6, 6), 1e6) for _ in range(J)]
    theta = [min(1.0 + _pow10(draw, -12, 6), 1e6) for _ in range(J)]
    if draw(st.booleans()):  # scalar g, eps
        g, eps = (np.full(J, v) for v in draw(rates(T)))
    else:
        g, eps = (np.array(v) for v in zip(*[draw(rates(T)) for _ in range(J)], strict=True))
    rho = min(_pow10(draw, -6, 6), 1e6)
    Tc = draw(st.one_of(st.just(0.0), st.floats(-6, 4).map(lambda u: min(10.0**u, 1e4))))
    return dict(r=np.array(r), theta=np.array(theta), g=g, eps=eps, rho=rho, Tc=Tc)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), case=st.sampled_from([(2, 100.0), (3, 400.0), (2, 1e4)]))
def test_transition_accurate_over_the_documented_range(data, case):
    """Random points over the whole accepted range (J = 2, 3; scalar and per-sector
    ``g``, ``eps``; ``Tc = 0`` and ``> 0``; ``T = 100, 400, 1e4``): wherever an output
    is finite and status is 0 (or says only "not reached by T"), ``x_path``,
    ``wage_path``, ``jump``, ``half_life``, ``t99``, ``pv_gain``, ``breakeven_kappa``
    agree with the reference to 1e-8, and no solve fails."""
    J, T = case
    p = data.draw(points(J, T))
    ts = np.linspace(0.0, T, 21)
    got = run_points([p], T)[0]
    ref = reference(p["r"], p["theta"], p["g"], p["eps"], p["rho"], p["Tc"], T, ts)
    check_point(got, ref, p["eps"], T, repr(p))


# ------------------------------------------------------------ the cases


def _point(g=0.02, eps=0.1, rho=0.05, Tc=0.0, r=(1.0, 0.8), theta=(2.0, 2.5)):
    J = len(r)
    return dict(r=np.array(r, float), theta=np.array(theta, float), g=np.full(J, g),
                eps=np.full(J, eps), rho=float(rho), Tc=float(Tc))  # fmt: skip


def _check(pts, T=400.0):
    ts = np.linspace(0.0, T, 21)
    got = run_points(pts, T)
    for p, out in zip(pts, got, strict=True):
        ref = reference(p["r"], p["theta"], p["g"], p["eps"], p["rho"], p["Tc"], T, ts)
        check_point(out, ref, p["eps"], T, repr(p))
    return got


@pytest.mark.parametrize("Tc", [0.0, 20.0])
def test_t99_is_zero_where_the_path_starts_above_the_level(Tc):
    """``a_hat_k >= 0.99``: t99 = 0 (the level is met at t = 0), status 0; just below
    0.99 it is small and positive, so t99 is continuous there (it was NaN with "not
    reached by T" above 0.99, and 0 only at exactly 0.99)."""
    gaps = [0.005, 0.01, 1e-9, 0.0101]  # a_hat = 0.995, 0.99, 1 - 1e-9, 0.9899
    pts = [_point(g=0.1 * y, eps=0.1, Tc=Tc) for y in gaps]
    got = _check(pts)
    for y, out in zip(gaps, got, strict=True):
        assert (out["status"] & dyn.T99_NOT_REACHED == 0).all(), (y, out["status"])
        if 1.0 - y >= 0.99:
            assert (out["t99"] == 0.0).all(), (y, out["t99"])
    assert 0 < got[-1]["t99"][0] < (1.0 if Tc == 0 else 21.0)


def test_t99_keeps_its_accuracy_just_below_the_level():
    """``a_hat_k = 0.99 - d`` for ``d`` down to 1e-13: t99 is proportional to ``d``,
    which the rounding of ``y0 = g / eps`` (or of 0.01 itself) would swamp (it was off
    by 5e-7 at ``d = 1e-13``); against the closed form ``log1p((100 y0 - 1) / (1 - y0))
    / eps`` with ``100 y0 - 1`` in exact rationals (a review's reproducers)."""
    eps = 0.1
    ds_ = [1e-13, 1e-12, 1e-11, 1e-6]
    pts = [_point(g=eps * (0.01 + d), eps=eps) for d in ds_]
    got = run_points(pts, 100.0)
    for p, out in zip(pts, got, strict=True):
        g = p["g"][0]
        y0 = Fraction(g) / Fraction(eps)
        want = math.log1p(float((100 * y0 - 1) / (1 - y0))) / eps
        np.testing.assert_allclose(out["t99"], want, rtol=1e-8, err_msg=repr(p))
        assert (out["status"] == 0).all()


@pytest.mark.parametrize(
    ("r", "theta", "g", "eps", "rho", "Tc", "T", "k"),
    [  # ties (jump = 1 exactly): pv_gain = D, small; once off by up to 3.7e-4
        ((1.0, 1.0), (1 + 1e-12, 1 + 1e-12), (0.02, 1.0), (0.05, 1 + 1e-7), 1e6, 1.0, 100.0, 0),
        ((1.0, 1.0), (1 + 1e-12, 1 + 1e-12), (0.02, 1.0), (0.05, 1 + 1e-7), 1e4, 1.0, 100.0, 0),
        ((1.0, 1.0), (1.000001, 2.0), (0.02, 0.02), (0.05, 0.05), 1e6, 1.0, 100.0, 0),
        ((2.0, 1.0), (2.0, 3.0), (5e-4, 5e-4), (1e-3, 1e-3), 1e6, 0.0, 1e4, 1),
        (
            (2.2033, 0.3251),
            (1 + 1.3e-11, 1.35),
            (1e-12, 8.8e-4),
            (2.39e-3, 1.73e-3),
            1.351,
            3.0e-5,
            1e4,
            0,
        ),
    ],
)
def test_a_small_pv_gain_at_a_tie_keeps_its_relative_accuracy(r, theta, g, eps, rho, Tc, T, k):
    """Where the wage jump is exactly 1 (the baseline target with a ramp; or ``r_k
    theta_1 = r_1 theta_k`` with common rates) pv_gain is D alone, tiny for a large
    ``rho`` or ``theta ~ 1``: to 1e-8 relative of the reference (a review found it off
    by 1e-16 absolute, the rounding of ``jump - 1``, i.e. up to 3.7e-4 relative)."""
    pt = dict(r=np.array(r), theta=np.array(theta), g=np.array(g), eps=np.array(eps),
              rho=rho, Tc=Tc)  # fmt: skip
    out = run_points([pt], T)[0]
    ts = np.linspace(0.0, T, 21)
    ref = reference(pt["r"], pt["theta"], pt["g"], pt["eps"], rho, Tc, T, ts)
    assert ref["jump"][k] == pytest.approx(1.0, rel=1e-15)
    assert out["status"][k] & ~dyn.PATH_KNIFE == 0  # (r = (2, 1) is a knife-edge path too)
    assert out["pv_gain"][k] == pytest.approx(ref["pv_gain"][k], rel=1e-8, abs=0.0)
    assert 0 < out["pv_gain"][k] < 1e-8


def test_half_life_keeps_its_accuracy_at_small_gaps():
    """The initial gap ``1 - a_hat = g / eps`` down to 4e-13 (``g = 1e-12``, the least
    rate): the half-life to 1e-10 of its closed form ``log1p(1 / a_hat) / eps`` (was off
    by 4.9e-6 at a gap of 2e-5 and 2.3e-3 at 2e-7)."""
    eps = 2.5
    gaps = [2e-5, 2e-7, 1e-10, 4e-13]
    got = _check([_point(g=eps * y, eps=eps) for y in gaps])
    for y, out in zip(gaps, got, strict=True):
        a = (eps - eps * y) / eps
        np.testing.assert_allclose(out["half_life"], math.log1p(1.0 / a) / eps, rtol=1e-10)


@pytest.mark.parametrize("a", [1e-7, 1e-12])
def test_paths_and_gain_keep_their_accuracy_at_small_a_hat(a):
    """``a_hat ~ 1e-7`` and ``1e-12``: ``x_path``, ``wage_path``, ``pv_gain`` to 1e-8 of
    the closed form, ``Tc = 0`` and ``Tc > 0`` (were off by ~2e-6 at 1e-7)."""
    eps = 0.5
    pts = [_point(g=eps * (1.0 - a), eps=eps, Tc=Tc) for Tc in (0.0, 15.0)]
    _check(pts)


@pytest.mark.parametrize("rho", [10.0, 30.0, 1e3, 1e6])
def test_pv_gain_accurate_for_large_rho(rho):
    """The discounted gain for a large discount rate, instant and gradual coordination
    (it was 3.5e-5 off at rho = 10, of the wrong sign at 30, -1.0 instead of 0.5 at
    1e6): exact per step for any ``rho h`` (pipeline._ode._exp_moments) and written as
    ``(jump - 1) + D`` without cancellation."""
    got = _check([_point(rho=rho, Tc=Tc) for Tc in (0.0, 10.0, 1e-3)])
    # instant: pv -> jump - 1 = theta_1 - 1 = 1 as rho -> inf; gradual: -> 0
    assert got[0]["pv_gain"][0] == pytest.approx(1.0, rel=10.0 / rho)
    assert 0 < got[1]["pv_gain"][0] < 10.0 / rho


@pytest.mark.parametrize(
    ("field", "value"),
    [("rho", 5e-324), ("rho", 1e-7), ("rho", 1e7), ("r", 1e308), ("r", 1e-7), ("theta", 1e7),
     ("eps", 5e-324), ("eps", 1e-13), ("g", 1e-13), ("g", 5e-324), ("eps", 11.0), ("Tc", 1e-7),
     ("Tc", 5e-324), ("Tc", 1e5)],
)  # fmt: skip
def test_out_of_range_inputs_are_invalid_not_garbage(field, value):
    """Inputs outside the documented range are refused as data (status 32, NaN), not
    computed: ``rho = 5e-324`` gave ``breakeven_kappa = inf`` and ``r = 1e308`` an
    all-inf ``wage_path``, both with status 0; subnormals are flushed to 0 by XLA."""
    p = _point()
    if field in ("r", "theta"):
        p[field] = p[field].copy()
        p[field][1] = value
    elif field in ("g", "eps"):
        p[field] = np.full(2, value)
    else:
        p[field] = value
    out = run_points([p, _point()], 100.0)
    assert (out[0]["status"] == dyn.INVALID).all(), out[0]["status"]
    for k in ("jump", "pv_gain", "breakeven_kappa", "half_life", "t99"):
        assert np.isnan(out[0][k]).all(), k
    assert np.isnan(out[0]["wage_path"]).all() and not out[0]["path_feasible"].any()
    assert (out[1]["status"] == 0).all()  # a valid neighbour is untouched


def test_eps_T_beyond_the_step_budget_is_invalid():
    """``eps T > 1000``: refused (the config says so too), not a solver failure."""
    out = run_points([_point(g=1.0, eps=2.0)], 1000.0)
    assert (out[0]["status"] == dyn.INVALID).all()
