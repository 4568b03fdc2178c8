"""Static models against docs/models.md closed forms, the paper's examples, an independent
numpy evaluation, and property tests (hypothesis)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pipeline.kernels import labels, resolve_inputs, run_kernel
from pipeline.models import sectors, standard
from pipeline.models._spec import regime_name

from . import reference

F = np.float64


def std(r_1, r_2, theta, theta_S=None):
    out = standard.equilibria(F(r_1), F(r_2), F(theta), F(theta if theta_S is None else theta_S))
    return {k: np.asarray(v) for k, v in out.items()}


def coord(r, theta):
    out = sectors.coordination(jnp.asarray(r, float), jnp.asarray(theta, float))
    return {k: np.asarray(v) for k, v in out.items()}


def as_dict(out, labs):
    return {lab: (bool(out["exists"][i]), float(out["wage"][i])) for i, lab in enumerate(labs)}


# --------------------------------------------------------------- standard (sec. 2)


def test_standard_paper_example_lam_one():
    """JDE sec. 2 with all lam = 1: both corners are equilibria with w = 1."""
    out = std(1.0, 1.0, 2.0)
    d = as_dict(out, standard.LABELS)
    assert d["B1"] == (True, 1.0) and d["C2"] == (True, 1.0)
    assert not d["D"][0]
    assert out["knife_edge"]  # c = 1 holds with equality


@pytest.mark.parametrize(
    ("c", "theta", "expect"),
    [
        (0.5, 2.0, {"B1"}),  # no CA in good 2: only B1
        (1.5, 2.0, {"B1", "C2", "D"}),  # condition P: multiple equilibria
        (3.0, 2.0, {"C2"}),  # c > theta: only the cluster
    ],
)
def test_standard_regions(c, theta, expect):
    out = std(1.0, c, theta)
    assert {lab for lab, (e, _) in as_dict(out, standard.LABELS).items() if e} == expect
    assert not out["knife_edge"]
    stable = {lab for i, lab in enumerate(standard.LABELS) if out["stable"][i]}
    assert stable == expect - {"D"}  # D is never stable
    if "D" in expect:  # diversified: 1 + alpha L_2 = theta / c, wage r_1
        assert out["wage"][2] == 1.0


def test_standard_wages_and_ranking():
    r_1, r_2, theta = 2.0, 3.0, 2.0  # c = 1.5 in (1, theta)
    out = std(r_1, r_2, theta)
    assert out["wage"][0] == r_1 and out["wage"][1] == pytest.approx(r_2)
    assert list(out["wage_rank"]) == [2, 1, 2]  # C2 beats B1 iff CA (c > 1); D ties B1
    assert standard.LABELS[out["best"]] == "C2" and standard.LABELS[out["worst"]] == "B1"
    assert regime_name(int(out["regime"]), list(standard.LABELS)) == "B1+C2"
    assert out["claims"].tolist() == [1, 1]


def test_standard_scale_limit():
    # theta = 3, theta_S = 1.5: C2 needs c >= theta/theta_S = 2
    assert not std(1.0, 1.9, 3.0, 1.5)["exists"][1]
    out = std(1.0, 2.1, 3.0, 1.5)
    assert out["exists"][1] and out["wage"][1] == pytest.approx(2.1 * 1.5 / 3.0)
    assert out["claims"].tolist() == [-1, -1]  # claims assume L_S >= Lbar


@pytest.mark.parametrize("c", [1.0, 2.0])
def test_standard_knife_edges(c):
    out = std(1.0, c, 2.0)  # c = 1 (C2 boundary) or c = theta (B1 boundary)
    assert out["knife_edge"] and out["n_stable"] >= 1
    assert (out["claims"] == -1).all()


# ---------------------------------------------------------- modes / coordination


@pytest.mark.parametrize("r1_over_r2", [1.2, 1.8, 2.5])
def test_condition_star(r1_over_r2):
    """JDE sec. 3 / WP sec. 5: C2 exists iff r_1/r_2 < theta_1 (condition (*))."""
    theta = [2.0, 3.0]
    out = coord([r1_over_r2, 1.0], theta)
    d = as_dict(out, sectors.labels(2))
    assert d["C2"][0] == (r1_over_r2 < theta[0])
    assert d["C1"] == (True, r1_over_r2) and d["B1"] == (True, r1_over_r2 / 2.0)
    assert not d["B2"][0]
    if d["C2"][0]:
        assert d["C2"][1] == pytest.approx(1.0)  # w_C2 = r_2, whatever theta_2
    assert out["claims"].tolist() == [1] * 5


def test_symmetric_case_is_a_continuum():
    """lam_ji = 1, theta_j = theta: every corner ties; flagged knife-edge."""
    out = coord([1.0, 1.0, 1.0], [2.0, 2.0, 2.0])
    assert out["knife_edge"] and out["exists"].all()
    assert (out["claims"] == -1).all()


def test_modes_mixed_and_scale():
    beta, alpha = 0.5, 0.25
    r, Lbar = jnp.array([2.0, 1.0]), jnp.array([6.0, 10.0])
    theta = beta + alpha * Lbar  # 2.0, 3.0
    out = sectors.modes(r, theta, theta, Lbar, beta, alpha, jnp.inf)
    labs = sectors.labels(2, mixed=True)
    d = as_dict({k: np.asarray(v) for k, v in out.items()}, labs)
    # M1: B1 exists and L_M = (1 - beta)/alpha = 2 < min(L_S, Lbar_1) = 6; wage r_1/theta_1
    assert d["M1"] == (True, 1.0) and d["B1"] == (True, 1.0) and not d["M2"][0]
    assert not bool(out["stable"][4])
    # a small South: L_S = 3 caps theta_1S = beta + alpha L_S = 1.25, w_C1 = 2 * 1.25 / 2
    small = sectors.modes(r, theta, beta + alpha * jnp.minimum(Lbar, 3.0), Lbar, beta, alpha, 3.0)
    assert float(small["wage"][0]) == pytest.approx(1.25)
    # L_S so small that theta_jS <= 1: no cluster can form
    tiny = sectors.modes(r, theta, beta + alpha * jnp.minimum(Lbar, 1.0), Lbar, beta, alpha, 1.0)
    assert not bool(tiny["exists"][0]) and not bool(tiny["exists"][1])


# -------------------------------------------------- exact agreement with numpy


def _random_sector_points(rng, n, J):
    r = np.exp(rng.uniform(np.log(0.2), np.log(5.0), (n, J)))
    theta = rng.uniform(1.0001, 5.0, (n, J))
    # plant exact ties so near-ties get exercised
    k = n // 20
    theta[:k, 1] = r[:k, 1] / (r[:k, 0] / theta[:k, 0])
    return r, theta


def test_coordination_matches_numpy_exactly():
    rng = np.random.default_rng(0)
    n, J = 100_000, 3
    r, theta = _random_sector_points(rng, n, J)
    out = run_kernel("coordination", J, {"r": r, "theta": theta})
    ex, wage = reference.sectors(r, theta)
    np.testing.assert_array_equal(out["exists"], ex)
    np.testing.assert_allclose(out["wage"], wage, rtol=1e-12, equal_nan=True)
    assert np.array_equal(out["wage"], wage, equal_nan=True)  # to the bit, in fact


def test_modes_matches_numpy_exactly():
    rng = np.random.default_rng(1)
    n, J = 100_000, 2
    r, _ = _random_sector_points(rng, n, J)
    beta, alpha = rng.uniform(0.05, 0.95, n), rng.uniform(0.05, 2.0, n)
    Lbar = rng.uniform(0.5, 20.0, (n, J))
    theta = beta[:, None] + alpha[:, None] * Lbar
    L_S = np.where(rng.random(n) < 0.5, np.inf, rng.uniform(0.5, 25.0, n))
    ok = (theta > 1).all(axis=1)
    r, beta, alpha, Lbar, theta, L_S = r[ok], beta[ok], alpha[ok], Lbar[ok], theta[ok], L_S[ok]
    params = {
        "r_1": r[:, 0],
        "r_2": r[:, 1],
        "beta": beta,
        "alpha": alpha,
        "L_S": L_S,
        "Lbar_1": Lbar[:, 0],
        "Lbar_2": Lbar[:, 1],
    }
    out = run_kernel("modes", J, resolve_inputs("modes", J, params))
    theta_S = np.where(L_S[:, None] >= Lbar, theta, beta[:, None] + alpha[:, None] * L_S[:, None])
    mixed = reference.lt((1.0 - beta[:, None]) / alpha[:, None], np.minimum(L_S[:, None], Lbar))
    ex, wage = reference.sectors(r, theta, theta_S, mixed)
    np.testing.assert_array_equal(out["exists"], ex)
    assert np.array_equal(out["wage"], wage, equal_nan=True)


def test_standard_matches_numpy_exactly():
    rng = np.random.default_rng(2)
    n = 100_000
    r_1 = np.exp(rng.uniform(-1.5, 1.5, n))
    r_2 = np.exp(rng.uniform(-1.5, 1.5, n))
    theta = rng.uniform(1.0001, 5.0, n)
    theta_S = np.where(rng.random(n) < 0.5, theta, 1.0 + (theta - 1.0) * rng.random(n))
    theta[: n // 20] = (r_2 / r_1)[: n // 20]  # exact knife-edges c = theta
    out = run_kernel("standard", 2, {"r_1": r_1, "r_2": r_2, "theta": theta, "theta_S": theta_S})
    ex, wage = reference.standard(r_1, r_2, theta, theta_S)
    np.testing.assert_array_equal(out["exists"], ex)
    assert np.array_equal(out["wage"], wage, equal_nan=True)
    assert out["knife_edge"][: n // 20].all()


# ------------------------------------------------------------------ properties

pos = st.floats(0.05, 20.0, allow_nan=False)
gain = st.floats(1.001, 10.0, allow_nan=False)


@st.composite
def ordered_point(draw, J=None):
    """A point satisfying the claims' assumptions: r_j and r_j/theta_j strictly falling."""
    J = J or draw(st.integers(2, 5))
    r = sorted(draw(st.lists(pos, min_size=J, max_size=J, unique=True)), reverse=True)
    theta = [draw(gain)]
    for j in range(1, J):
        # theta_j > theta_{j-1} r_j / r_{j-1} keeps r_j/theta_j falling
        lo = max(1.001, theta[-1] * r[j] / r[j - 1] * 1.0001)
        theta.append(draw(st.floats(lo, lo + 10.0)))
    return np.array(r), np.array(theta)


