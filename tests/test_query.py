"""The ``ds.marshall`` accessor against direct xarray computations and the closed forms
of docs/models.md."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import xarray as xr
import zarr

import pipeline.query  # noqa: F401  (registers ds.marshall)
from pipeline import open_cube, parse_config, run
from pipeline.models._spec import regime_name
from pipeline.query import ExpressionError

from .cubes import DYNAMIC, INCREASING, as_written, build_cube, coordination, standard

COORD = coordination(65, 50)
STANDARD = standard(81, 60)
SCALE = """
model: standard
params:
  r_1: 1.0
  r_2: {logspace: [0.25, 8.0, 41]}
  alpha: 1.0
  Lbar: 2.0
  L_S: {linspace: [0.2, 3.0, 29]}
output: x.zarr
"""
PATHS: dict[str, object] = {}  # cube name -> store path


def build(tmp_path_factory, text: str, name: str, **kw) -> xr.Dataset:
    ds, PATHS[name] = build_cube(tmp_path_factory, text, name, **kw)
    return ds


@pytest.fixture(scope="module")
def coord(tmp_path_factory):
    return build(tmp_path_factory, COORD, "coord")


@pytest.fixture(scope="module")
def std(tmp_path_factory):
    return build(tmp_path_factory, STANDARD, "std")


@pytest.fixture(scope="module")
def dyn(tmp_path_factory):
    pytest.importorskip("pipeline.models.dynamic")
    return build(tmp_path_factory, DYNAMIC, "dyn")


def direct_names(ds) -> np.ndarray:
    """Regime names computed directly from the stored bitmask (independent of the accessor)."""
    labels = list(ds["regime"].attrs["regime_bits"])
    codes = ds["regime"].values
    return np.vectorize(lambda c: regime_name(int(c), labels))(codes)


# ----------------------------------------------------------------- regime shares


def test_regime_names_and_codes(coord):
    acc = coord.marshall
    names = acc.regime_names()
    assert names == {
        int(k): v for k, v in json.loads(coord["regime"].attrs["regime_labels"]).items()
    }
    assert set(names.values()) == set(np.unique(direct_names(coord)))
    assert acc.regime_code("C1+B1") == acc.regime_code("B1+C1") == 0b101
    with pytest.raises(ValueError, match="unknown regime"):
        acc.regime_code("B9+C1")


def test_regime_share_matches_direct_count(coord):
    share = coord.marshall.regime_share()
    names = direct_names(coord)
    assert share.sum() == pytest.approx(1.0)
    for name, v in share.items():
        assert v == pytest.approx(np.mean(names == name), abs=1e-15)


def test_regime_share_by_dimension(coord):
    df = coord.marshall.regime_share(by="theta_2")
    assert list(df.index) == [1.5, 2.0]
    np.testing.assert_allclose(df.sum(axis=1), 1.0)
    names = direct_names(coord)
    for i, t2 in enumerate(coord["theta_2"].values):
        for name in df.columns:
            assert df.loc[t2, name] == pytest.approx(np.mean(names[:, :, i] == name), abs=1e-15)
    df2 = coord.marshall.regime_share(by=["theta_2", "theta_1"])
    assert df2.shape[0] == 2 * 50
    with pytest.raises(ValueError, match="unknown dimension 'nope'"):
        coord.marshall.regime_share(by="nope")


def test_share_of_C2_against_closed_form(coord):
    """C2 (coordination, r_2 = 1) is stable iff r_1 < theta_1 (docs/models.md sec. 4, k = 1, j = 2):
    exactly on the grid's coordinates, and as the area of that region of the
    (log r_1, theta_1) rectangle to grid resolution."""
    share = coord.marshall.regime_share()
    with_c2 = sum(v for name, v in share.items() if "C2" in name.split("+"))
    r1, t1 = np.meshgrid(coord["r_1"].values, coord["theta_1"].values, indexing="ij")
    assert with_c2 == pytest.approx(np.mean(r1 < t1), abs=1e-15)
    # area: fraction of theta in [a, b] x log r in [ln 0.25, ln 8] with ln r < ln theta
    a, b = 1.05, 6.0
    area = ((b * math.log(b) - b) - (a * math.log(a) - a)) / (b - a)  # mean of ln theta
    area = (area - math.log(0.25)) / math.log(32.0)
    assert with_c2 == pytest.approx(area, abs=1 / 65 + 1 / 50)


def test_multiple_is_condition_P_in_standard(std):
    """Standard model with L_S >= Lbar: several stable equilibria iff 1 < c < theta."""
    m = std.marshall.multiple()
    assert m.dtype == bool and m.dims == ("r_2", "theta")
    c = std["r_2"] / std["r_1"]
    expected = (c > 1) & (c < std["theta"]) & ~std["knife_edge"]
    xr.testing.assert_equal(
        m.drop_vars(list(m.coords)),
        expected.transpose(*m.dims).drop_vars(list(expected.coords)).rename("multiple"),
    )
    a, b = 1.05, 6.0
    area = ((b * math.log(b) - b) - (a * math.log(a) - a)) / (b - a) / math.log(32.0)
    assert float(m.mean()) == pytest.approx(area, abs=1 / 81 + 1 / 60)
    assert std.marshall.regime_share()["B1+C2"] == pytest.approx(float(m.mean()), abs=1e-15)


def test_incomplete_cube_counts_computed_points_only(tmp_path):
    text = COORD.replace("output: x.zarr", "chunks: {r_1: 16}\noutput: x.zarr")
    spec = parse_config(text, output=tmp_path / "part.zarr")
    run(spec, workers=0, max_blocks=2)
    ds = open_cube(spec.output)
    acc = ds.marshall
    done = ds["done"].values
    assert 0 < done.sum() < done.size
    share = acc.regime_share()
    names = direct_names(ds)
    for name, v in share.items():
        assert v == pytest.approx(np.mean(names[done] == name), abs=1e-15)
    assert not acc.where("theta_1 > 0").values[~done].any()
    assert int(acc.multiple().sum()) == int(((ds["n_stable"] > 1) & ds["done"]).sum())


# ---------------------------------------------------------------------------- at


def test_at_nearest_point(coord):
    acc = coord.marshall
    df = acc.at(r_1=2.1, theta_1=3.02, theta_2=1.9)
    i = int(np.argmin(np.abs(np.log(coord["r_1"].values) - math.log(2.1))))
    j = int(np.argmin(np.abs(coord["theta_1"].values - 3.02)))
    pt = coord.isel(r_1=i, theta_1=j, theta_2=1)
    assert df.attrs["coords"] == {
        "r_1": float(pt["r_1"]),
        "theta_1": float(pt["theta_1"]),
        "theta_2": 2.0,
        "r_2": 1.0,
    }
    assert list(df.index) == ["C1", "C2", "B1", "B2"]
    assert list(df.columns) == ["exists", "stable", "wage", "rank"]
    np.testing.assert_array_equal(df["exists"], pt["exists"].values)
    np.testing.assert_array_equal(df["stable"], pt["stable"].values)
    np.testing.assert_array_equal(df["wage"], pt["wage"].values)
    np.testing.assert_array_equal(df["rank"], pt["wage_rank"].values)
    labels = list(coord["regime"].attrs["regime_bits"])
    assert df.attrs["regime"] == regime_name(int(pt["regime"]), labels)
    assert df.attrs["best"] == "C1"  # r_1 > r_2: C1 pays r_1 (docs/models.md claim 3)


def test_at_is_nearest_in_log_on_log_axes(coord):
    r = coord["r_1"].values
    lo, hi = r[10], r[11]
    v = math.sqrt(lo * hi) * (1 + 1e-5)  # nearer hi in log, nearer lo linearly
    assert abs(v - lo) < abs(v - hi)
    df = coord.marshall.at(r_1=v, theta_1=2, theta_2=2)
    assert df.attrs["coords"]["r_1"] == hi


def test_at_errors(coord):
    acc = coord.marshall
    with pytest.raises(ValueError, match=r"left over: theta_1 .*theta_2"):
        acc.at(r_1=2)
    with pytest.raises(ValueError, match="unknown dimension 'theta_9'"):
        acc.at(r_1=2, theta_1=2, theta_2=2, theta_9=1)
    with pytest.raises(ValueError, match="'r_2' is fixed at 1"):
        acc.at(r_1=2, theta_1=2, theta_2=2, r_2=3)
    assert acc.at(r_1=2, theta_1=2, theta_2=2, r_2=1.0).attrs["done"]


# ------------------------------------------------------------------------- where


def _bare(da):
    return da.drop_vars([c for c in da.coords if c not in da.dims])


@pytest.mark.parametrize(
    ("expr", "direct"),
    [
        (
            "theta_1 > 2 and exists.sel(equilibrium='C2')",
            lambda d: (d.theta_1 > 2) & d.exists.sel(equilibrium="C2"),
        ),
        (
            "theta_1 > 2 and exists['C2']",
            lambda d: (d.theta_1 > 2) & d.exists.sel(equilibrium="C2"),
        ),
        ("regime == 'C1+B1'", lambda d: d.regime == 0b101),
        (
            "not stable['B1'] or r_1 / r_2 <= 0.5",
            lambda d: ~d.stable.sel(equilibrium="B1") | (d.r_1 / d.r_2 <= 0.5),
        ),
        ("1 < r_1 <= theta_1", lambda d: (d.r_1 > 1) & (d.r_1 <= d.theta_1)),
        (
            "best == 'C2' and wage['C2'] > 2 * wage['B2']",
            lambda d: (
                (d.best == 1) & (d.wage.sel(equilibrium="C2") > 2 * d.wage.sel(equilibrium="B2"))
            ),
        ),
        (
            "log(r_1) > 0 and exists.any('equilibrium')",
            lambda d: (np.log(d.r_1) > 0) & d.exists.any("equilibrium"),
        ),
        (
            "claims['2'] == 1 and n_stable >= 3",
            lambda d: (d.claims.sel(claim="2") == 1) & (d.n_stable >= 3),
        ),
        ("(theta_2 == 2) & ~knife_edge", lambda d: (d.theta_2 == 2) & ~d.knife_edge),
        ("r_2 == 1", lambda d: xr.ones_like(d.done)),
    ],
)
def test_where_matches_direct_xarray(coord, expr, direct):
    mask = coord.marshall.where(expr)
    assert mask.dims == ("r_1", "theta_1", "theta_2") and mask.dtype == bool
    expected = (direct(coord) & coord.done).broadcast_like(coord.done).transpose(*mask.dims)
    np.testing.assert_array_equal(mask.values, expected.values)
    assert coord.marshall.count(expr) == int(expected.sum())


def test_where_standard_c_is_condition_P(std):
    mask = std.marshall.where("1 < c < theta and not knife_edge")
    np.testing.assert_array_equal(mask.values, std.marshall.multiple().values)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("__import__('os').system('true')", "method 'system' is not allowed"),
        ("__import__('os')", "unknown function '__import__'"),
        ("open('/etc/passwd')", "unknown function 'open'"),
        ("exists.__class__", "attribute access is not allowed"),
        ("exists.values", "attribute access is not allowed"),
        ("exists.sel(equilibrium='C2').__class__.__bases__", "attribute access"),
        ("(lambda: 1)()", "call not allowed"),
        ("lambda: 1", "Lambda is not allowed"),
        ("[x for x in r_1]", "ListComp is not allowed"),
        ("r_1 if True else theta_1", "IfExp is not allowed"),
        ("exists.sel(equilibrium=__name__)", "must be constants"),
        ("exists.sel(**{'equilibrium': 'C2'})", r"\*\*kwargs"),
        ("exists.to_netcdf('x.nc')", "method 'to_netcdf' is not allowed"),
        ("getattr(exists, 'values')", "unknown function 'getattr'"),
        ("exists['C9']", "cannot select"),
        ("regime == 'B9'", "unknown regime"),
        ("foo > 1", "unknown name 'foo'; known: r_1, theta_1, theta_2, r_2"),
        ("exists", "still varies over \\['equilibrium'\\]"),
        ("wage['C1']", "not a condition"),
        ("r_1 >", "cannot parse"),
        ("x" * 3000, "longer than"),
        ("~" * 1500 + "knife_edge", "nested too deeply"),
        ("abs('a') > 1", "cannot evaluate"),
        ("1 / 0 > 1", "cannot evaluate"),
    ],
)
def test_where_rejects(coord, expr, message):
    with pytest.raises(ExpressionError, match=message):
        coord.marshall.where(expr)


def test_where_power_does_not_hang(coord):
    assert coord.marshall.count("10 ** 10 ** 10 > 1") == coord.done.size


def test_points_table(coord):
    acc = coord.marshall
    mask = acc.where("regime == 'B1+C1+C2' and theta_2 == 2")
    pts = acc.points(mask, limit=7)
    assert pts.attrs["matches"] == int(mask.sum()) and len(pts) == 7
    assert list(pts.columns) == [
        "r_1", "theta_1", "theta_2", "regime", "n_stable", "best", "best_wage"
    ]  # fmt: skip
    for row in pts.itertuples():
        sel = dict(r_1=row.r_1, theta_1=row.theta_1, theta_2=row.theta_2)
        assert bool(mask.sel(sel))
        assert row.regime == "B1+C1+C2" and row.n_stable == int(coord.n_stable.sel(sel))
    assert len(acc.points("theta_1 > 100")) == 0


# ------------------------------------------------------------------------ claims


def test_claims_paper_grid(coord):
    df = coord.marshall.claims()
    assert list(df.index) == ["1", "2", "3", "4", "5"]
    cl = coord["claims"]
    for lab, row in df.iterrows():
        c = cl.sel(claim=lab)
        assert row["held"] == int((c == 1).sum()) and row["failed"] == int((c == 0).sum())
        assert row["not_applicable"] == int((c == -1).sum())
        assert row["checked"] > 0 and row["failed"] == 0 and row["examples"] == []
        assert row["statement"]
    assert coord.marshall.claims_ok()


def test_claims_report_counterexamples(coord, tmp_path):
    """No claim can fail where its assumptions hold (they are theorems of docs/models.md), so a
    failing cube is made by editing the stored claims of a copy."""
    path = tmp_path / "edited.zarr"
    shutil.copytree(PATHS["coord"], path)
    arr = zarr.open_group(path, mode="r+")["claims"]
    i, j, k = 40, 10, 1
    assert arr[i, j, k, 2] == 1  # claim "3" held there
    arr[i, j, k, 2] = 0
    as_written(path)
    ds = open_cube(path)
    df = ds.marshall.claims()
    assert df.loc["3", "failed"] == 1 and df.loc["3", "held"] == df.loc["3", "checked"] - 1
    ex = df.loc["3", "examples"]
    assert ex[0]["r_1"] == coord["r_1"].values[i] and ex[0]["theta_1"] == coord["theta_1"].values[j]
    assert ex[0]["theta_2"] == coord["theta_2"].values[k]
    assert not ds.marshall.claims_ok()


def test_claims_not_applicable_outside_assumptions(tmp_path_factory):
    ds = build(tmp_path_factory, INCREASING, "incr")
    df = ds.marshall.claims()
    assert (df["checked"] == 0).all() and (df["not_applicable"] == 35).all()
    assert ds.marshall.claims_ok()


# -------------------------------------------------------------------- boundaries


def _on_curve(b, f, rtol=2e-3):
    for seg in b.segments:
        np.testing.assert_allclose(f(seg[:, 0], seg[:, 1]), 1.0, rtol=rtol)


def test_boundaries_coordination(coord):
    bs = {b.name: b for b in coord.marshall.boundaries("r_1", "theta_1", at={"theta_2": 2.0})}
    assert set(bs) == {
        "C1: r_2/r_1 = theta_2",
        "C2: r_1/r_2 = theta_1",
        "B1/B2: r_1/theta_1 = r_2/theta_2",
    }
    _on_curve(bs["C2: r_1/r_2 = theta_1"], lambda r1, t1: (r1 / 1.0) / t1)
    _on_curve(bs["C1: r_2/r_1 = theta_2"], lambda r1, t1: (1.0 / r1) / 2.0)
    _on_curve(bs["B1/B2: r_1/theta_1 = r_2/theta_2"], lambda r1, t1: (r1 / t1) / 0.5)
    assert bs["C2: r_1/r_2 = theta_1"].label == r"$r_{1}/r_{2} = \theta_{1}$"
    # the curve separates the cube's C2 region: C2 exists iff theta_1 >= curve(r_1)
    seg = max(bs["C2: r_1/r_2 = theta_1"].segments, key=len)
    order = np.argsort(seg[:, 0])
    sl = coord.sel(theta_2=2.0)
    r1, t1 = np.meshgrid(sl.r_1.values, sl.theta_1.values, indexing="ij")
    inside = (r1 >= seg[:, 0].min()) & (r1 <= seg[:, 0].max())
    curve = np.interp(np.log(r1), np.log(seg[order, 0]), seg[order, 1])
    far = inside & (np.abs(t1 - curve) > 1e-2)
    ex = sl.exists.sel(equilibrium="C2").values
    np.testing.assert_array_equal(ex[far], (t1 >= curve)[far])
    assert far.sum() > 100


def test_boundaries_standard(std, tmp_path_factory):
    bs = {b.name: b for b in std.marshall.boundaries("r_2", "theta")}
    assert set(bs) == {"CA: c = r_2/r_1 = 1", "B1: c = theta"}
    _on_curve(bs["CA: c = r_2/r_1 = 1"], lambda r2, th: r2 / 1.0)
    _on_curve(bs["B1: c = theta"], lambda r2, th: r2 / th)
    scale = build(tmp_path_factory, SCALE, "scale")
    bs = {b.name: b for b in scale.marshall.boundaries("r_2", "L_S")}
    assert set(bs) == {"CA: c = r_2/r_1 = 1", "B1: c = theta", "C2: c theta_S/theta = 1"}
    # theta = 1 + alpha Lbar = 3, theta_S = 1 + min(2, L_S): c theta_S / theta = 1
    _on_curve(bs["C2: c theta_S/theta = 1"], lambda r2, L: r2 * (1 + np.minimum(2.0, L)) / 3.0)
    assert all(seg[:, 1].max() <= 2.0 + 0.1 for seg in bs["C2: c theta_S/theta = 1"].segments)
    _on_curve(bs["B1: c = theta"], lambda r2, L: r2 / 3.0)


def test_boundaries_modes_condition_star(tmp_path_factory):
    text = """
