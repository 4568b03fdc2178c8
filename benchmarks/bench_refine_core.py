"""Refinement core: points a refined sweep computes against its dense equivalent.

Run: ``.venv/bin/python benchmarks/bench_refine_core.py [--quick] [--neighbours face box]``

Synthetic categorical maps stand in for the kernels (numpy, correctly rounded arithmetic
only), driven by :func:`pipeline.refine.run_in_memory`:

1. 2-D, 4097 x 4097 equivalent (17 coarse points, 8 levels): the ``standard`` model's
   regimes on ``c = r_2 / r_1`` (log axis) x ``theta`` (two boundaries: ``c = theta``,
   curved on the log axis, and ``c = 1``, straight) and a disk (a closed curve).
   Target: at most 2 % of the dense points.
2. 4-D, 129^4 equivalent (9 coarse points, 4 levels) on ``r_1, r_2`` (log) x
   ``theta_1, theta_2``: (a) "two boundaries": the wedge ``r_1 / r_2 = theta_1`` and a
   sphere; (b) the ``modes`` model with J = 2 (stable C1, C2, B1/B2: three boundary
   surfaces). Target: at most 10 %.

For each: points per level, total against dense, the estimate from level 0, the
blocks a level writes at the given chunk shape and how full they are, and a check that
the dense view equals the dense evaluation (2-D: every point; 4-D: 2-D slices through
random points, level 4 evaluated on demand for the slices only, as a store serves a
slice). Prints a table; ``--json`` writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from pipeline import refine as rf

# ------------------------------------------------------------------------ the maps


def standard_disk(p):
    c, th = p["c"], p["theta"]
    b1, c2 = c <= th, c >= 1.0
    dx, dy = (c - 2.0), (th - 2.6) / 0.8
    disk = dx * dx + dy * dy < 0.5
    regime = b1.astype(np.int32) + 2 * c2 + 4 * disk
    return {"regime": regime, "knife_edge": np.zeros(regime.shape, bool)}


def wedge_sphere(p):
    r1, r2, t1, t2 = p["r_1"], p["r_2"], p["theta_1"], p["theta_2"]
    wedge = r1 / r2 < t1
    d = [(r1 - 1.0) / 1.5, (r2 - 1.0) / 1.5, (t1 - 3.0) / 1.5, (t2 - 2.5) / 1.5]
    sphere = sum(x * x for x in d) < 0.25
    regime = wedge.astype(np.int32) + 2 * sphere
    return {"regime": regime, "knife_edge": np.zeros(regime.shape, bool)}


def modes_j2(p):
    """MODEL.md section 3 with L_S >= Lbar: stable C_j iff r_k / r_j < theta_k; B_j iff
    r_j / theta_j is the largest (strict); regime bitmask C1 = 1, C2 = 2, B1 = 4, B2 = 8."""
    r1, r2, t1, t2 = p["r_1"], p["r_2"], p["theta_1"], p["theta_2"]
    c1 = r2 / r1 < t2
    c2 = r1 / r2 < t1
    b1 = r2 * t1 < r1 * t2
    regime = c1.astype(np.int32) + 2 * c2 + 4 * b1 + 8 * ~b1
    return {"regime": regime, "knife_edge": np.zeros(regime.shape, bool)}


# ----------------------------------------------------------------------- the runs


class _OnDemand:
    """Level ``L`` served box by box from the last step: copies from level ``L - 1``,
    the rest evaluated by ``f`` (what a store holding level ``L`` would return)."""

    def __init__(self, step, prev, f):
        self.step, self.prev, self.f = step, prev, f

    def __iter__(self):
        return iter(self.prev)

    def __getitem__(self, name):
        outer = self

        class _Arr:
            def __getitem__(self, box):
                return outer.read(name, box)

        return _Arr()

    def read(self, name, box):
        g = self.step.grid
        p = self.step.points(box)
        if name == "computed":
            return p
        rng = [(s.start, s.stop) for s in box]
        ev = self.step._even(rng)
        out = np.zeros(p.shape, self.prev[name].dtype)
        old = np.argwhere(p & ev) + [a for a, _ in rng]
        src = np.where(np.array(g.refined), old // 2, old)
        out[p & ev] = self.prev[name][tuple(src.T)]
        new = np.argwhere(p & ~ev) + [a for a, _ in rng]
        if len(new):
            out[p & ~ev] = self.f(g.params(g.levels, new))[name]
        return out


def run_case(name, axes, levels, f, neighbours, chunks, slices=0, seed=0):
    g = rf.RefineGrid(axes, levels)
    d = g.ndim
    t0 = time.perf_counter()
    full = d <= 2
    levs = rf.run_in_memory(
        g, f, ["regime"], chunks=chunks, neighbours=neighbours, until=None if full else levels - 1
    )
    per_level = [rf.points_computed(g, [levs[0]["computed"]])]
    for l in range(1, len(levs)):
        c = levs[l]["computed"].copy()
        c[g.embed(l - 1)] = False
        per_level.append(int(c.sum()))
    last = levs[-1] if not full else levs[-2]
    last_l = len(levs) - 1 if not full else levels - 1
    step = g.step(
        last_l,
        {"regime": last["regime"]},
        knife=last["knife_edge"],
        computed=last["computed"],
        neighbours=neighbours,
    )
    if not full:
        per_level.append(step.n_compute)
    t_run = time.perf_counter() - t0
    step0 = g.step(0, {"regime": levs[0]["regime"]}, knife=levs[0]["knife_edge"])
    est = rf.estimate(step0)
    blocks = step.blocks(chunks)
    n_chunks = math.prod(math.ceil(n / c) for n, c in zip(g.finest_shape, chunks))
    held = sum(b.n_compute + b.n_copy for b in blocks)
    total = sum(per_level)
    # check the dense view against the dense evaluation
    t1 = time.perf_counter()
    wrong = checked = 0
    if full:
        view = rf.dense_view(g, levs, names=["regime"])
        mesh = np.meshgrid(*(g.finest_coords[n] for n in g.names), indexing="ij")
        dense = f({n: m.ravel() for n, m in zip(g.names, mesh)})["regime"].reshape(g.finest_shape)
        wrong, checked = int((view["regime"] != dense).sum()), dense.size
    else:
        sources = levs + [_OnDemand(step, last, f)]
        rng = np.random.default_rng(seed)
        pairs = [(i, j) for i in range(d) for j in range(i + 1, d)]
        for s in range(slices):
            i, j = pairs[s % len(pairs)]
            at = [int(rng.integers(0, n)) for n in g.finest_shape]
            region = tuple(slice(None) if k in (i, j) else at[k] for k in range(d))
            view = rf.dense_view(g, sources, region=region, names=["regime"])["regime"]
            idx, keep = g.region_indices(region)
            mesh = np.meshgrid(
                *(g.finest_coords[n][ix] for n, ix in zip(g.names, idx)), indexing="ij"
            )
            dense = f({n: m.ravel() for n, m in zip(g.names, mesh)})["regime"].reshape(view.shape)
            wrong += int((view != dense).sum())
            checked += dense.size
    t_check = time.perf_counter() - t1
    return {
        "case": name,
        "neighbours": neighbours,
        "finest": g.finest_shape,
        "dense": g.n_dense,
        "per_level": per_level,
        "points": total,
        "fraction": total / g.n_dense,
        "estimate": est.points,
        "estimate_ratio": est.points / total,
        "chunks": chunks,
        "blocks_written": len(blocks),
        "blocks_total": n_chunks,
        "block_fill": held
        / max(1, sum(math.prod(s.stop - s.start for s in b.region) for b in blocks)),
        "checked": checked,
        "wrong": wrong,
        "t_run_s": round(t_run, 2),
        "t_check_s": round(t_check, 2),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller equivalents (seconds)")
    ap.add_argument("--neighbours", nargs="+", default=["face"], choices=["face", "box"])
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    L2, L4 = (5, 2) if args.quick else (8, 4)
    ax2 = [
        rf.RefineAxis("c", "logspace", 0.25, 4.0, 17),
        rf.RefineAxis("theta", "linspace", 1.05, 4.0, 17),
    ]
    ax4 = [
        rf.RefineAxis("r_1", "logspace", 0.25, 4.0, 9),
        rf.RefineAxis("r_2", "logspace", 0.25, 4.0, 9),
        rf.RefineAxis("theta_1", "linspace", 1.05, 4.0, 9),
        rf.RefineAxis("theta_2", "linspace", 1.05, 4.0, 9),
    ]
    rows = []
    for nb in args.neighbours:
        rows.append(run_case("2-D standard + disk", ax2, L2, standard_disk, nb, (256, 256)))
        rows.append(run_case("4-D wedge + sphere", ax4, L4, wedge_sphere, nb, (16,) * 4, slices=12))
        rows.append(run_case("4-D modes J=2", ax4, L4, modes_j2, nb, (16,) * 4, slices=12))
        for r in rows[-3:]:
            print(
                f"{r['case']:<22} {r['neighbours']:<4} finest {'x'.join(map(str, r['finest']))}: "
                f"{r['points']:,} of {r['dense']:,} = {100 * r['fraction']:.2f} % "
                f"(per level {r['per_level']}); estimate {r['estimate']:,} "
                f"(x{r['estimate_ratio']:.2f}); blocks {r['blocks_written']}/{r['blocks_total']} "
                f"at {r['chunks']} ({100 * r['block_fill']:.0f} % full); view wrong at "
                f"{r['wrong']} of {r['checked']:,} checked; {r['t_run_s']} s + {r['t_check_s']} s",
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1, default=list)


if __name__ == "__main__":
    main()