@settings(max_examples=150, deadline=None)
@given(ordered_point())
def test_claims_hold_under_the_papers_assumptions(pt):
    r, theta = pt
    out = coord(r, theta)
    if not out["knife_edge"]:
        assert (out["claims"] == 1).all(), out["claims"]
    assert out["n_stable"] >= 1


@settings(max_examples=150, deadline=None)
@given(
    st.integers(2, 5).flatmap(
        lambda J: st.tuples(
            st.lists(pos, min_size=J, max_size=J), st.lists(gain, min_size=J, max_size=J)
        )
    ),
    gain,
)
def test_wage_of_Ck_independent_of_theta_k(rt, new_theta):
    r, theta = np.array(rt[0]), np.array(rt[1])
    J = len(r)
    a = coord(r, theta)
    for k in range(J):
        t2 = theta.copy()
        t2[k] = new_theta
        b = coord(r, t2)
        if a["exists"][k] and b["exists"][k]:
            assert b["wage"][k] == pytest.approx(a["wage"][k], rel=1e-12)
            assert a["wage"][k] == pytest.approx(r[k], rel=1e-12)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(2, 4).flatmap(
        lambda J: st.tuples(
            st.lists(pos, min_size=J, max_size=J),
            st.lists(pos, min_size=J, max_size=J),
            st.lists(gain, min_size=J, max_size=J),
        )
    ),
    st.floats(0.01, 100.0),
)
def test_invariant_to_scaling_lam_S_and_lam_N_together(v, scale):
    lam_S, lam_N, theta = (np.array(x) for x in v)
    a = coord(lam_S / lam_N, theta)
    b = coord((lam_S * scale) / (lam_N * scale), theta)
    assume(not (a["knife_edge"] or b["knife_edge"]))  # at a tie an ulp may flip existence
    for key in ("exists", "stable", "regime", "wage_rank"):
        np.testing.assert_array_equal(a[key], b[key])
    np.testing.assert_allclose(a["wage"], b["wage"], rtol=1e-12)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(2, 4).flatmap(
        lambda J: st.tuples(
            st.lists(pos, min_size=J, max_size=J), st.lists(gain, min_size=J, max_size=J)
        )
    )
)
def test_rank_consistent_with_wage_and_a_stable_equilibrium_exists(rt):
    r, theta = np.array(rt[0]), np.array(rt[1])
    out = coord(r, theta)
    ex, w, rank = out["exists"], out["wage"], out["wage_rank"]
    assert out["n_stable"] >= 1
    assert out["n_equilibria"] == ex.sum()
    assert ((rank == 0) == ~ex).all()
    idx = np.flatnonzero(ex)
    for i in idx:
        for j in idx:
            if w[i] > w[j]:
                assert rank[i] < rank[j]
            elif w[i] == w[j]:
                assert rank[i] == rank[j]
    assert w[out["best"]] == np.nanmax(w) and w[out["worst"]] == np.nanmin(w)
    assert labels("coordination", len(r))[0] == "C1"


@settings(max_examples=200, deadline=None)
@given(pos, pos, gain, st.floats(0.0, 1.0))
def test_standard_n_stable_and_condition_P(r_1, r_2, theta, s):
    theta_S = 1.0 + s * (theta - 1.0) if s > 0 else theta
    out = std(r_1, r_2, theta, theta_S)
    assert out["n_stable"] >= 1 or (theta_S <= 1.0 + 1e-12)
    if theta_S == theta and not out["knife_edge"]:
        c = r_2 / r_1
        assert (out["n_stable"] == 2) == (1 < c < theta)