model: modes
sectors: 2
params:
  r_1: {logspace: [0.5, 8.0, 21]}
  r_2: 1.0
  beta: 0.5
  alpha: 0.25
  theta_1: {linspace: [1.05, 6.0, 15]}
  theta_2: 1.5
output: x.zarr
"""
    ds = build(tmp_path_factory, text, "modes")
    bs = {b.name: b for b in ds.marshall.boundaries("r_1", "theta_1")}
    assert "C2: r_1/r_2 = theta_1" in bs  # condition (*)
    _on_curve(bs["C2: r_1/r_2 = theta_1"], lambda r1, t1: r1 / t1)


def test_boundaries_dynamic(dyn):
    bs = {b.name: b for b in dyn.marshall.boundaries("r_1", "theta_1")}
    name = "C2: r_1/r_2 = theta_1/a_hat_1"
    assert name in bs
    a_hat = 1 - 0.02 / 0.05
    _on_curve(bs[name], lambda r1, t1: r1 / (t1 / a_hat))
    assert bs[name].label == r"$r_{1}/r_{2} = \theta_{1}/\hat a_{1}$"


def test_boundaries_errors(coord):
    with pytest.raises(ValueError, match="unknown dimension 'theta'"):
        coord.marshall.boundaries("r_1", "theta")
    with pytest.raises(ValueError, match=r"not 2-D: .*theta_2"):
        coord.marshall.boundaries("r_1", "theta_1")
    with pytest.raises(ValueError, match="'r_2' is fixed"):
        coord.marshall.boundaries("r_1", "r_2")


# ----------------------------------------------------------------------- dynamic


def test_dynamic_transition_table(dyn):
    acc = dyn.marshall
    t = acc.transition(r_1=2.0, theta_1=2.0)
    i = int(np.argmin(np.abs(np.log(dyn.r_1.values) - math.log(2.0))))
    j = int(np.argmin(np.abs(dyn.theta_1.values - 2.0)))
    pt = dyn.isel(r_1=i, theta_1=j)
    assert list(t.index) == [1, 2]
    for v in ("jump", "half_life", "t99", "pv_gain", "breakeven_kappa"):
        np.testing.assert_array_equal(t[v].values, pt[v].values)
    np.testing.assert_allclose(t["a_hat"], 1 - 0.02 / 0.05)
    # docs/models.md sec. 5: with instant coordination jump[1] = theta_1 (the static gain)
    assert t.loc[1, "jump"] == pytest.approx(float(pt.theta_1), rel=1e-9)
    assert acc.at(r_1=2.0, theta_1=2.0).attrs["done"]
    assert acc.where("pv_gain[1] > 0 and path_feasible[1]").dims == ("r_1", "theta_1")
    with pytest.raises(ValueError, match="no transition variables"):
        xr.Dataset(attrs={"model": "coordination"}).marshall.transition()
