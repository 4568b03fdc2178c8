"""Sensitivity (SALib) and scenario discovery (PRIM) on functions with known answers,
through the path a sampled cube takes: designs.samples -> DataFrame -> analysis."""

from __future__ import annotations

import math
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from pipeline import analysis as A  # noqa: E402
from pipeline import designs as D  # noqa: E402

# Ishigami, a = 7, b = 0.1: closed-form indices (Ishigami & Homma 1990; Saltelli et al.
# 2008, sec. 4.6): V = a^2/8 + b pi^4/5 + b^2 pi^8/18 + 1/2, V1 = (1 + b pi^4/5)^2 / 2,
# V2 = a^2/8, V13 = b^2 pi^8 (1/18 - 1/50).
ISHIGAMI_S1 = {"x1": 0.3139, "x2": 0.4424, "x3": 0.0}
ISHIGAMI_ST = {"x1": 0.5576, "x2": 0.4424, "x3": 0.2437}
ECON = {
    "r_1": {"loguniform": [0.25, 4.0]},
    "r_2": {"loguniform": [0.25, 4.0]},
    "theta_1": {"uniform": [1.05, 4.0]},
    "theta_2": {"uniform": [1.05, 4.0]},
}


def table(design: dict, params: dict) -> tuple[pd.DataFrame, str]:
    """The sample table a sampled cube holds, and its design's name."""
    spec = D.parse_design(design, params)
    return pd.DataFrame(spec.samples()), spec.design.kind


def ishigami(X: pd.DataFrame, a: float = 7.0, b: float = 0.1) -> np.ndarray:
    x1, x2, x3 = (X[c].to_numpy() for c in ("x1", "x2", "x3"))
    return np.sin(x1) + a * np.sin(x2) ** 2 + b * x3**4 * np.sin(x1)


ISHIGAMI_PARAMS = {c: {"uniform": [-math.pi, math.pi]} for c in ("x1", "x2", "x3")}


def test_ishigami_closed_forms_match_the_published_values():
    a, b = 7.0, 0.1
    V = a**2 / 8 + b * math.pi**4 / 5 + b**2 * math.pi**8 / 18 + 0.5
    V1 = (1 + b * math.pi**4 / 5) ** 2 / 2
    V13 = b**2 * math.pi**8 * (1 / 18 - 1 / 50)
    assert round(V1 / V, 4) == ISHIGAMI_S1["x1"]
    assert round(a**2 / 8 / V, 4) == ISHIGAMI_S1["x2"] == ISHIGAMI_ST["x2"]
    assert round((V1 + V13) / V, 4) == ISHIGAMI_ST["x1"]
    assert round(V13 / V, 4) == ISHIGAMI_ST["x3"]


def test_sobol_ishigami_within_confidence_intervals():
    X, design = table({"saltelli": 1024, "seed": 3}, ISHIGAMI_PARAMS)
    assert design == "saltelli" and len(X) == 1024 * 5
    res = A.sensitivity(X, ishigami(X), method="sobol", design=design, seed=1)
    assert list(res.columns) == ["S1", "S1_conf", "ST", "ST_conf"]
    assert list(res.index) == ["x1", "x2", "x3"]
    for p in res.index:
        assert abs(res.at[p, "S1"] - ISHIGAMI_S1[p]) <= res.at[p, "S1_conf"], p
        assert abs(res.at[p, "ST"] - ISHIGAMI_ST[p]) <= res.at[p, "ST_conf"], p
        assert 0 < res.at[p, "ST_conf"] < 0.15
    assert res.attrs["base_samples"] == 1024 and res.attrs["second_order"] is False
    assert res.attrs["n"] == 5120


def test_sobol_column_order_is_free():
    """Columns are matched to the Saltelli blocks from the rows themselves."""
    X, design = table({"saltelli": 256, "seed": 3}, ISHIGAMI_PARAMS)
    y = ishigami(X)
    a = A.sensitivity(X, y, design=design, seed=2)
    b = A.sensitivity(X[["x3", "x1", "x2"]], y, design=design, seed=2)
    assert list(b.index) == ["x3", "x1", "x2"]
    pd.testing.assert_frame_equal(a, b.loc[a.index], check_like=True)


def test_sobol_second_order_ishigami():
    X, design = table({"saltelli": 512, "seed": 5, "second_order": True}, ISHIGAMI_PARAMS)
    assert len(X) == 512 * 8
    res = A.sensitivity(X, ishigami(X), design=design, seed=1)
    assert res.attrs["second_order"] is True
    S2, conf = res.attrs["S2"], res.attrs["S2_conf"]
    assert abs(S2.at["x1", "x3"] - ISHIGAMI_ST["x3"]) <= conf.at["x1", "x3"]
    for i, j in (("x1", "x2"), ("x2", "x3")):
        assert abs(S2.at[i, j]) <= conf.at[i, j]  # no x1-x2 or x2-x3 interaction


