"""Device benchmark (issue 24): the model kernels on a GPU against the CPU of the
same machine, in one run.

Run (one command; under 8 minutes on a GPU machine; ``--quick``: seconds)::

    .venv/bin/python benchmarks/bench_device.py [--quick]

Measures, on every device JAX sees (the CPU always; a GPU where a CUDA jaxlib sees
one: ``pip install -e ".[gpu]"``), at several batch sizes (points per launch, each
size compiled once, compile time apart, then the median of ``--repeats`` calls):

1. the static kernels (``coordination``, J = 2 and J = 4): points per second, the
   kernel alone (inputs on the device, outputs left there) and with the host
   transfers (numpy in, numpy out);
2. the dynamic transition with saved paths (J = 2, ``n_time`` saved times):
   trajectories (point x target paths) per second, the same two ways;
3. where zarr, xarray and dask are installed (``--e2e-n`` points, 0 to skip): a
   ``coordination`` sweep end to end, config to cube on disk, through
   ``pipeline.run`` in a fresh process per device (``MARSHALL_DEVICE``), timed on its
   second run (compiled): points per second, and the share of the wall time spent
   waiting for the device (launch to results ready), in the host transfer (device
   to numpy), and compressing and writing (``CubeWriter.write``). They overlap (the
   next block computes while one is written), so the shares may add up to more
   than 100 %.

The ``x cpu`` column is the rate against the CPU's best over the sizes (the CPU's
rate peaks at a cache-sized launch, the GPU's at the largest). The CPU is timed up
to ``--cpu-max`` points a launch (2^22 static, 2^14 dynamic: its rate is flat past
that, and the dynamic kernel runs on one core). Prints one table.
The kernel part needs JAX and numpy only (and diffrax with optimistix, pure-JAX
libraries, for the dynamic model's integrator): marshall's kernel modules are
imported without ``pipeline/__init__`` where xarray, zarr or pydantic are missing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FULL_PACKAGE = ("xarray", "zarr", "dask", "pydantic", "yaml")


def _has(*names: str) -> bool:
    return all(importlib.util.find_spec(n) is not None for n in names)


def import_kernels():
    """``pipeline.kernels`` and ``pipeline.device``: through the package where its
    dependencies are installed, else as modules of a bare ``pipeline`` namespace
    (``pipeline/__init__`` imports xarray and zarr; the kernels need neither)."""
    if "pipeline" not in sys.modules and not _has(*FULL_PACKAGE):
        pkg = types.ModuleType("pipeline")
        pkg.__path__ = [str(ROOT / "pipeline")]
        sys.modules["pipeline"] = pkg
    elif str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from pipeline import device, kernels

    return device, kernels


def static_inputs(n: int, J: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    return {"r": rng.uniform(0.2, 2.0, (n, J)), "theta": rng.uniform(1.1, 3.0, (n, J))}


def dynamic_inputs(n: int, seed: int = 0, J: int = 2):
    """bench_dynamic.py's points: common (g, eps) per point, r decreasing."""
    import numpy as np

    rng = np.random.default_rng(seed)
    eps = rng.uniform(0.05, 0.3, (n, 1)) * np.ones((1, J))
    g = eps * rng.uniform(0.05, 0.9, (n, 1))
    r = np.sort(rng.uniform(0.2, 1.0, (n, J)), axis=1)[:, ::-1].copy()
    theta = rng.uniform(1.1, 3.0, (n, J))
    rho = rng.uniform(0.02, 0.1, n)
    return {"r": r, "theta": theta, "g": g, "eps": eps, "rho": rho, "Tc": np.zeros(n)}


def time_kernel(kernels, dev, model: str, J: int, inputs: dict, static: dict, repeats: int):
    """Compile seconds, median seconds of the kernel alone (inputs on ``dev``) and of
    a call from numpy to numpy (transfers included)."""
    import jax
    import numpy as np

    n = len(next(iter(inputs.values())))
    fn = kernels.batch_kernel(model, J, n, **static)
    on_dev = jax.device_put(inputs, dev)
    t = time.perf_counter()
    jax.block_until_ready(fn(on_dev))
    compile_s = time.perf_counter() - t
    alone, whole = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(on_dev))
        alone.append(time.perf_counter() - t)
        t = time.perf_counter()
        out = fn(jax.device_put(inputs, dev))
        _ = {k: np.asarray(v) for k, v in out.items()}
        whole.append(time.perf_counter() - t)
    return compile_s, statistics.median(alone), statistics.median(whole)


