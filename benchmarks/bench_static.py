"""Static sweep throughput, end to end, against whole-array numpy (issue 6).

Run: ``.venv/bin/python benchmarks/bench_static.py [--sizes 1e6 1e7 1e8] [--workers 0]``

In one run it measures, for the J = 2 ``coordination`` model:

1. baseline: whole-array numpy classifying N points in memory (existence of C1, C2,
   B1, B2 and their wages; no ranks, claims or I/O) - median of repeats;
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


def numpy_classify(r: np.ndarray, theta: np.ndarray):
    """The J = 2 existence rules of MODEL.md sec. 4 as whole-array numpy."""
    b = r / theta
    exists = np.empty(r.shape[:1] + (4,), bool)
    exists[:, 0] = b[:, 1] <= r[:, 0]  # C1: r_2/theta_2 <= w_C1 = r_1
    exists[:, 1] = b[:, 0] <= r[:, 1]  # C2
    exists[:, 2] = b[:, 1] <= b[:, 0]  # B1
    exists[:, 3] = b[:, 0] <= b[:, 1]  # B2
    wage = np.where(exists, np.concatenate([r, b], axis=1), np.nan)
    return exists, wage


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


def bench_kernel(block_points: int, repeats: int = 5) -> tuple[float, float]:
    sys.path.insert(0, str(HERE.parent))
    import pipeline  # noqa: F401
    from pipeline.kernels import batch_kernel, trace_count

    rng = np.random.default_rng(0)
    i = {
        "r": np.exp(rng.uniform(-1, 1, (block_points, 2))),
        "theta": rng.uniform(1.05, 4.0, (block_points, 2)),
    }
    fn = batch_kernel("coordination", 2, block_points)
    t = time.perf_counter()
    np.asarray(fn(i)["regime"])
    compile_s = time.perf_counter() - t
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn(i)
        for v in out.values():
            np.asarray(v)
        ts.append(time.perf_counter() - t)
    assert trace_count("coordination") == 1
    return block_points / float(np.median(ts)), compile_s


RUNNER = """
import json, sys, time
t0 = time.perf_counter()
from pipeline import load_config, run
from pipeline.kernels import trace_count
spec = load_config(sys.argv[1])
t1 = time.perf_counter()
res = run(spec, workers=int(sys.argv[2]))
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "run_s": t2 - t1, "points": spec.n_points,
                  "blocks": res["blocks"], "traces": trace_count(), "chunks": spec.chunks}))
"""


def bench_end_to_end(n: float, workers: int, tmp: Path) -> dict:
    out = tmp / f"cube_{int(n)}.zarr"
    shutil.rmtree(out, ignore_errors=True)
    cfg = tmp / f"cfg_{int(n)}.yaml"
    cfg.write_text(config_text(n, out))
    p = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(cfg), str(workers)], stdout=subprocess.PIPE, text=True
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


def bench_query(cube: str) -> float:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pipeline import open_cube

    t = time.perf_counter()
    ds = open_cube(cube)
    sl = ds.regime.isel(r_2=len(ds.r_2) // 2, theta_2=len(ds.theta_2) // 2).load()
    fig, ax = plt.subplots()
    sl.plot.pcolormesh(x="r_1", y="theta_1", ax=ax, xscale="log", add_colorbar=False)
    fig.savefig(Path(tempfile.gettempdir()) / "marshall_bench_slice.png", dpi=80)
    plt.close(fig)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e6, 1e7, 1e8])
    ap.add_argument("--workers", type=int, default=0, help="0: in process; N: LocalCluster")
    ap.add_argument("--tmp", default=None, help="where to write cubes (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the cubes")
    args = ap.parse_args()
    tmp = Path(args.tmp or tempfile.mkdtemp(prefix="marshall-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)

    print(
        f"# static sweep benchmark ({platform.node()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()})"
    )
    base = bench_numpy(10_000_000)
    print(f"numpy whole-array classification (10^7 points, in memory): {base / 1e6:.2f} M pts/s")
    rows = []
    for n in args.sizes:
        res = bench_end_to_end(n, args.workers, tmp)
        rows.append(res)
    block_points = int(np.prod(rows[-1]["chunks"]))
    kern, compile_s = bench_kernel(block_points)
    print(
        f"jitted kernel alone ({block_points:,}-point block, all outputs): {kern / 1e6:.2f} M "
        f"pts/s; compile {compile_s:.2f} s; traced once per process: yes"
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
    q = bench_query(rows[-1]["out"])
    print(
        f"\nquery: open + load + plot a 2-D regime slice of the {rows[-1]['points']:,}-point "
        f"cube: {q:.2f} s"
    )
    if not args.keep and not args.tmp:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