def test_sobol_existence_of_c2_stand_in():
    """y = [r_1 / r_2 <= theta_1] (C2 exists, coordination J = 2): theta_2 does not
    enter, so its total index is 0 within its interval; the others clearly matter."""
    X, design = table({"saltelli": 1024, "seed": 11}, ECON)
    y = (X["r_1"] / X["r_2"] <= X["theta_1"]).to_numpy()
    res = A.sensitivity(X, y, design=design, seed=4)
    lo, hi = res["ST"] - res["ST_conf"], res["ST"] + res["ST_conf"]
    assert lo["theta_2"] <= 0 <= hi["theta_2"]
    for p in ("r_1", "r_2", "theta_1"):
        assert lo[p] > 0.1, p
    # r_1 and r_2 enter as a ratio with the same distribution: equal within their intervals
    assert abs(res.at["r_1", "ST"] - res.at["r_2", "ST"]) <= res["ST_conf"][["r_1", "r_2"]].sum()


def test_pawn_existence_of_c2_stand_in():
    """PAWN on the same boolean output, on a quasi-random (non-Saltelli) design."""
    X, design = table({"sobol": 2048, "seed": 11}, ECON)
    y = (X["r_1"] / X["r_2"] <= X["theta_1"]).to_numpy()
    res = A.sensitivity(X, y, method="pawn", design=design, seed=4, num_resamples=20)
    assert list(res.columns)[:2] == ["median", "median_conf"]
    assert res.attrs["median_conf"].startswith("bootstrap")
    lo = res["median"] - res["median_conf"]
    hi_null = res.at["theta_2", "median"] + res.at["theta_2", "median_conf"]
    for p in ("r_1", "r_2", "theta_1"):
        assert lo[p] > hi_null, p


def test_sobol_refusals_say_why_and_what_to_do():
    X, _ = table({"sobol": 256, "seed": 1}, ISHIGAMI_PARAMS)
    with pytest.raises(A.AnalysisError, match="needs a Saltelli design.*'delta' or 'pawn'"):
        A.sensitivity(X, ishigami(X), design="sobol")
    X, _ = table({"saltelli": 64, "seed": 1}, ISHIGAMI_PARAMS)
    y = ishigami(X)
    with pytest.raises(A.AnalysisError, match="cannot take given.*'delta' or 'pawn' with given"):
        A.sensitivity(X, y, design="saltelli", given=y > 0)
    with pytest.raises(A.AnalysisError, match="not a Saltelli sample in generation order"):
        shuffled = np.random.default_rng(0).permutation(len(X))
        A.sensitivity(X.iloc[shuffled], y[shuffled], design="saltelli")
    with pytest.raises(A.AnalysisError, match="not a Saltelli sample"):
        A.sensitivity(X.iloc[:-3], y[:-3], design="saltelli")
    keep = np.r_[0:7, 8:316]  # a row lost: 315 rows, 63 blocks of 5, but misaligned
    with pytest.raises(A.AnalysisError, match="not a Saltelli sample"):
        A.sensitivity(X.iloc[keep], y[keep], design="saltelli")
    # whole base blocks dropped keep the layout (63 base samples)
    assert A.sensitivity(X.iloc[:-5], y[:-5], design="saltelli").attrs["base_samples"] == 63


def test_non_finite_output_refused_with_count_and_given_works():
    """NaN where an equilibrium does not exist: refused (with how many), and analysable
    on the rows where it is defined with given."""
    X, design = table({"sobol": 1024, "seed": 2}, ECON)
    exists = (X["r_1"] / X["r_2"] <= X["theta_1"]).to_numpy()
    w = np.where(exists, np.log(X["r_1"].to_numpy()), np.nan)  # a wage, where C2 exists
    n_nan = int((~exists).sum())
    for method in ("delta", "pawn"):
        with pytest.raises(A.AnalysisError, match=f"at {n_nan} of 1024 samples.*given="):
            A.sensitivity(X, w, method=method, design=design)
    with pytest.raises(A.AnalysisError, match="not finite"):
        X2, _ = table({"saltelli": 64, "seed": 1}, ECON)
        y2 = np.where(X2["theta_1"] > 2, 1.0, np.nan)
        A.sensitivity(X2, y2, design="saltelli")
    res = A.sensitivity(X, w, method="pawn", design=design, given=exists, num_resamples=10)
    assert res.attrs["n"] == int(exists.sum())
    assert res["median"].idxmax() == "r_1"


