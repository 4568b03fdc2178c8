"""The dynamic model through the pipeline: config -> dask -> cube."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import open_cube, parse_config, run
from pipeline.grid import Plan

CFG = """\
model: dynamic
params:
  r_1: 1.5
  r_2: 1.0
  theta_1: 1.5
  theta_2: 3.0
  g: {{linspace: [0.01, 0.10, 6]}}
  eps: {{linspace: [0.02, 0.30, 8]}}
  T: 150.0
  n_time: 31
save_paths: true
chunks: {chunks}
output: {out}
"""


def cube(tmp_path, name, chunks, workers):
    spec = parse_config(CFG.format(out=tmp_path / name, chunks=chunks))
    run(spec, workers=workers)
    return spec, open_cube(spec.output).load()


@pytest.mark.slow
def test_dynamic_sweep_on_a_dask_cluster(tmp_path):
    """Same chunking: a 2-process LocalCluster gives the in-process cube bit for bit.
    Another chunking agrees to solver tolerance (shared adaptive steps per chunk)."""
    spec, local = cube(tmp_path, "local.zarr", "{g: 2, eps: 4}", 0)
    assert Plan.of(spec).n_blocks == 6
    _, dist = cube(tmp_path, "dist.zarr", "{g: 2, eps: 4}", 2)
    for name in local.data_vars:
        assert np.array_equal(local[name].values, dist[name].values, equal_nan=True), name
    _, whole = cube(tmp_path, "whole.zarr", "{g: 6, eps: 8}", 0)
    for name in ("exists", "stable", "regime", "rank", "a_hat", "jump", "path_feasible", "status"):
        assert np.array_equal(whole[name].values, local[name].values, equal_nan=True), name
    for name in ("x_path", "half_life", "t99", "pv_gain"):
        np.testing.assert_allclose(whole[name].values, local[name].values, rtol=1e-8)


def test_dynamic_cube_matches_closed_forms(tmp_path):
    _, ds = cube(tmp_path, "d.zarr", "{g: 6, eps: 8}", 0)
    g, eps = ds.g.values[:, None], ds.eps.values[None, :]
    ah = np.maximum(1 - g / eps, 0.0)
    np.testing.assert_allclose(ds.a_hat.sel(sector=1).values, ah, rtol=1e-12)
    live = ah > 0
    # instant coordination in sector 1: jump = theta_1; half-life and t99 in closed form
    jump = ds.jump.sel(target=1).values
    assert np.allclose(jump[live], 1.5, rtol=1e-12)
    hl = np.log((1 + ah[live]) / ah[live]) / np.broadcast_to(eps, ah.shape)[live]
    np.testing.assert_allclose(ds.half_life.sel(target=1).values[live], hl, rtol=1e-6)
    # steady-state wages: C1 = r_1, B1 = r_1 a_hat / theta_1 (income gap (theta_1/a_hat)/r_1)
    w = ds.wage.sel(equilibrium="B1").values
    np.testing.assert_allclose(w[live], 1.5 * ah[live] / 1.5, rtol=1e-12)
    assert np.allclose(ds.wage.sel(equilibrium="C1").values, 1.5)
    # x_path against the logistic closed form (s = 1: q = eps, K = 1)
    t = ds.time.values
    x = ah[..., None] / (ah[..., None] + (1 - ah[..., None]) * np.exp(-eps[..., None] * t))
    xp = ds.x_path.sel(target=1).values
    np.testing.assert_allclose(xp[live], x[live], rtol=1e-8)
    # eps <= g: a_hat = 0 is reported, not a crash (status bit 16: x stays at 0)
    assert (ds.status.sel(target=1).values[~live] & 16).all()
    assert ds.attrs["complete"] == 1 and ds.claims.dims[-1] == "claim"


def test_per_point_steps_do_not_depend_on_the_batch():
    from pipeline.models.dynamic import transition

    rng = np.random.default_rng(3)
    n = 12
    g = rng.uniform(0.01, 0.05, (n, 2))
    eps = rng.uniform(0.06, 0.3, (n, 2))
    r, theta = np.full((n, 2), 1.2), np.full((n, 2), 2.0)
    rho, Tc = np.full(n, 0.05), np.zeros(n)
    kw = dict(T=100.0, n_time=11, save_paths=True, per_point=True)
    full = transition(r, theta, g, eps, rho, Tc, **kw)
    half = transition(r[:6], theta[:6], g[:6], eps[:6], rho[:6], Tc[:6], **kw)
    for k in ("x_path", "half_life", "t99", "pv_gain"):
        assert np.array_equal(np.asarray(full[k])[:6], np.asarray(half[k])), k
