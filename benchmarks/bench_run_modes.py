"""How a sweep runs fastest on one machine: in this process (the default) or on a dask
``LocalCluster`` of one worker per core, the same config, interleaved in one run.

Each mode runs the `marshall run` CLI in a fresh process (start-up and compilation
included, the compiled-kernel cache off) into a fresh store; the best of ``--repeats``
runs is reported with the ratio. The per-block time (from the blocks' completion marks)
shows where the difference comes from: a worker computes with one XLA thread, the
in-process run with XLA's thread pool over every core.

    python benchmarks/bench_run_modes.py [--points 50000000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent

CFG = """
model: coordination
sectors: 2
params:
  r_1: {{logspace: [0.25, 8.0, {n}]}}
  r_2: 1.0
  theta_1: {{linspace: [1.05, 6.0, {n}]}}
  theta_2: [1.5, 2.0]
output: {out}
"""


def one(cfg: Path, out: Path, args: list[str]) -> tuple[float, float]:
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, MARSHALL_JAX_CACHE="off")
    t = time.perf_counter()
    subprocess.run([str(BIN / "marshall"), "run", str(cfg), "--no-progress", "-q", *args],
                   check=True, env=env)  # fmt: skip
    wall = time.perf_counter() - t
    marks = [json.loads(p.read_text()) for p in (out / "_marshall" / "done").glob("*.json")]
    per_block = statistics.median(m["seconds"] for m in marks)
    return wall, per_block


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--points", type=int, default=50_000_000)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    n = int((a.points / 2) ** 0.5)
    tmp = Path(tempfile.mkdtemp(prefix="marshall-modes-"))
    try:
        out = tmp / "c.zarr"
        cfg = tmp / "c.yaml"
        cfg.write_text(CFG.format(n=n, out=out))
        modes = {"in process (default)": [], f"LocalCluster, {os.cpu_count()} workers": [
            "--workers", str(os.cpu_count())]}  # fmt: skip
        res: dict[str, list[tuple[float, float]]] = {k: [] for k in modes}
        for _ in range(a.repeats):
            for name, args in modes.items():
                res[name].append(one(cfg, out, args))
        print(f"{2 * n * n:,} points (coordination J = 2), best of {a.repeats}:")
        base = min(w for w, _ in res["in process (default)"])
        for name, runs in res.items():
            wall = min(w for w, _ in runs)
            blk = min(b for _, b in runs)
            print(f"  {name:<28} {wall:7.1f} s  ({2 * n * n / wall:,.0f} pts/s; "
                  f"median block {blk:.2f} s; {wall / base:.2f}x the default)")  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