def test_other_refusals():
    X, design = table({"lhs": 400, "seed": 2}, ECON)
    y = (X["r_1"] > 1).to_numpy()
    with pytest.raises(A.AnalysisError, match="meaningless for an output with two values"):
        A.sensitivity(X, y, method="delta", design=design)
    with pytest.raises(A.AnalysisError, match="one value"):
        A.sensitivity(X, np.ones(len(X)), method="pawn", design=design)
    with pytest.raises(A.AnalysisError, match="only 30 samples in the given subset"):
        A.sensitivity(
            X, X["r_1"].to_numpy(), method="pawn", design=design, given=np.arange(400) < 30
        )
    with pytest.raises(A.AnalysisError, match="boolean mask"):
        A.sensitivity(X, X["r_1"].to_numpy(), method="pawn", design=design, given=np.arange(10))
    with pytest.raises(A.AnalysisError, match="unknown method"):
        A.sensitivity(X, X["r_1"].to_numpy(), method="morris", design=design)
    with pytest.raises(A.AnalysisError, match="one value per sample"):
        A.sensitivity(X, np.ones(3), method="pawn", design=design)


@pytest.mark.parametrize("method", ["delta", "pawn"])
def test_regime_conditional_sensitivity(method):
    """y = ln r_1 where theta_1 > 2.5 (one regime), ln r_2 elsewhere. Given the first
    regime only r_1 matters, given the second only r_2; the samples used are the given
    ones."""
    X, design = table({"sobol": 1024, "seed": 9}, ECON)
    regime = (X["theta_1"] > 2.5).to_numpy()
    y = np.where(regime, np.log(X["r_1"]), np.log(X["r_2"]))
    col = "delta" if method == "delta" else "median"
    for given, key, others in ((regime, "r_1", "r_2"), (~regime, "r_2", "r_1")):
        res = A.sensitivity(X, y, method=method, design=design, given=given, num_resamples=15)
        assert res.attrs["n"] == int(given.sum()) < len(X)
        assert res[col].idxmax() == key
        rest = res[col].drop(key)
        assert res.at[key, col] - res.at[key, f"{col}_conf"] > 5 * rest.max(), res
        assert res.at[others, col] < 0.1
    if method == "delta":
        assert res.at["r_2", "S1"] > 0.9  # the given-data first-order index, too


def test_seeded_and_free_of_side_effects():
    X, design = table({"saltelli": 128, "seed": 3}, ISHIGAMI_PARAMS)
    y = ishigami(X)
    np.random.seed(123)  # noqa: NPY002 - the legacy global state SALib uses
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    filters = list(warnings.filters)
    fmt = warnings.formatwarning
    a = A.sensitivity(X, y, design=design, seed=5)
    b = A.sensitivity(X, y, design=design, seed=5)
    c = A.sensitivity(X, y, design=design, seed=6)
    d1 = A.sensitivity(
        X, X["x2"].to_numpy() ** 2, method="delta", design=design, seed=5, num_resamples=5
    )
    d2 = A.sensitivity(
        X, X["x2"].to_numpy() ** 2, method="delta", design=design, seed=5, num_resamples=5
    )
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(d1, d2)
    assert not np.array_equal(a["ST_conf"], c["ST_conf"])
    assert np.array_equal(a["ST"], c["ST"])  # the estimate itself does not resample
    assert np.array_equal(np.random.get_state()[1], before)  # noqa: NPY002
    assert warnings.filters == filters and warnings.formatwarning is fmt


def test_saltelli_layout_reads_the_blocks():
    u = D.unit_samples(D.Design("saltelli", 16, 1, second_order=True), 3)
    assert A.saltelli_layout(u) == (16, True, [0, 1, 2])
    assert A.saltelli_layout(u[:, [2, 0, 1]]) == (16, True, [1, 2, 0])
    u = D.unit_samples(D.Design("saltelli", 16, 1), 2)  # 64 rows: 4 or 6 per block
    assert A.saltelli_layout(u) == (16, False, [0, 1])


# ------------------------------------------------------------------------- PRIM