E2E = """
import json, os, sys, time
import jax
from pipeline import device, parse_config, run
import pipeline.kernels as K
from pipeline.store.cube import CubeWriter

T = {"device": 0.0, "transfer": 0.0, "write": 0.0}
launch, gather, write = K._launch, K._gather, CubeWriter.write

def _launch(*a, **k):
    outs = launch(*a, **k)
    for o in outs:
        o["__t0"] = time.perf_counter()
    return outs

def _gather(model, outs, static):  # a block's slices: from their launch to all ready
    t0 = min(o.pop("__t0") for o in outs)
    jax.block_until_ready(outs)
    T["device"] += time.perf_counter() - t0
    t = time.perf_counter()
    res = gather(model, outs, static)
    T["transfer"] += time.perf_counter() - t
    return res

def _write(self, *a, **k):
    t = time.perf_counter()
    try:
        return write(self, *a, **k)
    finally:
        T["write"] += time.perf_counter() - t

K._launch, K._gather, CubeWriter.write = _launch, _gather, _write
dev = device.setup()
text = open(sys.argv[1]).read()
res = None
for i in range(2):  # the first run compiles; the second is timed
    for k in T:
        T[k] = 0.0
    spec = parse_config(text, output=f"{sys.argv[2]}/c{i}.zarr")
    t = time.perf_counter()
    res = run(spec)
    wall = time.perf_counter() - t
print(json.dumps({"kind": dev.kind, "wall": wall, "points": res["points"],
                  "blocks": res["blocks"], **T}))
"""


