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
def test_chunked_dynamic_sweep_on_a_dask_cluster_equals_unchunked(tmp_path):
    """A chunked sweep on a 2-process LocalCluster (uneven chunks, the last ones
    padded) gives the unchunked in-process cube bit for bit: every point is solved
    with its own steps, whatever else is in its chunk."""
    spec, dist = cube(tmp_path, "dist.zarr", "{g: 4, eps: 3}", 2)
    assert Plan.of(spec).n_blocks == 6
    whole_spec, whole = cube(tmp_path, "whole.zarr", "{g: 6, eps: 8}", 0)
    assert Plan.of(whole_spec).n_blocks == 1
    assert list(dist.data_vars) == list(whole.data_vars)
    for name in whole.data_vars:
        assert np.array_equal(whole[name].values, dist[name].values, equal_nan=True), name
    assert np.isfinite(whole.x_path.values).any() and np.isfinite(whole.pv_gain.values).any()


def test_blocks_on_threads_equal_one_at_a_time(tmp_path):
    """In this process, blocks computed three at a time (threads) give the cube of
    one at a time, bit for bit, and every block is computed once."""
    from pipeline.kernels import trace_count
    from pipeline.run import computed_log

    cubes = []
    for threads in (1, 3):
        spec = parse_config(CFG.format(out=tmp_path / f"t{threads}.zarr", chunks="{g: 4, eps: 3}"))
        before = trace_count("dynamic")
        run(spec, workers=0, threads=threads)
        assert trace_count("dynamic") - before <= 1  # compiled once, not per thread
        assert sorted(computed_log(spec.output)) == list(range(Plan.of(spec).n_blocks))
        cubes.append(open_cube(spec.output).load())
    one, three = cubes
    for name in one.data_vars:
        assert np.array_equal(one[name].values, three[name].values, equal_nan=True), name


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
    # the saved paths are stored with Blosc LZ4 + shuffle, the rest with zarr's default
    on_disk = open_cube(tmp_path / "d.zarr")
    assert type(on_disk.x_path.encoding["compressors"][0]).__name__ == "BloscCodec"
    assert type(on_disk.regime.encoding["compressors"][0]).__name__ == "ZstdCodec"


@pytest.mark.parametrize("save_paths", [True, False])
def test_per_point_steps_do_not_depend_on_the_batch(save_paths):
    """A point's every output is the same bit for bit alone, in a small batch or in a
    shuffled one with other ramps Tc, rates and discount rates around it."""
    import jax

    from pipeline.models.dynamic import transition

    statics = ("T", "n_time", "save_paths")
    transition = jax.jit(transition, static_argnames=statics)
    rng = np.random.default_rng(3)
    n = 96
    g = rng.uniform(0.0, 0.08, (n, 2))
    eps = rng.uniform(0.03, 0.4, (n, 2))
    r = np.exp(rng.uniform(-1.0, 1.0, (n, 2)))
    theta = rng.uniform(1.05, 4.0, (n, 2))
    rho = rng.uniform(0.01, 0.1, n)
    Tc = np.where(rng.random(n) < 0.5, 0.0, rng.uniform(1.0, 40.0, n))
    args = (r, theta, g, eps, rho, Tc)
    kw = dict(T=100.0, n_time=41, save_paths=save_paths)
    full = {k: np.asarray(v) for k, v in transition(*args, **kw).items()}
    assert (full["status"] & 4 == 0).all() and np.isfinite(full["pv_gain"]).mean() > 0.8
    perm = rng.permutation(n)
    shuffled = transition(*(a[perm] for a in args), **kw)
    few = transition(*(a[:7] for a in args), **kw)
    one = transition(*(a[5:6] for a in args), **kw)
    for k, v in full.items():
        assert np.array_equal(np.asarray(shuffled[k]), v[perm], equal_nan=True), k
        assert np.array_equal(np.asarray(few[k]), v[:7], equal_nan=True), k
        assert np.array_equal(np.asarray(one[k]), v[5:6], equal_nan=True), k