def test_prim_recovers_a_known_box():
    """Cases of interest: 0.5 < r_1 < 2 and theta_1 > 2 (a box in two of four
    parameters). PRIM finds those two, and limits within the peeling resolution
    (peel_alpha of the range, in the design's scale)."""
    X, _ = table({"sobol": 2048, "seed": 5}, ECON)
    y = ((X["r_1"] > 0.5) & (X["r_1"] < 2.0) & (X["theta_1"] > 2.0)).to_numpy()
    res = A.discover(X, y, threshold=0.95, peel_alpha=0.05)
    box = res.box
    assert box.index[box["restricted"]].tolist() == ["r_1", "theta_1"]
    assert res.meets_threshold and res.density >= 0.95 and res.coverage > 0.9
    tol_log = 0.05 * math.log(4.0 / 0.25)
    assert abs(math.log(box.at["r_1", "min"] / 0.5)) < tol_log
    assert abs(math.log(box.at["r_1", "max"] / 2.0)) < tol_log
    assert abs(box.at["theta_1", "min"] - 2.0) < 0.05 * (4.0 - 1.05)
    assert box.at["theta_1", "max"] == X["theta_1"].max()  # unpeeled side
    assert np.isfinite(box.loc[["r_1", "theta_1"], "qp"]).all()
    assert (box.loc[["r_1", "theta_1"], "qp"] < 1e-6).all()
    assert np.isnan(box.loc[["r_2", "theta_2"], "qp"]).all()
    # the box classifies the samples as the rule does, up to the resolution
    assert np.mean(res.inside(X) == y) > 0.97


def test_prim_trajectory_table():
    X, _ = table({"lhs": 1000, "seed": 5}, ECON)
    y = (X["theta_2"] < 2.0).to_numpy()
    res = A.discover(X, y, threshold=0.9)
    t = res.trajectory
    expected = ["coverage", "density", "mass", "res_dim"] + [
        f"{n}_{s}" for n in X.columns for s in ("min", "max")
    ]
    assert list(t.columns) == expected
    first = t.iloc[0]
    assert first["coverage"] == 1.0 and first["mass"] == 1.0 and first["res_dim"] == 0
    assert first["density"] == pytest.approx(y.mean())
    # mass never grows while peeling; the box always nests in the previous one
    peel = t.iloc[: int(t["mass"].to_numpy().argmin()) + 1]
    assert (np.diff(peel["mass"]) < 0).all()
    assert (np.diff(peel["theta_2_max"]) <= 0).all()
    # coverage, density and mass agree with counts of the box's samples
    row = t.iloc[res.chosen]
    inside = res.inside(X)
    assert row["mass"] == pytest.approx(inside.mean())
    assert row["density"] == pytest.approx(y[inside].mean())
    assert row["coverage"] == pytest.approx(y[inside].sum() / y.sum())
    assert res.box.index[res.box["restricted"]].tolist() == ["theta_2"]
    assert res.box.at["theta_2", "max"] == pytest.approx(2.0, abs=0.05 * 2.95)


def test_prim_threshold_not_reached_and_refusals():
    X, _ = table({"random": 500, "seed": 5}, ECON)
    y = np.random.default_rng(0).random(500) < 0.3  # no structure: no dense box
    with pytest.warns(UserWarning, match="no PRIM box reaches density 0.99"):
        res = A.discover(X, y, threshold=0.99)
    assert not res.meets_threshold
    assert res.chosen == int(res.trajectory["density"].to_numpy().argmax())
    with pytest.raises(A.AnalysisError, match="False on all 500 samples"):
        A.discover(X, np.zeros(500, dtype=bool))
    with pytest.raises(A.AnalysisError, match="booleans"):
        A.discover(X, X["r_1"].to_numpy())
    with pytest.raises(A.AnalysisError, match="peel_alpha"):
        A.discover(X, y, peel_alpha=0.9)


def test_prim_figures():
    X, _ = table({"sobol": 512, "seed": 5}, ECON)
    y = ((X["r_1"] < 1.0) & (X["theta_1"] > 2.0)).to_numpy()
    res = A.discover(X, y)
    fig = A.plot_discovery(res, log=("r_1", "r_2"))
    ax1, ax2 = fig.axes[:2]
    assert ax1.get_xlabel() == "coverage" and ax1.get_ylabel() == "density"
    assert [t.get_text() for t in ax2.get_yticklabels()][:2] == ["r_1 (log)", "r_2 (log)"]
    assert len(ax2.patches) == 4  # one bar per parameter
    r1 = ax2.patches[0]
    # r_1 < 1 is the lower half of [0.25, 4] in log: a bar from 0 to ~0.5
    assert r1.get_x() == pytest.approx(0.0, abs=0.02)
    assert r1.get_width() == pytest.approx(0.5, abs=0.05)
    plt.close(fig)
    ax = A.plot_peeling(res)
    assert ax.get_title() == "PRIM peeling trajectory"
    plt.close(ax.figure)
