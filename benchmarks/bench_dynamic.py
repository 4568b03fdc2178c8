"""Benchmark of the ``dynamic`` transition kernel (docs/models.md#dynamic).

Times, in one run, on the same random points (J = 2, instant coordination so that
the logistic closed form is the reference for every path):

* ``transition``: the jitted batch kernel (``save_paths=True``, ``n_time=401``:
  paths, wages, half-life, t99, discounted gain, feasibility), in chunks of
  ``--chunk`` points as :mod:`pipeline.kernels` runs it, one chunk per thread on
  every core (as ``marshall run --workers 0`` computes blocks) and on one thread;
  and without saved paths; compile time separately, then the median of
  ``--repeats`` runs;
* ``diffeqsolve, one system``: plain ``diffrax.diffeqsolve`` of the whole chunk as
  one system (Tsit5, same PID tolerances, ``SaveAt(ts=...)``), paths only: the
  black-box diffrax reference for the kernel's custom loop;
* ``diffeqsolve, vmapped``: ``jax.vmap`` of a per-trajectory ``diffeqsolve`` (each
  path its own steps), on a subsample;
* ``solve_ivp loop``: a per-trajectory ``scipy.integrate.solve_ivp`` loop (DOP853,
  rtol 1e-10, atol 1e-12), on a small subsample, extrapolated per trajectory: once
  computing the same outputs as the kernel (path on the grid, the discounted gain as
  a second state, half-life and t99 as events; the reference of the ``x scipy``
  column) and once the bare path only;
* ``closed form (numpy)``: the logistic formula on the full time grid;
* end to end (``--e2e-n`` points, 0 to skip): ``run(workers=0)`` of a dynamic sweep,
  config to consolidated cube on disk, with and without saved paths, in a fresh
  process, and the storage baseline of the same run (writing the cube's two path
  arrays again from memory, same codec and chunks).

A trajectory is one (point, target k) path on the ``n_time`` grid. Run::

    .venv/bin/python benchmarks/bench_dynamic.py --n 32768
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# compile times are part of what is measured: no persistent compilation cache, here or
# in the processes started below (they inherit the environment)
os.environ["MARSHALL_JAX_CACHE"] = "off"

import diffrax as dfx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optimistix as optx  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

import pipeline._jax  # noqa: F401  (float64 on)
from pipeline import _ode as ode  # noqa: E402
from pipeline.models import dynamic as dyn  # noqa: E402

J = 2


def points(n: int, seed: int):
    """Random points: common (g, eps) per point, r and r a_hat / theta decreasing."""
    rng = np.random.default_rng(seed)
    eps = rng.uniform(0.05, 0.3, (n, 1)) * np.ones((1, J))
    g = eps * rng.uniform(0.05, 0.9, (n, 1))
    r = np.sort(rng.uniform(0.2, 1.0, (n, J)), axis=1)[:, ::-1].copy()
    theta = rng.uniform(1.1, 3.0, (n, J))
    rho = rng.uniform(0.02, 0.1, n)
    return r, theta, g, eps, rho, np.zeros(n)


def chunks(arrays, size: int):
    """Fixed-shape chunks (the last one padded by repeating its last point)."""
    n = arrays[0].shape[0]
    for lo in range(0, n, size):
        hi = min(lo + size, n)
        pad = size - (hi - lo)
        yield (
            hi - lo,
            [np.concatenate([a[lo:hi], np.repeat(a[hi - 1 : hi], pad, axis=0)]) for a in arrays],
        )


def timed(fn, repeats: int):
    """(first call seconds, median of `repeats` later calls)."""
    t = time.perf_counter()
    fn()
    first = time.perf_counter() - t
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return first, statistics.median(runs)


E2E_CONFIG = """\
model: dynamic
sectors: 2
params:
  r_1: 1.5
  r_2: 1.0
  theta_1: 1.5
  theta_2: 3.0
  g: {{linspace: [0.01, 0.10, {n_g}]}}
  eps: {{linspace: [0.12, 0.30, {n_eps}]}}
  rho: 0.05
  T: {T}
  n_time: {n_time}
save_paths: {save}
output: {out}
"""

E2E_RUNNER = """
import json, shutil, sys, time
from pipeline import load_config, run
spec = load_config(sys.argv[1])
times = []
for _ in range(2):  # the first run compiles
    # a fresh cube each time (overwrite=True on the same config would resume the
    # finished cube and compute nothing)
    shutil.rmtree(spec.output, ignore_errors=True)
    t = time.perf_counter()
    run(spec, workers=0)
    times.append(time.perf_counter() - t)
