"""Sweeps end to end: the cube on disk, chunking invariance, a real dask cluster,
resume, the single-writer lock and refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from pipeline import StoreError, open_cube, parse_config, run
from pipeline.cli import app
from pipeline.grid import Plan
from pipeline.kernels import trace_count
from pipeline.run import computed_log
from pipeline.store import lock_path

CFG = """\
model: coordination
sectors: 3
params:
  r_1: {{logspace: [0.3, 5.0, 23]}}
  r_2: 1.0
  r_3: [0.5, 0.8]
  theta_1: {{linspace: [1.05, 4.0, 19]}}
  theta_2: 2.0
  theta_3: 3.0
chunks: {chunks}
output: {out}
"""


def spec_for(tmp_path, name="c.zarr", chunks="{r_1: 5, theta_1: 4, r_3: 1}"):
    return parse_config(CFG.format(out=tmp_path / name, chunks=chunks))


def data_only(ds: xr.Dataset) -> xr.Dataset:
    return ds.load().drop_attrs()


def test_cube_layout_and_provenance(tmp_path):
    spec = spec_for(tmp_path)
    res = run(spec, workers=0)
    assert res["computed"] == Plan.of(spec).n_blocks and res["remaining"] == 0
    ds = xr.open_zarr(spec.output)  # plain xarray works
    assert ds.sizes == {"r_1": 23, "r_3": 2, "theta_1": 19, "equilibrium": 6, "claim": 5}
    assert list(ds.exists.dims) == ["r_1", "r_3", "theta_1", "equilibrium"]
    np.testing.assert_array_equal(ds.r_1.values, np.geomspace(0.3, 5.0, 23))
    assert ds.equilibrium.values.tolist() == ["C1", "C2", "C3", "B1", "B2", "B3"]
    assert float(ds.r_2) == 1.0 and float(ds.theta_3) == 3.0  # fixed -> scalar coords
    assert (
        ds.exists.dtype == bool and ds.wage.dtype == np.float64 and ds["wage_rank"].dtype == np.int8
    )
    for v in ds.data_vars.values():
        assert v.attrs.get("long_name"), v.name
    assert ds.wage.attrs["units"] == "1" and "North" in ds.wage.attrs["comment"]  # UDUNITS
    assert ds.best.attrs["flag_meanings"].split() == ["none", *ds.equilibrium.values.tolist()]
    assert ds.best.attrs["flag_values"][0] == -1  # no equilibrium
    regimes = json.loads(ds.regime.attrs["regime_labels"])  # JSON: netCDF holds no dicts
    assert set(np.unique(ds.regime.values).astype(str)) == set(regimes)
    assert ds.regime.attrs["flag_meanings"].split() == list(regimes.values())
    a = ds.attrs
    assert a["config"] == spec.text and a["config_hash"] == spec.config_hash
    assert a["complete"] == 1 and "jax" in json.loads(a["versions"]) and a["git_commit"]
    assert ds.done.all()
    # every point agrees with the kernel's rule for C2: r_1/theta_1 <= r_2 and r_3/theta_3 <= r_2
    r1 = ds.r_1.values[:, None, None]
    t1 = ds.theta_1.values[None, None, :]
    r3 = ds.r_3.values[None, :, None]
    expect = (r1 / t1 <= 1.0) & (r3 / 3.0 <= 1.0)
    np.testing.assert_array_equal(ds.exists.sel(equilibrium="C2").values, expect)


def test_chunking_does_not_change_the_cube(tmp_path):
    a = spec_for(tmp_path, "a.zarr", "{r_1: 23, theta_1: 19, r_3: 2}")
    b = spec_for(tmp_path, "b.zarr", "{r_1: 4, theta_1: 7, r_3: 1}")
    assert Plan.of(a).n_blocks == 1 and Plan.of(b).n_blocks == 6 * 3 * 2
    before = trace_count("coordination")
    run(a, workers=0)
    run(b, workers=0)
    # one compile per block shape per process, however many blocks
    assert trace_count("coordination") - before <= 2
    xr.testing.assert_identical(
        data_only(open_cube(a.output)).drop_encoding(),
        data_only(open_cube(b.output)).drop_encoding(),
    )


@pytest.mark.slow
def test_local_cluster_two_processes_bit_for_bit(tmp_path):
    """A real dask LocalCluster (2 worker processes) gives the single-process cube."""
    single = spec_for(tmp_path, "single.zarr")
    multi = spec_for(tmp_path, "multi.zarr")
    run(single, workers=0)
    res = run(multi, workers=2)
    assert res["computed"] == Plan.of(multi).n_blocks
    pids = {
        json.loads(x)["pid"]
        for x in (multi.output / "_marshall" / "computed.log").read_text().splitlines()
    }
    assert os.getpid() not in pids and len(pids) == 2  # computed in the two workers
    a, b = data_only(open_cube(single.output)), data_only(open_cube(multi.output))
    for name in a.data_vars:
        assert np.array_equal(a[name].values, b[name].values, equal_nan=True), name


def test_resume_computes_only_missing_blocks(tmp_path):
    spec = spec_for(tmp_path)
    n = Plan.of(spec).n_blocks
    first = run(spec, workers=0, max_blocks=5)
    assert first["computed"] == 5 and first["remaining"] == n - 5
    ds = open_cube(spec.output)
    assert ds.attrs["complete"] == 0
    # a partly written cube reads as missing, never as zeros
    assert int(ds.done.sum()) < ds.done.size
    miss = ~ds.done.values
    assert np.isnan(ds.wage.values[miss]).all() and (ds.regime.values[miss] == -1).all()
    assert (ds["wage_rank"].values[miss] == -1).all()
    res = CliRunner().invoke(app, ["verify", str(spec.output)])
    assert res.exit_code == 1 and f"{n - 5} missing" in res.output
    second = run(spec, workers=0)
    assert second["action"] == "resumed" and second["computed"] == n - 5
    log = computed_log(spec.output)
    assert sorted(log) == list(range(n))  # no block computed twice
    other = spec_for(tmp_path, "fresh.zarr")
    run(other, workers=0)
    xr.testing.assert_identical(
        data_only(open_cube(spec.output)), data_only(open_cube(other.output))
    )
    assert CliRunner().invoke(app, ["verify", str(spec.output)]).exit_code == 0


def test_changed_config_is_refused_naming_the_change(tmp_path):
    spec = spec_for(tmp_path)
    run(spec, workers=0, max_blocks=1)
    changed = parse_config(
        CFG.format(out=spec.output, chunks="{r_1: 5, theta_1: 4, r_3: 1}").replace(
            "theta_3: 3.0", "theta_3: 3.5"
        )
    )
    with pytest.raises(StoreError, match=r"theta_3: 3.0 -> 3.5"):
        run(changed, workers=0)
    run(changed, workers=0, overwrite=True)
    assert float(open_cube(spec.output).theta_3) == 3.5


def test_foreign_directory_is_not_overwritten(tmp_path):
    out = tmp_path / "c.zarr"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(StoreError, match="not a marshall cube"):
        run(spec_for(tmp_path), workers=0)
    assert (out / "precious.txt").read_text() == "keep me"


def test_second_writer_is_refused_and_stale_lock_taken_over(tmp_path):
    spec = spec_for(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock_path(spec.output).write_text(
            json.dumps(
                {"pid": holder.pid, "host": os.uname().nodename, "started": "2026-01-01T00:00:00"}
            )
        )
        with pytest.raises(StoreError, match=rf"another run \(pid {holder.pid}"):
            run(spec, workers=0)
        assert not spec.output.exists()
    finally:
        holder.kill()
        holder.wait()
    # the holder is dead now: its lock is stale and is taken over
    res = run(spec, workers=0)
    assert res["remaining"] == 0 and not lock_path(spec.output).exists()


def test_cli_plan_run_verify(tmp_path):
    cfg = tmp_path / "s.yaml"
    cfg.write_text(CFG.format(out=tmp_path / "cli.zarr", chunks="{r_1: 12}"))
    r = CliRunner().invoke(app, ["plan", str(cfg)])
    assert r.exit_code == 0 and "874" in r.output and "time estimate" in r.output
    r = CliRunner().invoke(app, ["run", str(cfg), "--workers", "0", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "regimes:" in r.output
    r = CliRunner().invoke(app, ["run", str(cfg), "--workers", "0", "--no-progress"])
    assert r.exit_code == 0 and "skipped" in r.output
    r = CliRunner().invoke(app, ["verify", str(tmp_path / "cli.zarr")])
    assert r.exit_code == 0 and "complete" in r.output
