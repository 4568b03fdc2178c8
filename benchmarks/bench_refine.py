"""Refined sweeps against dense sweeps of their finest grid, end to end (config ->
finalized zarr cube on disk), in one process.

Run: ``.venv/bin/python benchmarks/bench_refine.py [--quick] [--only 2d 4d dynamic]
[--json FILE] [--dir DIR]``

1. ``coordination`` J = 2 over ``r_1 x theta_1`` at 4097 x 4097 equivalent (17 x 17
   coarse points, 8 levels). Target: at most 2 % of the dense points.
2. ``coordination`` J = 2 over ``r_1, r_2, theta_1, theta_2`` at 129^4 equivalent
   (9^4 coarse, 4 levels), with ``r_1 > r_2`` (the paper's ordering; two boundary
   surfaces). Target: at most 10 %.
3. ``dynamic`` J = 2, the ``path_feasible`` map over ``g x eps`` at 1025 x 1025
   equivalent (17 x 17 coarse, 6 levels). Target: wall time after compile at least 10x
   shorter than the dense sweep. Both kernels are compiled before the timed runs (a
   small refined sweep: its batches of 1,024 points; one block of the dense sweep: its
   block shape, from the default chunks); the dense sweep runs a second time with
   blocks of 32 x 32 = 1,024 points (the refined batch: compiled already), its fastest
   chunking here.

For each: points computed and wall time, refined and dense, and the check that the
refined cube's view equals the dense cube (``on`` outputs at every finest point in 2-D,
on 2-D slices through random points in 4-D; every output at every computed point).
``--quick`` runs smaller equivalents (for a smoke test of the script).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from pipeline import open_cube, parse_config, run


def axis(kind, a, b, n):
    return f"{{{kind}: [{a}, {b}, {n}]}}"


def config(model, params, extra=""):
    lines = [f"model: {model}", "sectors: 2", "params:"] + [
        f"  {k}: {v}" for k, v in params.items()
    ]
    return "\n".join(lines) + "\n" + extra + "\noutput: x.zarr\n"


def dense_of(params, levels):
    out = {}
    for k, v in params.items():
        if v.startswith("{linspace") or v.startswith("{logspace"):
            kind = v[1:9]
            a, b, n = v[v.index("[") + 1 : v.index("]")].split(",")
            out[k] = axis(kind, a.strip(), b.strip(), (int(n) - 1) * 2**levels + 1)
        else:
            out[k] = v
    return out


def timed(spec):
    t0 = time.perf_counter()
    res = run(spec)
    return time.perf_counter() - t0, res


def compare(view, dense, on, slices=None, rng=None):
    """Mismatches of the ``on`` outputs (all points, or 2-D slices) and of every output
    at computed points."""
    dims = list(dense["done"].dims)
    if slices is None:
        sels = [{}]
    else:
        sels = []
        for _ in range(slices):
            x, y = rng.choice(dims, 2, replace=False)
            sels.append({d: int(rng.integers(dense.sizes[d])) for d in dims if d not in (x, y)})
    bad_on = bad_all = checked = 0
    for sel in sels:
        a, b = view.isel(sel).load(), dense.isel(sel).load()
        knife = b["knife_edge"].values
        for v in on:
            x, y = np.asarray(a[v].values), np.asarray(b[v].values)
            k = np.broadcast_to(knife.reshape(knife.shape + (1,) * (x.ndim - knife.ndim)), x.shape)
            bad_on += int(((x != y) & ~k).sum())
        comp = a["computed"].values
        checked += int(comp.sum())
        for v in b.data_vars:
            x, y = np.asarray(a[v].values), np.asarray(b[v].values)
            m = np.broadcast_to(comp.reshape(comp.shape + (1,) * (x.ndim - comp.ndim)), x.shape)
            bad_all += int(not np.array_equal(x[m], y[m], equal_nan=True))
    return {
        "on_mismatches": bad_on,
        "outputs_differing_at_computed": bad_all,
        "computed_points_checked": checked,
    }


def case(name, model, params, levels, on, root, extra_dense="", slices=None, warm=None, tuned=None):
    out = {"case": name}
    r = parse_config(
        config(model, params, f"refine: {{on: [{', '.join(on)}], levels: {levels}}}"),
        output=root / f"{name}-refined.zarr",
    )
    d = parse_config(
        config(model, dense_of(params, levels), extra_dense), output=root / f"{name}-dense.zarr"
    )
    if warm:
        warm()
    t_r, res_r = timed(r)
    t_d, res_d = timed(d)
    n_dense = d.n_points
    if tuned:  # the dense sweep again, with blocks of the refined sweep's batch size
        d2 = parse_config(
            config(model, dense_of(params, levels), tuned), output=root / f"{name}-dense2.zarr"
        )
        t_d2, _ = timed(d2)
        out |= {
            "dense_tuned_s": round(t_d2, 2),
            "dense_tuned_chunks": tuned,
            "speedup_tuned": round(t_d2 / t_r, 2),
        }
        shutil.rmtree(d2.output)
    out |= {
        "dense_points": n_dense,
        "finest": list(d.shape),
        "refined_points": res_r["points_computed"],
        "fraction": res_r["points_computed"] / n_dense,
        "per_level": [x["computed_points"] for x in res_r["levels"]],
        "blocks_per_level": [x["computed_blocks"] for x in res_r["levels"]],
        "refined_s": round(t_r, 2),
        "dense_s": round(t_d, 2),
        "speedup": round(t_d / t_r, 2),
        "refined_disk_mb": round(du(r.output) / 1e6, 1),
        "dense_disk_mb": round(du(d.output) / 1e6, 1),
    }
    t0 = time.perf_counter()
    out |= compare(open_cube(r.output), open_cube(d.output), on, slices, np.random.default_rng(0))
    out["check_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out), flush=True)
    shutil.rmtree(r.output)
    shutil.rmtree(d.output)
    return out


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small equivalents")
    ap.add_argument("--only", nargs="*", default=["2d", "4d", "dynamic"])
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--dir", type=Path, help="folder for the cubes (default: a temporary one)")
    args = ap.parse_args()
    root = Path(args.dir or tempfile.mkdtemp(prefix="bench-refine-"))
    root.mkdir(parents=True, exist_ok=True)
    q = args.quick
    results = []
    if "2d" in args.only:
        p = {
            "r_1": axis("logspace", 0.25, 8.0, 17),
            "r_2": "1.0",
            "theta_1": axis("linspace", 1.05, 6.0, 17),
            "theta_2": "2.0",
        }
        results.append(
            case("coordination-2d", "coordination", p, 4 if q else 8, ["regime", "best"], root)
        )
    if "4d" in args.only:
        # sector 1 is South's comparative advantage (r_1 > r_2, the paper's ordering):
        # boundaries C2 (r_1/r_2 = theta_1) and B1/B2 (r_1/theta_1 = r_2/theta_2)
        p = {
            "r_1": axis("logspace", 1.2, 6.0, 9),
            "r_2": axis("logspace", 0.3, 1.0, 9),
            "theta_1": axis("linspace", 1.05, 4.0, 9),
            "theta_2": axis("linspace", 1.05, 4.0, 9),
        }
        results.append(
            case(
                "coordination-4d",
                "coordination",
                p,
                2 if q else 4,
                ["regime", "best"],
                root,
                slices=40,
            )
        )
    if "dynamic" in args.only:
        L = 3 if q else 6
        p = {
            "r_1": "3.0",
            "r_2": "1.0",
            "theta_1": "2.0",
            "theta_2": "2.5",
            "g": axis("linspace", 0.001, 0.1, 17),
            "eps": axis("linspace", 0.01, 0.2, 17),
        }

        def warm():  # compile both kernels' shapes before the timed runs
            small = dict(p, g=axis("linspace", 0.001, 0.1, 3), eps=axis("linspace", 0.01, 0.2, 3))
            s = parse_config(
                config("dynamic", small, "refine: {on: [path_feasible], levels: 1}"),
                output=root / "w1.zarr",
            )
            run(s)  # the refined sweep's batch (1,024 points)
            shutil.rmtree(s.output)
            s = parse_config(config("dynamic", dense_of(p, L)), output=root / "w2.zarr")
            run(s, max_blocks=1)  # the dense sweep's block shape (its default chunks)
            shutil.rmtree(s.output)

        results.append(
            case(
                "dynamic-path_feasible",
                "dynamic",
                p,
                L,
                ["path_feasible"],
                root,
                warm=warm,
                tuned="chunks: {g: 32, eps: 32}",
            )
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print()
    print(
        "| case | finest | dense points | refined points | % of dense | refined s | dense s "
        "| dense / refined |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['case']} | {' x '.join(map(str, r['finest']))} | {r['dense_points']:,} | "
            f"{r['refined_points']:,} | {100 * r['fraction']:.2f} | {r['refined_s']} | "
            f"{r['dense_s']} | {r['speedup']}x |"
        )
    if not args.dir:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