print(json.dumps({"first_s": times[0], "run_s": times[1], "points": spec.n_points}))
"""


def end_to_end(n: int, T: float, n_time: int) -> list[str]:
    """`marshall run --workers 0` of a dynamic sweep (config -> consolidated cube on
    disk), with and without saved paths, in a fresh process; and, as the storage
    baseline of the same run, writing the finished cube's two path arrays again into
    a new zarr array (same codec and chunks) straight from memory."""
    import json

    import xarray as xr
    import zarr

    n_g = 100
    n_eps = max(1, n // n_g)
    tmp = Path(tempfile.mkdtemp(prefix="marshall-bench-dyn-"))
    lines = [f"\nend to end, `run(workers=0)`, {n_g * n_eps:,} points x J=2, n_time={n_time}:"]
    try:
        for save in (True, False):
            out = tmp / f"cube_{save}.zarr"
            cfg = tmp / f"cfg_{save}.yaml"
            cfg.write_text(
                E2E_CONFIG.format(
                    n_g=n_g, n_eps=n_eps, T=T, n_time=n_time, save=str(save).lower(), out=out
                )
            )
            res = subprocess.run(
                [sys.executable, "-c", E2E_RUNNER, str(cfg)],
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(res.stdout.strip().splitlines()[-1])
            traj = 2 * r["points"] / r["run_s"]
            ds = xr.open_zarr(out)
            nbytes = sum(ds[v].dtype.itemsize * ds[v].size for v in ds.data_vars)
            disk = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
            line = (
                f"  paths {'saved' if save else 'not saved'}: {r['run_s']:.2f} s "
                f"(first run, compiling: {r['first_s']:.2f} s) = {traj:,.0f} traj/s; "
                f"{nbytes / r['run_s'] / 1e6:,.0f} MB/s of output ({nbytes / 1e6:,.0f} MB, "
                f"{disk / 1e6:,.0f} MB on disk)"
            )
            if save:
                paths = {v: ds[v].values for v in ("x_path", "wage_path")}
                enc = ds["x_path"].encoding
                t = time.perf_counter()
                for v, arr in paths.items():
                    z = zarr.create_array(
                        tmp / f"raw_{v}.zarr", shape=arr.shape, dtype=arr.dtype,
                        chunks=enc["chunks"], compressors=enc["compressors"],
                    )  # fmt: skip
                    z[...] = arr
                raw = time.perf_counter() - t
                pbytes = sum(arr.nbytes for arr in paths.values())
                line += (
                    f"\n    storage baseline: writing its two path arrays ({pbytes / 1e6:,.0f} MB) "
                    f"from memory takes {raw:.2f} s ({pbytes / raw / 1e6:,.0f} MB/s) = "
                    f"{raw / r['run_s']:.0%} of the whole run"
                )
            lines.append(line)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=32768, help="grid points (x J=2 trajectories)")
    ap.add_argument("--chunk", type=int, default=4096, help="points per jitted call")
    ap.add_argument("--n-time", type=int, default=401)
    ap.add_argument("--T", type=float, default=100.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scipy-n", type=int, default=40, help="trajectories for solve_ivp")
    ap.add_argument("--vmap-n", type=int, default=1024, help="trajectories, vmapped diffrax")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--e2e-n", type=int, default=100_000, help="points of the end-to-end sweeps (0: skip)"
    )
    a = ap.parse_args()

    T, n_time = a.T, a.n_time
    ts = np.linspace(0.0, T, n_time)
    data = points(a.n, a.seed)
    r, theta, g, eps, rho, Tc = data
    n_traj = a.n * J
    ah = 1.0 - g / eps
    print(
        f"dynamic transition benchmark: N={a.n} points x J={J} = {n_traj} trajectories, "
        f"n_time={n_time}, T={T}, chunk={a.chunk}; jax {jax.__version__}, "
        f"diffrax {dfx.__version__ if hasattr(dfx, '__version__') else '?'}, "
        f"{jax.device_count()} {jax.default_backend()} device(s), "
        f"{platform.processor() or platform.machine()}"
    )
    rows = []

    # -- the kernel ------------------------------------------------------------
    statics = ("T", "n_time", "save_paths", "rtol", "atol", "max_steps", "pad_paths")
    kernel = jax.jit(dyn.transition, static_argnames=statics)
    parts = list(chunks(list(data), a.chunk))
    results: list = []

    def one_chunk(part, save: bool = True):
        m, arrs = part
        # as the pipeline calls it: paths padded, cut by a numpy view (the model's Kernel.post)
        out = kernel(*arrs, T=T, n_time=n_time, save_paths=save, pad_paths=True)
        return m, jax.block_until_ready(out)

    def run_kernel(threads: int = 1, save: bool = True):
        # threads > 1: chunks side by side, one per thread (as `marshall run --workers 0`
        # computes blocks: the integration loop runs on one core per call)
        results.clear()
        with ThreadPoolExecutor(threads) as pool:
            results.extend(pool.map(lambda p: one_chunk(p, save), parts))

    hl_ref = np.log((1 + ah) / ah) / eps
    t99_ref = np.log(99 * (1 - ah) / ah) / eps
    ref = dyn.logistic(ts, ah[..., None], g[..., None], eps[..., None])
    cores = os.cpu_count() or 1
    t = time.perf_counter()
    one_chunk(parts[0])  # trace + compile + one chunk
    first = time.perf_counter() - t
    t = time.perf_counter()
    one_chunk(parts[0])
    compile_s = first - (time.perf_counter() - t)
    one_chunk(parts[0], save=False)  # compiled too, untimed
    variants = [
        (cores, True, f"transition, {cores} threads: the pipeline's (jit, all outputs)"),
        (1, True, "transition, 1 thread (jit, all outputs)"),
        (cores, False, f"transition, {cores} threads, paths not saved (summaries)"),
    ]
    for threads, save, name in variants:
        _, med = timed(lambda th=threads, sv=save: run_kernel(th, sv), a.repeats)
        hl = np.concatenate([np.asarray(o["half_life"])[:m] for m, o in results])
        t99 = np.concatenate([np.asarray(o["t99"])[:m] for m, o in results])
        e_hl = np.nanmax(np.abs(hl / hl_ref - 1.0))
        e_t99 = np.nanmax(np.abs(t99 / t99_ref - 1.0))
        if save:
            x_path = np.concatenate([np.asarray(o["x_path"])[:m, ..., :n_time] for m, o in results])
            e = np.max(np.abs(x_path / ref - 1.0))
        else:
            e = max(e_hl, e_t99)
        rows.append((name, n_traj / med, med, e))
        if save and threads == cores:
            err, rate_pp, err_hl, err_t99 = e, n_traj / med, e_hl, e_t99

    # -- diffeqsolve, whole chunk as one system (paths only) ---------------------
    term = dfx.ODETerm(lambda t, x, args: dyn.vector_field(t, x, args))
    ctrl = dfx.PIDController(rtol=ode.RTOL, atol=ode.ATOL, norm=optx.max_norm)

    @jax.jit
    def one_system(x0, g_, eps_, Tc_):
        sol = dfx.diffeqsolve(
            term, dfx.Tsit5(), 0.0, T, None, x0, (g_, eps_, Tc_),
            saveat=dfx.SaveAt(ts=jnp.asarray(ts)), stepsize_controller=ctrl,
            max_steps=4096, throw=False,
        )  # fmt: skip
        return sol.ys

    ys: list = []

    def run_one_system():
        ys.clear()
        for m, (_, _, g_, eps_, _, Tc_) in parts:
            x0 = 1.0 - g_ / eps_
            ys.append(np.moveaxis(np.asarray(one_system(x0, g_, eps_, Tc_[:, None])), 0, -1)[:m])

    first_d, med_d = timed(run_one_system, a.repeats)
    err_d = np.max(np.abs(np.concatenate(ys) / ref - 1.0))
    rows.append(("diffeqsolve, one system (paths only)", n_traj / med_d, med_d, err_d))

    # -- diffeqsolve vmapped per trajectory, subsample ---------------------------
    nv = min(a.vmap_n, n_traj)
    gv, ev = g.ravel()[:nv], eps.ravel()[:nv]

    @jax.jit
    def vmapped(g_, eps_):
        def one(gi, ei):
            sol = dfx.diffeqsolve(
                term, dfx.Tsit5(), 0.0, T, None, 1.0 - gi / ei, (gi, ei, 0.0),
                saveat=dfx.SaveAt(ts=jnp.asarray(ts)),
                stepsize_controller=dfx.PIDController(rtol=ode.RTOL, atol=ode.ATOL),
                max_steps=4096, throw=False,
            )  # fmt: skip
            return sol.ys

        return jax.vmap(one)(g_, eps_)

    _, med_v = timed(lambda: jax.block_until_ready(vmapped(gv, ev)), a.repeats)
    xv = np.asarray(vmapped(gv, ev))
    err_v = np.max(np.abs(xv / ref.reshape(-1, n_time)[:nv] - 1.0))
    rows.append((f"diffeqsolve, vmapped ({nv} traj)", nv / med_v, med_v * n_traj / nv, err_v))

    # -- scipy solve_ivp loops, subsample ------------------------------------------
    # "same outputs": what the kernel computes per trajectory (path on the grid, the
    # discounted gain as a second state, half-life and t99 as events); "path only":
    # the bare path, the most favourable case for scipy
    ns = min(a.scipy_n, n_traj)
    flat = [v.reshape(a.n, -1) for v in (r, theta, g, eps)]
    idx = [(i // J, i % J) for i in range(ns)]

    def f_np(t, x, gi, ei):
        return x * (ei * (1.0 - np.minimum(x, 1.0))) - ei * np.maximum(x - 1.0, 0.0)

    def scipy_loop(full: bool, rtol: float = 1e-10, atol: float = 1e-12):
        xs = np.empty((ns, n_time))
        t0 = time.perf_counter()
        for i, (p, k) in enumerate(idx):
            gi, ei = flat[2][p, k], flat[3][p, k]
            x0 = 1.0 - gi / ei
            if not full:
                sol = solve_ivp(
                    f_np, (0.0, T), [x0], method="DOP853", t_eval=ts,
                    rtol=rtol, atol=atol, args=(gi, ei),
                )  # fmt: skip
            else:
                rk, thk, rp = flat[0][p, k], flat[1][p, k], rho[p]
                c = (rk / thk) / (flat[0][p, 0] * (1.0 - flat[2][p, 0] / flat[3][p, 0])
                                  / flat[1][p, 0])  # fmt: skip

                def aug(t, y, gi=gi, ei=ei, c=c, rp=rp, thk=thk):
                    return [f_np(t, y[0], gi, ei), rp * np.exp(-rp * t) * (c * y[0] * thk - 1)]

                half = lambda t, y, x0=x0: y[0] - 0.5 * (1.0 + x0)  # noqa: E731
                t99 = lambda t, y: y[0] - 0.99  # noqa: E731
                sol = solve_ivp(
                    aug, (0.0, T), [x0, 0.0], method="DOP853", t_eval=ts,
                    rtol=rtol, atol=atol, events=[half, t99],
                )  # fmt: skip
            xs[i] = sol.y[0]
        return (time.perf_counter() - t0) / ns, xs

    ref_s = ref.reshape(-1, n_time)[:ns]
    scipy_loop(False)  # warm-up
    for name, full, tol in [
        ("same outputs", True, (1e-10, 1e-12)),
        ("path only", False, (1e-10, 1e-12)),
        ("same outputs, rtol 1e-12", True, (1e-12, 1e-14)),
    ]:
        t_s, xs = scipy_loop(full, *tol)
        err_s = np.max(np.abs(xs / ref_s - 1.0))
        rows.append((f"solve_ivp loop, {name} ({ns})", 1.0 / t_s, t_s * n_traj, err_s))

    # -- closed form in numpy -------------------------------------------------------
    _, med_c = timed(
        lambda: dyn.logistic(ts, ah[..., None], g[..., None], eps[..., None]), a.repeats
    )
    rows.append(("logistic closed form (numpy)", n_traj / med_c, med_c, 0.0))

    e2e = end_to_end(a.e2e_n, T, n_time) if a.e2e_n else []

    by_name = {name: rate for name, rate, _, _ in rows}
    # the solve_ivp loop computing the same outputs at matched accuracy
    scipy_rate = next(r for n, r in by_name.items() if n.startswith("solve_ivp loop, same"))
    scipy_tight = next(r for n, r in by_name.items() if "rtol 1e-12" in n)
    print()
    print(f"{'method':58s} {'traj/s':>12s} {'s for all':>10s} {'x scipy':>9s} {'max rel err':>12s}")
    print("-" * 105)
    for name, rate, secs, e in rows:
        print(f"{name:58s} {rate:12,.0f} {secs:10.3f} {rate / scipy_rate:9.0f} {e:12.1e}")
    print()
    print(f"transition compile time: {compile_s:.2f} s (one chunk shape, excluded above)")
    print(
        f"transition vs closed form: x_path {err:.1e}, half_life {err_hl:.1e}, "
        f"t99 {err_t99:.1e} (max relative)"
    )
    for line in e2e:
        print(line)
    rate = rate_pp
    print(
        f"transition: {rate:,.0f} traj/s = {rate / scipy_rate:.0f}x the same-output "
        f"solve_ivp loop at matched accuracy, {rate / scipy_tight:.0f}x at rtol 1e-12; "
        f"issue target >= 110,000 traj/s with max err < 1e-8: "
        f"{'MET' if rate >= 110_000 and err < 1e-8 else 'NOT MET'}"
    )


if __name__ == "__main__":
    main()
