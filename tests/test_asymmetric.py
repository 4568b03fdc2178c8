"""Model ``asymmetric`` (JDE footnote 11; docs/models.md#asymmetric) against its closed
forms, against ``coordination`` where South's gains equal North's, and its claims."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pipeline import open_cube, parse_config, run
from pipeline.kernels import run_kernel

from .conftest import ROOT


def point(r, theta_N, theta_S):
    out = run_kernel("asymmetric", len(r), {"r": np.array([r], float),
                     "theta_N": np.array([theta_N], float),
                     "theta_S": np.array([theta_S], float)})  # fmt: skip
    return {k: v[0] for k, v in out.items()}


def test_closed_forms_j2():
    # r = (2, 1), North's gains (2, 3): C2 exists iff r_1/r_2 = 2 <= 2 theta_2S/3
    for t2S, c2, pays in ((2.0, False, False), (4.5, True, False), (9.0, True, True)):
        out = point([2.0, 1.0], [2.0, 3.0], [2.0, t2S])
        ex = dict(zip(["C1", "C2", "B1", "B2"], out["exists"], strict=True))
        w = dict(zip(["C1", "C2", "B1", "B2"], out["wage"], strict=True))
        assert ex["C1"] and ex["B1"] and not ex["B2"]
        assert ex["C2"] == c2, t2S
        assert w["C1"] == 2.0 and w["B1"] == 1.0  # r_1 theta_1S/theta_1N, r_1/theta_1N
        if c2:
            np.testing.assert_allclose(w["C2"], 1.0 * t2S / 3.0, rtol=1e-15)
            assert (w["C2"] > w["C1"]) == pays
            assert (t2S / 3.0 > 2.0 * 1.0) == pays  # theta_2S/theta_2N > (r_1/r_2)(1)


pos = st.floats(0.2, 5.0)


@settings(max_examples=300, deadline=None)
@given(st.integers(2, 4).flatmap(lambda J: st.tuples(
    st.lists(pos, min_size=J, max_size=J, unique=True),
    st.lists(st.floats(1.05, 5.0), min_size=J, max_size=J),
    st.lists(st.floats(1.01, 12.0), min_size=J, max_size=J))))  # fmt: skip
def test_existence_and_ranking_under_the_ordering_assumptions(v):
    r, tN, tS = (np.array(x) for x in v)
    r = np.sort(r)[::-1]
    assume(np.all(np.diff(r / tN) < 0) and np.all(np.diff(r) < 0))
    out = point(r, tN, tS)
    assume(not out["knife_edge"])
    J = len(r)
    C = out["exists"][:J]
    for k in range(1, J):
        assert C[k] == (r[0] / r[k] <= tN[0] * tS[k] / tN[k])
        if C[k]:
            wk, w1 = out["wage"][k], out["wage"][0]
            assert (wk > w1) == (tS[k] / tN[k] > (r[0] / r[k]) * (tS[0] / tN[0]))


CFG = """
model: {model}
sectors: 3
params:
  r_1: {{logspace: [0.4, 6.0, 17]}}
  r_2: 1.0
  r_3: 0.6
  {t1}: {{linspace: [1.1, 4.0, 9]}}
  {t2}: 2.0
  {t3}: [2.5, 4.0]
  {extra}
output: x.zarr
"""


def test_equals_coordination_where_gains_are_equal(tmp_path):
    """theta_jS = theta_jN for every j: the cube is coordination's, bit for bit, every
    variable (the config names theta_j are the alias of theta_jN)."""
    a = parse_config(
        CFG.format(model="asymmetric", t1="theta_1", t2="theta_2", t3="theta_3",
                   extra="theta_1S: 1.0\n  theta_2S: 2.0\n  theta_3S: 3.0"),
        output=tmp_path / "a.zarr",
    )  # fmt: skip
    assert a.aliases == {"theta_1": "theta_1N", "theta_2": "theta_2N", "theta_3": "theta_3N"}
    # theta_1S must follow the swept theta_1: sweep it the same way instead
    a = parse_config(
        CFG.format(model="asymmetric", t1="theta_1", t2="theta_2", t3="theta_3", extra="")
        .replace("  theta_1: {linspace: [1.1, 4.0, 9]}\n", "  theta_1: 2.0\n  theta_1S: 2.0\n")
        .replace("  theta_3: [2.5, 4.0]\n", "  theta_3: 2.5\n  theta_3S: 2.5\n  theta_2S: 2.0\n"),
        output=tmp_path / "a.zarr",
    )  # fmt: skip
    c = parse_config(
        CFG.format(model="coordination", t1="theta_1", t2="theta_2", t3="theta_3", extra="")
        .replace("  theta_1: {linspace: [1.1, 4.0, 9]}\n", "  theta_1: 2.0\n")
        .replace("  theta_3: [2.5, 4.0]\n", "  theta_3: 2.5\n"),
        output=tmp_path / "c.zarr",
    )  # fmt: skip
    run(a)
    run(c)
    da, dc = open_cube(a.output).load(), open_cube(c.output).load()
    assert set(da.data_vars) == set(dc.data_vars)
    for v in dc.data_vars:
        assert np.array_equal(da[v].values, dc[v].values, equal_nan=True), v
    assert da.attrs["model"] == "asymmetric" and dc.attrs["model"] == "coordination"


def test_claims_fail_only_where_gains_differ(tmp_path):
    """Claims 1 and 5 hold wherever checked; 2, 3 and 4 fail somewhere, and only at
    points where some theta_kS != theta_kN (docs/models.md#asymmetric)."""
    spec = parse_config((ROOT / "configs" / "asymmetric.yaml").read_text()
                        .replace("161]", "41]"), output=tmp_path / "s.zarr")  # fmt: skip
    run(spec)
    ds = open_cube(spec.output).load()
    df = ds.marshall.claims()
    assert df.loc["1", "failed"] == 0 and df.loc["5", "failed"] == 0
    assert df.loc["1", "checked"] > 0
    for c in ("2", "3", "4"):
        assert df.loc[c, "failed"] > 0, c
    differ = ds["theta_2S"] != float(ds["theta_2N"])
    for c in ("2", "3", "4"):
        failed = ds["claims"].sel(claim=c) == 0
        assert not bool((failed & ~differ).any()), c
    # and C2 pays more than C1 only where theta_2S/theta_2N > r_1/r_2
    both = ds.exists.sel(equilibrium="C2") & ds.exists.sel(equilibrium="C1")
    pays = ds.wage.sel(equilibrium="C2") > ds.wage.sel(equilibrium="C1")
    rule = ds["theta_2S"] / 3.0 > ds["r_1"] / 1.0
    assert bool(((pays == rule) | ~both | ds.knife_edge).all())


@pytest.mark.parametrize("bad", ["theta_1N: 0.9", "theta_1S: -1"])
def test_config_bounds(bad):
    from pipeline import ConfigError

    text = CFG.format(model="asymmetric", t1="theta_1N", t2="theta_2N", t3="theta_3N",
                      extra="theta_1S: 2\n  theta_2S: 2\n  theta_3S: 2")  # fmt: skip
    key = bad.split(":")[0]
    text = text.replace(f"  {key}: 2\n", "").replace(f"  {key}: {{linspace: [1.1, 4.0, 9]}}\n", "")
    with pytest.raises(ConfigError) as exc:
        parse_config(text.replace("params:\n", f"params:\n  {bad}\n"))
    assert any(f == f"params.{key}" for f, _ in exc.value.problems), exc.value.problems
