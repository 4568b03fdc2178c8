"""What the chunk position check on open costs a 2-D query (issue 20, item 4).

Run: ``.venv/bin/python benchmarks/bench_read.py [--baseline 72aab9d] [--cube PATH]
[--rounds 5] [--reps 5]``

Builds (or reuses, ``--cube``) the 10^8-point ``coordination`` cube of
``bench_static.py``, written by this tree (its completion marks hold the chunks'
checksums), and times one 2-D query on it, read by the baseline commit's
``pipeline`` (``git archive`` into a temporary directory, first on ``PYTHONPATH``)
and by this tree's, in alternating fresh processes (``--rounds`` each). In each
process: one query to warm up (imports, first use), then ``--reps`` queries, each
opening the cube anew: ``open_cube(path)`` then a 2-D plane of ``wage`` (100 x 100,
other dims fixed) and of ``regime``, computed to numpy. Prints the median seconds of
each reader and their ratio (target: new / old < 1.2), and the open-time check alone
(the old listing of chunk files against the new checksum reads), in one process.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

# ------------------------------------------- the open-time check before this change


def missing_chunks(path: Path, ds: object, blocks) -> set[int]:
    """Blocks (ids over the swept dims, C order) among ``blocks`` for which some
    variable's chunk file is absent. Chunks are the blocks (plus whole extra dims).
    The reader's check before chunk checksums (``pipeline.store.read.damaged_blocks``),
    the baseline of :func:`check_alone`."""
    from pipeline.store.integrity import chunk_layout

    path = Path(path)
    swept = ds["done"].dims
    bad: set[int] = set()
    blocks = sorted(blocks)
    if not blocks:
        return bad
    for name in ds.data_vars:
        g = chunk_layout(path / str(name))
        if g is None:
            continue
        shape, chunks, sep = g
        nd = len(swept)
        nch = [math.ceil(s / c) for s, c in zip(shape[:nd], chunks[:nd])]
        extra = [math.ceil(s / c) for s, c in zip(shape[nd:], chunks[nd:])]
        if any(e != 1 for e in extra):
            continue
        tail = [0] * len(extra)
        present = chunk_files(path / str(name), sep)
        for b in blocks:
            idx = list(np.unravel_index(b, nch)) if nd else []
            key = sep.join(["c", *(str(int(i)) for i in idx + tail)])
            if key not in present:
                bad.add(b)
    return bad


def chunk_files(vdir: Path, sep: str) -> set[str]:
    """Keys (``c/0/1``) of the chunk files of the array at ``vdir``."""
    root = vdir / "c"
    out = set()
    if not root.is_dir():
        return out
    if sep == "/":
        n = len(vdir.parts)
        for p in root.rglob("*"):
            if p.is_file():
                out.add("/".join(p.parts[n:]))
    else:
        out = {p.name for p in vdir.iterdir() if p.is_file()}
    return out


QUERY = """
import json, sys, time, warnings
import numpy as np
from pipeline import open_cube
path, reps = sys.argv[1], int(sys.argv[2])

def query():
    ds = open_cube(path)
    w = ds["wage"].isel(r_2=50, theta_2=50, equilibrium=0).values
    r = ds["regime"].isel(r_2=50, theta_2=50).values
    return w, r

with warnings.catch_warnings():
    warnings.simplefilter("error")  # an intact cube: no warning
    t = time.perf_counter(); w, r = query(); first = time.perf_counter() - t
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); w2, r2 = query(); ts.append(time.perf_counter() - t)
assert w.shape == (100, 100) and np.array_equal(w, w2, equal_nan=True)
import pipeline
print(json.dumps({"first": first, "times": ts, "module": pipeline.__file__,
                  "wage_sum": float(np.nansum(w)), "regime_sum": int(r.sum())}))
"""


def build(out: Path) -> None:
    from bench_static import config_text

    cfg = out.with_suffix(".yaml")
    cfg.write_text(config_text(1e8, out))
    code = "import sys; from pipeline import load_config, run; run(load_config(sys.argv[1]))"
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(cfg)], check=True, cwd=ROOT)
    print(f"built {out} in {time.perf_counter() - t:.1f} s", flush=True)


def baseline_tree(rev: str, tmp: Path) -> Path:
    data = subprocess.run(["git", "archive", rev, "pipeline"], cwd=ROOT, check=True,
                          capture_output=True).stdout  # fmt: skip
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(tmp, filter="data")
    return tmp


def query(path: Path, pythonpath: Path, reps: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(pythonpath))
    cmd = [sys.executable, "-c", QUERY, str(path), str(reps)]
    res = subprocess.run(cmd, env=env, cwd=tempfile.gettempdir(), check=True,
                         capture_output=True, text=True)  # fmt: skip
    return json.loads(res.stdout.strip().splitlines()[-1])


CHECK = """
import json, sys, time
import xarray as xr
from pipeline.store.cube import done_blocks
from pipeline.store.read import damaged_blocks
from bench_read import missing_chunks
path, reps = sys.argv[1], int(sys.argv[2])
ds = xr.open_zarr(path)
blocks = done_blocks(path)
out = {"old": [], "new": []}
for _ in range(reps):
    for k, f in (("old", missing_chunks), ("new", damaged_blocks)):
        t = time.perf_counter(); bad = f(path, ds, blocks); out[k].append(time.perf_counter() - t)
        assert not bad
print(json.dumps(out | {"blocks": len(blocks), "variables": len(ds.data_vars)}))
"""


def check_alone(path: Path, reps: int) -> dict:
    """The open-time check alone, in one process: the old listing of chunk files
    (``missing_chunks``) against the new per-chunk checksum reads (``damaged_blocks``)."""
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    )
    res = subprocess.run([sys.executable, "-c", CHECK, str(path), str(reps)], cwd=ROOT,
                         env=env, check=True, capture_output=True, text=True)  # fmt: skip
    r = json.loads(res.stdout.strip().splitlines()[-1])
    return {k: statistics.median(r[k]) for k in ("old", "new")} | {
        "blocks": r["blocks"], "variables": r["variables"]}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline", default="72aab9d", help="commit of the old reader")
    ap.add_argument("--cube", type=Path, help="a 10^8-point cube of bench_static's config")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_read-") as tmp:
        tmp = Path(tmp)
        cube = a.cube or tmp / "cube.zarr"
        if not (cube / "zarr.json").is_file():
            build(cube)
        old = baseline_tree(a.baseline, tmp / "old")
        runs: dict[str, list[dict]] = {"old": [], "new": []}
        for i in range(a.rounds):
            for name, pp in (("old", old), ("new", ROOT)):
                r = query(cube, pp, a.reps)
                runs[name].append(r)
                print(f"round {i} {name}: first {r['first']:.3f} s, then "
                      + " ".join(f"{t:.3f}" for t in r["times"]), flush=True)  # fmt: skip
        assert runs["old"][0]["module"].startswith(str(old))
        assert runs["new"][0]["module"].startswith(str(ROOT))
        for k in ("wage_sum", "regime_sum"):  # the same values, read by either
            assert runs["old"][0][k] == runs["new"][0][k], k
        med = {k: statistics.median(t for r in v for t in r["times"]) for k, v in runs.items()}
        first = {k: statistics.median(r["first"] for r in v) for k, v in runs.items()}
        alone = check_alone(cube, 3 * a.reps)
        print(json.dumps({"median_s": med, "first_median_s": first,
                          "ratio": med["new"] / med["old"],
                          "first_ratio": first["new"] / first["old"],
                          "check_alone_median_s": alone}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
