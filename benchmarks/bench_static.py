"""Static sweep throughput, end to end, against whole-array numpy (issue 6).

Run: ``.venv/bin/python benchmarks/bench_static.py [--sizes 1e6 1e7 1e8] [--workers 0]``

In one run it measures, for the J = 2 ``coordination`` model:

1. baseline: whole-array numpy classifying N points in memory, computing the same
   outputs as the kernel (existence, stability, wages, knife-edges, ranks, counts,
   regime, best/worst, claims) but writing nothing - median of repeats;
2. the jitted kernel alone on one block (all outputs: ranks, regime, claims ...);
3. end to end for each size: config -> consolidated zarr cube on disk through
   ``pipeline.run`` in a fresh process, timing the whole run and the compile
   separately, sampling the peak RSS of the process tree every 20 ms;
4. query: open the largest cube and load + plot a 2-D ``regime`` slice.

Prints a table with points/s and the ratios against (1). Targets: end to end >= 4 M
points/s after compilation and >= 0.8x the numpy baseline; peak RSS flat in N; the
kernel compiled once per process; the 2-D slice in < 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

# compile times are part of what is measured: no persistent compilation cache, here or
# in the processes started below (they inherit the environment)
os.environ["MARSHALL_JAX_CACHE"] = "off"

import numpy as np
import psutil

HERE = Path(__file__).resolve().parent


def config_text(n: float, out: Path) -> str:
    side = round(n**0.25)
    return textwrap.dedent(f"""\
        model: coordination
        params:
          r_1: {{logspace: [0.25, 4.0, {side}]}}
          r_2: {{logspace: [0.5, 2.0, {side}]}}
          theta_1: {{linspace: [1.05, 4.0, {side}]}}
          theta_2: {{linspace: [1.05, 4.0, {side}]}}
        output: {out}
        """)


def numpy_classify(r: np.ndarray, theta: np.ndarray) -> dict:
    """docs/models.md sec. 4 as whole-array numpy, with the outputs the cube holds: exists,
    stable, wage, knife_edge, rank, n_equilibria, n_stable, regime, best, worst and
    the five claims (the same information as the JAX kernel's, for any J)."""
    n, J = r.shape
    b = r / theta
    wC = r * (theta / theta)
    other = ~np.eye(J, dtype=bool)

    def near(a, c):
        return np.abs(a / c - 1.0) <= 1e-12

    bk = b[:, None, :]
    C_ex = np.all(np.where(other, bk <= wC[:, :, None], True), axis=2)
    C_st = np.all(np.where(other, bk < wC[:, :, None], True), axis=2)
    B_ex = np.all(np.where(other, bk <= b[:, :, None], True), axis=2)
    B_st = np.all(np.where(other, bk < b[:, :, None], True), axis=2)
    knife = np.any(other & near(bk, wC[:, :, None]), axis=(1, 2)) | np.any(
        other & near(bk, b[:, :, None]), axis=(1, 2)
    )
    exists = np.concatenate([C_ex, B_ex], axis=1)
    stable = np.concatenate([C_ex & C_st, B_ex & B_st], axis=1)
    wage = np.where(exists, np.concatenate([wC, b], axis=1), np.nan)
    higher = exists[:, None, :] & (wage[:, None, :] > wage[:, :, None])
    rank = np.where(exists, 1 + higher.sum(axis=2), 0).astype(np.int8)
    bits = (1 << np.arange(2 * J, dtype=np.int32))[None, :]
    regime = np.where(stable, bits, 0).sum(axis=1, dtype=np.int32)
    best = np.argmax(np.where(exists, wage, -np.inf), axis=1).astype(np.int8)
    worst = np.argmin(np.where(exists, wage, np.inf), axis=1).astype(np.int8)
    # claims 1-5 where r and r/theta fall with j and the point is not knife-edge
    ok = np.all(r[:, :-1] > r[:, 1:], axis=1) & np.all(b[:, :-1] > b[:, 1:], axis=1) & ~knife
    c1 = B_ex[:, 0] & C_ex[:, 0] & ~np.any(B_ex[:, 1:], axis=1)
    c2 = np.all(C_ex[:, 1:] == (r[:, :1] / r[:, 1:] <= theta[:, :1]), axis=1)
    c3 = (wage[:, 0] == np.nanmax(wage, axis=1)) & (wage[:, J] == np.nanmin(wage, axis=1))
    c4 = np.all(np.abs(wC / r - 1.0) <= 1e-12, axis=1)
    c5 = np.all(C_ex | (wC < b[:, :1]), axis=1)
    claims = np.where(ok[:, None], np.stack([c1, c2, c3, c4, c5], axis=1), -1).astype(np.int8)
    return {
        "exists": exists,
        "stable": stable,
        "wage": wage,
        "rank": rank,
        "n_equilibria": exists.sum(axis=1, dtype=np.int8),
        "n_stable": stable.sum(axis=1, dtype=np.int8),
        "regime": regime,
        "best": best,
        "worst": worst,
        "knife_edge": knife,
        "claims": claims,
    }


def bench_numpy(n: int, repeats: int = 3) -> float:
    rng = np.random.default_rng(0)
    r = np.exp(rng.uniform(-1, 1, (n, 2)))
    theta = rng.uniform(1.05, 4.0, (n, 2))
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        numpy_classify(r, theta)
        ts.append(time.perf_counter() - t)
    return n / float(np.median(ts))


def bench_kernel(block_points: int, repeats: int = 5) -> tuple[float, float, float, int]:
    """The jitted kernel alone on one block, all outputs to numpy: as the sweep runs it
    (``run_kernel``: slices of at most the model's ``Kernel.slice`` points) and as one call
    over the whole block, side by side. Returns (sliced pts/s, whole-block pts/s,
    compile s of the sliced kernel, slice size)."""
    sys.path.insert(0, str(HERE.parent))
    import pipeline  # noqa: F401
    from pipeline.kernels import batch_kernel, run_kernel, slicing, trace_count

    rng = np.random.default_rng(0)
    i = {
        "r": np.exp(rng.uniform(-1, 1, (block_points, 2))),
        "theta": rng.uniform(1.05, 4.0, (block_points, 2)),
    }
    whole = batch_kernel("coordination", 2, block_points)
    runs = {
        "sliced": lambda: run_kernel("coordination", 2, i),
        "whole": lambda: {k: np.asarray(v) for k, v in whole(i).items()},
    }
    traces = trace_count("coordination")
    t = time.perf_counter()
    runs["sliced"]()
    compile_s = time.perf_counter() - t
    assert trace_count("coordination") <= traces + 1  # once per slice shape
    traces = trace_count("coordination")
    runs["whole"]()
    ts = {k: [] for k in runs}
    for _ in range(repeats):
        for k, fn in runs.items():
            t = time.perf_counter()
            fn()
            ts[k].append(time.perf_counter() - t)
    assert trace_count("coordination") == traces + 1  # and once for the whole block
    rate = {k: block_points / float(np.median(v)) for k, v in ts.items()}
    return rate["sliced"], rate["whole"], compile_s, slicing("coordination", block_points)[1]


RUNNER = """
import json, sys, time
t0 = time.perf_counter()
from pipeline import load_config, run
from pipeline.kernels import trace_count
spec = load_config(sys.argv[1])
t1 = time.perf_counter()
res = run(spec, workers=int(sys.argv[2]), threads=int(sys.argv[3]) or None)
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "run_s": t2 - t1, "points": spec.n_points,
                  "blocks": res["blocks"], "traces": trace_count(), "chunks": spec.chunks}))
"""


def bench_end_to_end(n: float, workers: int, tmp: Path, threads: int = 0) -> dict:
    out = tmp / f"cube_{int(n)}.zarr"
    shutil.rmtree(out, ignore_errors=True)
    cfg = tmp / f"cfg_{int(n)}.yaml"
    cfg.write_text(config_text(n, out))
    p = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(cfg), str(workers), str(threads)],
        stdout=subprocess.PIPE,
        text=True,
    )
    proc = psutil.Process(p.pid)
    peak = 0
    while p.poll() is None:
        try:
            tree = [proc] + proc.children(recursive=True)
            peak = max(peak, sum(q.memory_info().rss for q in tree if q.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.02)
    res = json.loads(p.stdout.read().strip().splitlines()[-1])
    res["peak_rss_mb"] = peak / 2**20
    res["disk_mb"] = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 2**20
    res["out"] = str(out)
    return res


def bench_query(cube: str) -> tuple[float, float]:
    """Open the cube, load a 2-D ``regime`` slice and plot it to a PNG: the first time
    in this process (``cold``: xarray, zarr, dask and matplotlib load code and fonts on
    first use), then again for another slice, the cube opened anew (``warm``: what each
    further query of an interactive session costs). Returns (cold s, warm s)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pipeline import open_cube

    def query(frac: float) -> float:
        t = time.perf_counter()
        ds = open_cube(cube)
        k = int(frac * (len(ds.r_2) - 1))
        sl = ds.regime.isel(r_2=k, theta_2=len(ds.theta_2) // 2).load()
        fig, ax = plt.subplots()
        sl.plot.pcolormesh(x="r_1", y="theta_1", ax=ax, xscale="log", add_colorbar=False)
        fig.savefig(Path(tempfile.gettempdir()) / f"marshall_bench_slice_{k}.png", dpi=80)
        plt.close(fig)
        return time.perf_counter() - t

    cold = query(0.5)
    return cold, query(0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e6, 1e7, 1e8])
    ap.add_argument("--workers", type=int, default=0, help="0: in process; N: LocalCluster")
    ap.add_argument(
        "--threads", type=int, default=0, help="with --workers 0: blocks at once (0: one per core)"
    )
    ap.add_argument("--tmp", default=None, help="where to write cubes (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the cubes")
    args = ap.parse_args()
    tmp = Path(args.tmp or tempfile.mkdtemp(prefix="marshall-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)

    print(
        f"# static sweep benchmark ({platform.node()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()})"
    )
    base = bench_numpy(2_000_000)
    print(
        f"numpy whole-array classification, same outputs as the kernel, in memory "
        f"(2x10^6 points): {base / 1e6:.2f} M pts/s"
    )
    rows = []
    for n in args.sizes:
        res = bench_end_to_end(n, args.workers, tmp, args.threads)
        rows.append(res)
    block_points = int(np.prod(rows[-1]["chunks"]))
    kern, whole, compile_s, size = bench_kernel(block_points)
    print(
        f"jitted kernel alone ({block_points:,}-point block, all outputs): {kern / 1e6:.2f} M "
        f"pts/s in slices of {size:,} points as sweeps run it, {whole / 1e6:.2f} M pts/s as "
        f"one call ({kern / whole:.2f}x); compile {compile_s:.2f} s; traced once per shape"
    )
    print()
    print(
        "| points | blocks | run s | M pts/s | after compile | vs numpy | peak RSS MB | "
        "disk MB | traces |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        rate = r["points"] / r["run_s"]
        rate_c = r["points"] / max(r["run_s"] - compile_s, 1e-9)
        print(
            f"| {r['points']:,} | {r['blocks']} | {r['run_s']:.2f} | {rate / 1e6:.2f} | "
            f"{rate_c / 1e6:.2f} | {rate_c / base:.2f}x | {r['peak_rss_mb']:.0f} | "
            f"{r['disk_mb']:.1f} | {r['traces']} |"
        )
    cold, warm = bench_query(rows[-1]["out"])
    print(
        f"\nquery: open + load + plot a 2-D regime slice of the {rows[-1]['points']:,}-point "
        f"cube: {cold:.2f} s the first time in the process, {warm:.2f} s for another slice"
    )
    if not args.keep and not args.tmp:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
