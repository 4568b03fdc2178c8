"""Designs beyond grids, end to end: a config with distributions and a design makes a
cube with a ``sample`` dimension; everything else works on it unchanged; sensitivity
indices (SALib) and scenario discovery (PRIM) run on the cube."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from pipeline import ConfigError, open_cube, parse_config, run
from pipeline.cli import app
from pipeline.grid import Plan
from pipeline.store import done_blocks

CFG = """
model: coordination
sectors: 2
design: {{{design}, seed: {seed}}}
params:
  r_1: {{loguniform: [0.25, 4.0]}}
  r_2: {{loguniform: [0.25, 4.0]}}
  theta_1: {{uniform: [1.05, 4.0]}}
  theta_2: {{uniform: [1.05, 4.0]}}
chunks: {{sample: 512}}
output: x.zarr
"""


def cube(tmp_path, design="saltelli: 256", seed=3, name="s.zarr", **kw):
    spec = parse_config(CFG.format(design=design, seed=seed), output=tmp_path / name)
    run(spec, **kw)
    return spec, open_cube(spec.output)


def test_a_sampled_cube(tmp_path):
    spec, ds = cube(tmp_path, design="sobol: 1024")
    assert spec.dims == ("sample",) and spec.n_points == 1024
    assert ds.sizes["sample"] == 1024 and ds.exists.dims == ("sample", "equilibrium")
    for p in ("r_1", "r_2", "theta_1", "theta_2"):
        assert ds[p].dims == ("sample",) and "distribution" in ds[p].attrs
    np.testing.assert_array_equal(ds["r_1"].values, spec.samples["r_1"])
    assert ds["r_1"].values.min() >= 0.25 and ds["r_1"].values.max() <= 4.0
    assert json.loads(ds.attrs["design"]) == {"sobol": 1024, "seed": 3}
    # the kernel's values at each sample are those of the point itself
    from pipeline.kernels import run_kernel

    r = np.stack([ds.r_1.values, ds.r_2.values], axis=1)
    th = np.stack([ds.theta_1.values, ds.theta_2.values], axis=1)
    out = run_kernel("coordination", 2, {"r": r, "theta": th})
    np.testing.assert_array_equal(out["exists"], ds.exists.values)
    # query, claims, shares, verify, report: unchanged
    assert abs(ds.marshall.regime_share().sum() - 1) < 1e-12
    assert ds.marshall.count("exists['C2'] and theta_2 > 3") > 0
    assert ds.marshall.claims_ok()
    pts = ds.marshall.points("exists['C2']", limit=3)
    assert {"sample", "r_1", "theta_1", "regime"} <= set(pts.columns)
    res = CliRunner().invoke(app, ["verify", str(spec.output)])
    assert res.exit_code == 0, res.output


def test_same_seed_same_cube_and_resume_bit_for_bit(tmp_path):
    _, a = cube(tmp_path, name="a.zarr")
    spec = parse_config(CFG.format(design="saltelli: 256", seed=3), output=tmp_path / "b.zarr")
    run(spec, max_blocks=1)
    assert len(done_blocks(spec.output)) == 1 < Plan.of(spec).n_blocks
    run(spec)
    b = open_cube(spec.output)
    for v in a.data_vars:
        assert np.array_equal(a[v].values, b[v].values, equal_nan=True), v
    for c in ("r_1", "theta_2"):
        assert np.array_equal(a[c].values, b[c].values)
    _, c = cube(tmp_path, seed=4, name="c.zarr")
    assert not np.array_equal(a["r_1"].values, c["r_1"].values)


def test_grid_axes_and_distributions_do_not_mix():
    text = CFG.format(design="sobol: 64", seed=1).replace(
        "r_2: {loguniform: [0.25, 4.0]}", "r_2: {linspace: [0.5, 2, 5]}"
    )
    with pytest.raises(ConfigError) as exc:
        parse_config(text)
    assert any(f == "params.r_2" and "cannot be mixed" in m for f, m in exc.value.problems)
    bad = CFG.format(design="sobol: 100", seed=1)
    with pytest.raises(ConfigError) as exc:
        parse_config(bad)
    assert any(f == "design.sobol" and "power of two" in m for f, m in exc.value.problems)
    out_of_range = CFG.format(design="sobol: 64", seed=1).replace("[1.05, 4.0]", "[0.5, 4.0]", 1)
    with pytest.raises(ConfigError) as exc:
        parse_config(out_of_range)
    assert any(f == "params.theta_1" and "must be > 1" in m for f, m in exc.value.problems)


def test_sobol_indices_of_C2_existence(tmp_path):
    """C2 exists iff r_1/r_2 <= theta_1: theta_2's total index has an interval holding 0,
    r_1, r_2 and theta_1 are clearly non-zero."""
    _, ds = cube(tmp_path, design="saltelli: 1024")
    df = ds.marshall.sensitivity("exists['C2']", method="sobol", num_resamples=100)
    assert list(df.columns) == ["S1", "S1_conf", "ST", "ST_conf"]
    assert set(df.index) == {"r_1", "r_2", "theta_1", "theta_2"}
    t2 = df.loc["theta_2"]
    assert t2["ST"] - t2["ST_conf"] <= 0 <= t2["ST"] + t2["ST_conf"]
    for p in ("r_1", "r_2", "theta_1"):
        assert df.loc[p, "ST"] - df.loc[p, "ST_conf"] > 0.05, p
    # a regime-restricted question needs a given-data method, with the reason
    with pytest.raises(ValueError, match="delta|pawn"):
        ds.marshall.sensitivity("wage.sel(equilibrium='C1')", given="regime == 'B1+C1+C2'")
    d = ds.marshall.sensitivity("wage.sel(equilibrium='C1')", given="regime == 'B1+C1+C2'",
                                method="delta", num_resamples=10)  # fmt: skip
    assert d.attrs["n"] == ds.marshall.count("regime == 'B1+C1+C2'")
    assert d["delta"].idxmax() == "r_1"  # C1's wage is r_1


def test_sobol_refused_on_another_design(tmp_path):
    spec, ds = cube(tmp_path, design="sobol: 512")
    with pytest.raises(ValueError, match="saltelli"):
        ds.marshall.sensitivity("exists['C2']", method="sobol")
    res = CliRunner().invoke(app, ["sensitivity", str(spec.output), "--output", "exists['C2']"])
    assert res.exit_code == 2 and "saltelli" in res.output


def test_prim_recovers_a_known_box(tmp_path):
    _, ds = cube(tmp_path, design="sobol: 4096")
    res = ds.marshall.discover("(r_1 > 1) & (r_1 < 2) & (theta_1 > 2)", threshold=0.9)
    box = res.box
    assert set(box.index[box["restricted"]]) == {"r_1", "theta_1"}
    assert abs(box.loc["r_1", "min"] - 1) < 0.05 and abs(box.loc["r_1", "max"] - 2) < 0.1
    assert abs(box.loc["theta_1", "min"] - 2) < 0.1
    assert res.density >= 0.9 and res.coverage > 0.8


def test_cli_sensitivity_discover_and_phase_scatter(tmp_path):
    spec, ds = cube(tmp_path, design="saltelli: 256")
    r = CliRunner().invoke(app, ["sensitivity", str(spec.output), "--output", "exists['C2']",
                                 "--format", "json", "--resamples", "20"])  # fmt: skip
    assert r.exit_code == 0, r.output
    rows = {row["parameter"]: row for row in json.loads(r.output)["indices"]}
    assert set(rows) == {"r_1", "r_2", "theta_1", "theta_2"}
    r = CliRunner().invoke(app, ["sensitivity", str(spec.output), "--output", "exists['C2']",
                                 "--format", "csv", "--resamples", "20"])  # fmt: skip
    assert r.exit_code == 0 and r.output.splitlines()[0].startswith("parameter,S1")
    out = tmp_path / "prim.png"
    r = CliRunner().invoke(app, ["discover", str(spec.output), "--where", "exists['C2']",
                                 "-o", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "coverage" in r.output and out.stat().st_size > 5000
    r = CliRunner().invoke(app, ["figures", str(spec.output), "--dir", str(tmp_path / "f")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "f" / "phase.png").stat().st_size > 5000
    r = CliRunner().invoke(app, ["explore", str(spec.output), "--html", str(tmp_path / "e.html")])
    assert r.exit_code == 2 and not (tmp_path / "e.html").exists()
    assert "sampled design" in r.output and "marshall plot" in r.output, r.output