def end_to_end(kind: str, n: int) -> dict:
    """A coordination sweep of about ``n`` points on ``kind`` in a fresh process."""
    n1 = max(2, int(round((n / 3) ** 0.5)))
    cfg = textwrap.dedent(f"""\
        model: coordination
        sectors: 2
        params:
          r_1: {{logspace: [0.25, 8.0, {n1}]}}
          r_2: 1.0
          theta_1: {{linspace: [1.05, 6.0, {n1}]}}
          theta_2: [1.5, 2.0, 3.0]
        output: unused.zarr
        """)
    with tempfile.TemporaryDirectory(prefix="bench-device-") as d:
        (Path(d) / "c.yaml").write_text(cfg)
        env = {**os.environ, "MARSHALL_DEVICE": kind, "MARSHALL_JAX_CACHE": "off"}
        res = subprocess.run(
            [sys.executable, "-c", E2E, str(Path(d) / "c.yaml"), d],
            env=env,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-2000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes: seconds, to check it runs")
    ap.add_argument("--static-sizes", type=float, nargs="*", help="points per launch")
    ap.add_argument("--dynamic-sizes", type=float, nargs="*", help="points per launch (x J paths)")
    ap.add_argument("--n-time", type=int, default=None, help="saved times of a path")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--e2e-n", type=float, default=None, help="points of the sweep (0: skip)")
    ap.add_argument("--no-dynamic", action="store_true", help="skip the dynamic model")
    ap.add_argument("--cpu-max", type=float, nargs=2, default=None, metavar=("STATIC", "DYN"),
                    help="largest sizes timed on the CPU (larger ones: GPU only)")  # fmt: skip
    ap.add_argument("--platforms", default=None, help="JAX_PLATFORMS for this run")
    a = ap.parse_args(argv)
    q = a.quick
    static_sizes = [int(s) for s in (a.static_sizes or ([1024, 4096] if q else
                    [1 << 14, 1 << 16, 1 << 18, 1 << 20, 1 << 22, 1 << 24]))]  # fmt: skip
    dyn_sizes = [int(s) for s in (a.dynamic_sizes or ([128] if q else
                 [1 << 10, 1 << 12, 1 << 14, 1 << 15, 1 << 16]))]  # fmt: skip
    n_time = a.n_time or (101 if q else 401)
    repeats = a.repeats or (2 if q else 3)
    e2e_n = int(a.e2e_n if a.e2e_n is not None else (2e5 if q else 2e7))
    cpu_max = [int(x) for x in (a.cpu_max or (1 << 22, 1 << 14))]
    # compile times are measured: no persistent compilation cache; every device JAX
    # can start (JAX_PLATFORMS unset) unless told otherwise (where JAX started before
    # this, e.g. a test importing this module, its devices stay)
    os.environ["MARSHALL_JAX_CACHE"] = "off"
    os.environ.pop("MARSHALL_DEVICE", None)
    os.environ.pop("JAX_PLATFORMS", None)
    if a.platforms:
        os.environ["JAX_PLATFORMS"] = a.platforms

    t_start = time.perf_counter()
    device, kernels = import_kernels()
    import jax

    devs = {"cpu": jax.devices("cpu")[0]}
    try:
        gpus = [d for d in jax.devices() if device.kind_of(d.platform) == "gpu"]
    except RuntimeError:
        gpus = []
    if gpus:
        devs["gpu"] = gpus[0]
    for d in devs.values():
        device.check(d)  # float64 on every device, or no numbers at all
    has_dyn = not a.no_dynamic and _has("diffrax", "optimistix")
    print(
        f"# bench_device: {platform.node()} ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores); jax {jax.__version__}; devices: "
        + ", ".join(f"{k} = {d.device_kind}" for k, d in devs.items())
        + ("" if gpus else " (no GPU: CPU rows only)")
        + f"; float64 checked on each; launch sizes in marshall: cpu "
        f"{kernels.launch_size('coordination', 'cpu'):,} static points / whole blocks "
        f"dynamic, gpu {kernels.GPU_POINTS:,} / {kernels.GPU_TRAJECTORIES:,}",
        flush=True,
    )

    rows = []  # what, device, size, compile s, rate, rate w/ transfers, x cpu, note

    def kernel_rows(what, model, J, sizes, make, static, per_point, unit, most):
        found, failed = [], []  # (kind, n, compile s, rate, rate with transfers); rows
        for kind, dev in devs.items():
            for n in sizes:
                if kind == "cpu" and n > most:
                    continue
                try:
                    c, t1, t2 = time_kernel(kernels, dev, model, J, make(n), static, repeats)
                except Exception as exc:  # e.g. out of device memory: a row says so
                    text = (str(exc).strip().splitlines() or [""])[0][:120]
                    failed.append((what, kind, f"{n:,}", "-", "-", "-", "-",
                                   f"failed: {type(exc).__name__}: {text}"))  # fmt: skip
                    print(f"  {what} | {kind} | {n:,} | {failed[-1][-1]}", file=sys.stderr)
                    continue
                found.append((kind, n, c, n * per_point / t1, n * per_point / t2))
                print(f"  {what} | {kind} | {n:,} | {c:.2f} s | {found[-1][3]:,.0f} {unit}",
                      file=sys.stderr, flush=True)  # fmt: skip
        best = max((f[3] for f in found if f[0] == "cpu"), default=0.0)
        for kind, n, c, rate, rate2 in found:
            rows.append((what, kind, f"{n:,}", f"{c:.2f}", f"{rate:,.0f}", f"{rate2:,.0f}",
                         f"{rate / best:.2f}x" if best else "-", unit))  # fmt: skip
        rows.extend(failed)

    for J in (2, 4):
        kernel_rows(f"static coordination J={J}", "coordination", J, static_sizes,
                    lambda n, J=J: static_inputs(n, J), {}, 1, "points/s",
                    cpu_max[0])  # fmt: skip
    if has_dyn:
        st = {"T": 100.0, "n_time": n_time, "save_paths": True}
        kernel_rows(f"dynamic transition, paths, n_time={n_time}", "dynamic", 2, dyn_sizes,
                    dynamic_inputs, st, 2, "trajectories/s", cpu_max[1])  # fmt: skip
    else:
        rows.append(("dynamic transition", "-", "-", "-", "-", "-", "-",
                     "skipped: " + ("--no-dynamic" if a.no_dynamic else
                                    "needs diffrax and optimistix")))  # fmt: skip
    if e2e_n and _has(*FULL_PACKAGE):
        cpu_rate = None
        for kind in devs:
            try:
                r = end_to_end(kind, e2e_n)
            except RuntimeError as exc:
                text = (str(exc).strip().splitlines() or [""])[-1][:120]
                rows.append(("end to end, coordination J=2", kind, "-", "-", "-", "-", "-",
                             f"failed: {text}"))  # fmt: skip
                continue
            rate = r["points"] / r["wall"]
            cpu_rate = rate if kind == "cpu" else cpu_rate
            share = ", ".join(f"{k} {100 * r[k] / r['wall']:.0f}%"
                              for k in ("device", "transfer", "write"))  # fmt: skip
            note = f"points/s; {r['blocks']} blocks in {r['wall']:.2f} s; {share}"
            rows.append(("end to end, coordination J=2", kind, f"{r['points']:,}",
                         "-", f"{rate:,.0f}", "-",
                         f"{rate / cpu_rate:.2f}x" if cpu_rate else "-",
                         note))  # fmt: skip
            print("  " + " | ".join(rows[-1]), file=sys.stderr, flush=True)
    elif e2e_n:
        rows.append(("end to end", "-", "-", "-", "-", "-", "-",
                     "skipped: needs " + ", ".join(FULL_PACKAGE)))  # fmt: skip

    head = ("what", "device", "per launch", "compile s", "rate, kernel", "rate, numpy<->numpy",
            "x cpu", "unit / notes")  # fmt: skip
    print("\n| " + " | ".join(head) + " |")
    print("|" + "|".join("---" if i in (0, 1, 7) else "---:" for i in range(len(head))) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(f"\n({time.perf_counter() - t_start:.0f} s in all)")


if __name__ == "__main__":
    main()
