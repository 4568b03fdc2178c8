"""Refined sweeps end to end: config, levels in the store, the dense view, queries,
figures, resume, parts, dask, verify, bisected boundaries.

Every comparison is against a dense sweep of the finest grid, computed by the same
pipeline from the dense-equivalent config (``linspace: [a, b, (n - 1) 2^L + 1]``), or
against the paper's analytic boundaries.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from typer.testing import CliRunner

from pipeline import ConfigError, open_cube, parse_config, run
from pipeline import refine as rf
from pipeline.cli import app
from pipeline.store import levels as lv

BIN = Path(sys.executable).parent
MARSHALL = str(BIN / "marshall")


# ----------------------------------------------------------------------- configs


def cfg(model: str, params: dict[str, str], extra: str = "", sectors: int | None = None) -> str:
    lines = [f"model: {model}"] + ([f"sectors: {sectors}"] if sectors else []) + ["params:"]
    lines += [f"  {k}: {v}" for k, v in params.items()]
    return "\n".join(lines) + "\n" + extra + "\noutput: x.zarr\n"


def axis(kind: str, a: float, b: float, n: int) -> str:
    return f"{{{kind}: [{a!r}, {b!r}, {n}]}}"


def dense_params(params: dict[str, str], levels: int) -> dict[str, str]:
    """The dense equivalent: every linspace/logspace axis with (n - 1) 2^L + 1 points."""
    out = {}
    for k, v in params.items():
        if v.startswith("{linspace") or v.startswith("{logspace"):
            kind = v[1:9]
            a, b, n = (x.strip() for x in v[v.index("[") + 1 : v.index("]")].split(","))
            out[k] = axis(kind, float(a), float(b), (int(n) - 1) * 2**levels + 1)
        else:
            out[k] = v
    return out


def refine_block(on=("regime", "best"), levels=3, neighbours=None) -> str:
    nb = f", neighbours: {neighbours}" if neighbours else ""
    return f"refine: {{on: [{', '.join(on)}], levels: {levels}{nb}}}"


def pair(tmp, model, params, levels, on=("regime", "best"), sectors=None, extra="", dense=True):
    """Run a refined config and (optionally) its dense equivalent; their cubes."""
    r = parse_config(
        cfg(model, params, refine_block(on, levels) + "\n" + extra, sectors), output=tmp / "r.zarr"
    )
    run(r)
    out = [open_cube(r.output)]
    if dense:
        d = parse_config(
            cfg(model, dense_params(params, levels), extra, sectors), output=tmp / "d.zarr"
        )
        run(d)
        out.append(open_cube(d.output))
    return r, out


def assert_view_equals_dense(view: xr.Dataset, dense: xr.Dataset, on=("regime", "best")):
    """The refined view: the ``on`` outputs equal the dense sweep at every finest point
    (away from knife-edge points), and every output at the points it computed, bit
    for bit; its coordinates are the dense sweep's."""
    view, dense = view.load(), dense.load()
    for d in dense["done"].dims:
        assert np.array_equal(view[d].values, dense[d].values), d
    assert bool(view["done"].all())
    knife = dense["knife_edge"].values
    for v in on:
        a, b = np.asarray(view[v].values), np.asarray(dense[v].values)
        away = knife.reshape(knife.shape + (1,) * (a.ndim - knife.ndim))
        bad = (a != b) & ~np.broadcast_to(away, a.shape)
        assert not bad.any(), f"{v}: {int(bad.sum())} of {bad.size} points differ"
    comp = view["computed"].values
    for v in dense.data_vars:
        a, b = np.asarray(view[v].values), np.asarray(dense[v].values)
        m = np.broadcast_to(comp.reshape(comp.shape + (1,) * (a.ndim - comp.ndim)), a.shape)
        assert np.array_equal(a[m], b[m], equal_nan=True), v
    assert int(comp.sum()) == view.attrs["points_computed"]


# ------------------------------------------------------------------------ config

BASE = {
    "r_1": axis("logspace", 0.25, 8.0, 9),
    "r_2": "1.0",
    "theta_1": axis("linspace", 1.05, 6.0, 7),
    "theta_2": "2.0",
}


def test_refine_block_is_validated_and_hashed(tmp_path):
    spec = parse_config(cfg("coordination", BASE, refine_block(levels=4)), output=tmp_path / "a")
    r = spec.refine
    assert r.on == ("regime", "best") and r.levels == 4 and r.neighbours == "face"
    assert r.knife == "knife_edge"
    assert spec.shape == (8 * 16 + 1, 6 * 16 + 1)  # the finest grid's axes
    np.testing.assert_array_equal(spec.axes[0].values, np.geomspace(0.25, 8.0, 129))
    np.testing.assert_array_equal(spec.axes[1].values, np.linspace(1.05, 6.0, 97))
    assert spec.canonical["refine"] == {"on": ["regime", "best"], "levels": 4, "neighbours": "face"}
    dense = parse_config(cfg("coordination", BASE), output=tmp_path / "a")
    assert "refine" not in dense.canonical and dense.config_hash != spec.config_hash
    other = parse_config(cfg("coordination", BASE, refine_block(levels=5)), output="x")
    assert other.config_hash != spec.config_hash
    # the block written out, with `on` as YAML 1.1 reads it, and one output as a string
    text = cfg("coordination", BASE, "refine:\n  on: regime\n  levels: 2\n  neighbours: box")
    assert parse_config(text).refine.on == ("regime",)


@pytest.mark.parametrize(
    ("block", "field", "match"),
    [
        ("refine: {on: [wage], levels: 2}", "refine.on", "float64 values, not categorical"),
        ("refine: {on: [nonsense], levels: 2}", "refine.on", "not an output"),
        ("refine: {on: [], levels: 2}", "refine.on", "list of output names"),
        ("refine: {on: [regime, regime], levels: 2}", "refine.on", "twice"),
        ("refine: {levels: 2}", "refine.on", "required"),
        ("refine: {on: [regime]}", "refine.levels", "required"),
        ("refine: {on: [regime], levels: 21}", "refine.levels", "0..20"),
        ("refine: {on: [regime], levels: true}", "refine.levels", "whole number"),
        ("refine: {on: [regime], levels: 2.5}", "refine.levels", "whole number"),
        ("refine: {on: [regime], levels: 2, neighbours: all}", "refine.neighbours", "face"),
        ("refine: {on: [regime], levels: 2, depth: 3}", "refine.depth", "unknown field"),
        ("refine: [regime]", "refine", "must be a mapping"),
    ],
)
def test_bad_refine_blocks_are_refused_naming_the_field(block, field, match):
    with pytest.raises(ConfigError) as exc:
        parse_config(cfg("coordination", BASE, block))
    hits = [m for f, m in exc.value.problems if f == field]
    assert hits and match in hits[0], exc.value.problems


def test_axes_that_cannot_be_refined_are_refused():
    lists = dict(BASE, r_1="[0.5, 1.0, 2.0]", theta_1="[1.5, 2.5]")
    with pytest.raises(ConfigError, match="no swept axis can be refined"):
        parse_config(cfg("coordination", lists, refine_block()))
    big = dict(BASE, r_1=axis("logspace", 0.25, 8.0, 1001))
    with pytest.raises(ConfigError) as exc:
        parse_config(cfg("coordination", big, refine_block(levels=20)))
    assert exc.value.problems[0][0] == "params.r_1" and "finest grid" in exc.value.problems[0][1]
    # the dynamic model's per-target categorical output may be named
    dyn = {
        "r_1": "3.0",
        "r_2": "1.0",
        "theta_1": "2.0",
        "theta_2": "2.5",
        "g": axis("linspace", 0.001, 0.1, 5),
        "eps": axis("linspace", 0.01, 0.2, 5),
    }
    spec = parse_config(cfg("dynamic", dyn, refine_block(("path_feasible", "status"), 2)))
    assert spec.refine.on == ("path_feasible", "status")


def test_cli_refuses_a_bad_refine_block_and_writes_nothing(tmp_path, write_config):
    p = write_config(cfg("coordination", BASE, "refine: {on: [wage], levels: 2}"))
    r = CliRunner().invoke(app, ["run", str(p), "-o", str(tmp_path / "c.zarr")])
    assert r.exit_code == 2 and "refine.on" in r.output
    assert not (tmp_path / "c.zarr").exists()


def test_cli_runs_a_refined_sweep_with_its_progress_bar(tmp_path, write_config):
    """The progress bar of a refinement level, whose size is learnt as it runs (a
    column formatting an unknown total crashed every refined run from the CLI)."""
    p = write_config(cfg("coordination", BASE, refine_block(("regime",), 2)))
    out = tmp_path / "c.zarr"
    r = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["run", str(p), "-o", str(out), "--progress"])
    assert r.exit_code == 0, r.output
    assert "level 2" in r.output and "points" in r.output and "created" in r.output


# --------------------------------------------------------- batch independence


@pytest.mark.parametrize("model", ["standard", "modes", "coordination", "asymmetric"])
def test_a_points_outputs_do_not_depend_on_its_batch(model):
    """Every model's kernel: the same points in batches of other sizes, at other
    positions, with padding, give the same outputs bit for bit (what lets a refined
    sweep batch its points freely and still equal the dense sweep). The dynamic
    model's: tests/test_dynamic.py (a point alone, in batches of 8 and 96), and the
    257 x 257 map below (batches of 4,096 against blocks of 4,096 cut otherwise)."""
    from pipeline.grid import Plan, block_params
    from pipeline.kernels import run_kernel
    from pipeline.models import get
    from pipeline.starter import starter_config

    text = starter_config(get(model), model, 2).replace(", 101]}", ", 7]}")
    spec = parse_config(text, output="x.zarr")
    n = spec.n_points
    region = Plan(spec.shape, spec.shape).region(0)
    inp = spec.decl.inputs(block_params(spec, region, n), spec.J)
    static = spec.decl.kernel.static(spec)
    ref = run_kernel(spec.model, spec.J, inp, **static)
    rng = np.random.default_rng(7)
    for size in (n + 5, 16):
        perm = rng.permutation(n)
        got = {k: np.empty_like(v) for k, v in ref.items()}
        for a in range(0, n, size):
            idx = perm[a : a + size]
            piece = {
                k: np.pad(v[idx], [(0, size - len(idx))] + [(0, 0)] * (v.ndim - 1), mode="edge")
                for k, v in inp.items()
            }
            out = run_kernel(spec.model, spec.J, piece, **static)
            for k in got:
                got[k][idx] = out[k][: len(idx)]
        for k in ref:
            a, b = np.ascontiguousarray(ref[k]), np.ascontiguousarray(got[k])
            assert a.tobytes() == b.tobytes(), (model, size, k)


# ------------------------------------------------- refined equals dense: models


def _random_config(rng, model: str, d: int):
    pools = {
        "coordination": {
            "r_1": ("logspace", 0.2, 5.0),
            "r_2": ("logspace", 0.2, 5.0),
            "theta_1": ("linspace", 1.05, 5.0),
            "theta_2": ("linspace", 1.05, 5.0),
        },
        "modes": {
            "r_1": ("logspace", 0.2, 5.0),
            "r_2": ("logspace", 0.2, 5.0),
            "theta_1": ("linspace", 1.05, 5.0),
            "theta_2": ("linspace", 1.05, 5.0),
            "beta": ("linspace", 0.2, 0.8),
            "alpha": ("linspace", 0.2, 1.0),
            "L_S": ("logspace", 0.5, 20.0),
        },
        "standard": {
            "r_1": ("logspace", 0.2, 5.0),
            "r_2": ("logspace", 0.2, 5.0),
            "theta": ("linspace", 1.05, 5.0),
            "alpha": ("linspace", 0.2, 1.0),
            "L_S": ("logspace", 0.5, 20.0),
        },
    }
    pool = pools[model]
    names = list(pool)
    swept = set(rng.choice(names, size=d, replace=False).tolist())
    params = {}
    for name in names:
        kind, lo, hi = pool[name]
        if kind == "logspace":
            a, b = np.exp(np.sort(rng.uniform(np.log(lo), np.log(hi), 2)))
        else:
            a, b = np.sort(rng.uniform(lo, hi, 2))
        if name in swept:
            params[name] = axis(
                kind,
                round(float(a), 4),
                round(float(b), 4) + 0.05,
                int(rng.integers(3, 6 if d == 3 else 8)),
            )
        else:
            params[name] = repr(round(float(a), 4))
    return params


@pytest.mark.parametrize(
    ("model", "d", "seed"),
    [
        ("coordination", 2, 1),
        ("coordination", 3, 2),
        ("modes", 2, 3),
        ("modes", 3, 4),
        ("standard", 2, 5),
        ("standard", 3, 6),
    ],
)
def test_refined_sweep_equals_the_dense_sweep_on_random_configs(tmp_path, model, d, seed):
    rng = np.random.default_rng(seed)
    levels = 3 if d == 2 else 2
    for _ in range(20):  # a config the model accepts
        params = _random_config(rng, model, d)
        try:
            parse_config(cfg(model, params, refine_block(levels=levels), sectors=None))
            break
        except ConfigError:
            continue
    else:
        raise AssertionError("no valid random config")
    extra = (
        "chunks: {"
        + ", ".join(f"{k}: {int(rng.integers(5, 12))}" for k in params if params[k].startswith("{"))
        + "}"
    )
    spec, (view, dense) = pair(tmp_path, model, params, levels, extra=extra)
    assert view.attrs["complete"] == 1
    assert_view_equals_dense(view, dense)
    # every point the view says it computed is one of the levels' new points, once
    per = view.attrs["points_per_level"]
    assert sum(per) == view.attrs["points_computed"] <= spec.n_points


def test_one_and_six_dimensional_sweeps(tmp_path):
    one = {"r_1": axis("logspace", 0.25, 8.0, 5), "r_2": "1.0", "theta_1": "2.5", "theta_2": "2.0"}
    _, (view, dense) = pair(tmp_path / "one", "coordination", one, 4)
    assert_view_equals_dense(view, dense)
    six = {
        "r_1": axis("logspace", 0.5, 4.0, 3),
        "r_2": axis("logspace", 0.4, 2.0, 3),
        "r_3": axis("logspace", 0.3, 1.5, 3),
        "theta_1": axis("linspace", 1.2, 4.0, 3),
        "theta_2": axis("linspace", 1.2, 4.0, 3),
        "theta_3": axis("linspace", 1.2, 4.0, 3),
    }
    _, (view, dense) = pair(tmp_path / "six", "coordination", six, 1, sectors=3)
    assert view.sizes["r_1"] == 5 and len(view["done"].dims) == 6
    assert_view_equals_dense(view, dense)


def test_a_region_thinner_than_the_coarse_spacing_is_missed_and_found_finer(tmp_path):
    """The one way a refined sweep misses a region (README): the standard model's strip
    ``1 < c < theta`` (two stable equilibria, ``n_stable = 2``) is thinner than the
    coarse spacing of ``r_2`` and holds no coarse point, and both its sides have
    ``n_stable = 1``: refined on ``n_stable`` from 9 coarse points it is missed; from
    65 coarse points (the same finest grid) it is found."""
    coarse = {
        "r_1": "1.0",
        "r_2": axis("logspace", 0.45, 2.2, 9),
        "theta": axis("linspace", 1.02, 1.06, 3),
    }
    levels = 6
    _, (view, dense) = pair(tmp_path / "a", "standard", coarse, levels, on=("n_stable",))
    d = dense.load()
    strip = (d["n_stable"] == 2).values
    assert strip.sum() > 100  # the dense sweep sees the strip
    r2 = np.geomspace(0.45, 2.2, 9)
    assert not ((r2 > 1.0) & (r2 < 1.06)).any()  # no coarse point inside it
    missed = view["n_stable"].values
    assert (missed[strip] == 1).all()  # refined from the coarse grid: missed
    finer = dict(
        coarse, r_2=axis("logspace", 0.45, 2.2, 65), theta=axis("linspace", 1.02, 1.06, 17)
    )
    _, (found,) = pair(tmp_path / "b", "standard", finer, levels - 3, on=("n_stable",), dense=False)
    assert np.array_equal(found["r_2"].values, d["r_2"].values)
    assert_view_equals_dense(found, d, on=("n_stable",))


# ------------------------------------------------------------------ the dynamic map

DYN = {
    "r_1": "3.0",
    "r_2": "1.0",
    "theta_1": "2.0",
    "theta_2": "2.5",
    "g": axis("linspace", 0.001, 0.1, 17),
    "eps": axis("linspace", 0.01, 0.2, 17),
    "T": "100.0",
    "n_time": "21",
}


def test_dynamic_path_feasible_map_equals_dense_on_257_squared(tmp_path):
    """``path_feasible`` (per target, J = 2) over ``g x eps``: 17 x 17 coarse points and
    4 levels against the dense 257 x 257 sweep, at every finest point."""
    spec, (view, dense) = pair(
        tmp_path, "dynamic", DYN, 4, on=("path_feasible",), extra="chunks: {g: 32, eps: 32}"
    )
    assert view.sizes == dense.sizes and view.sizes["g"] == 257
    pf = dense["path_feasible"].values
    assert pf.any() and not pf.all()  # a boundary to follow
    assert_view_equals_dense(view, dense, on=("path_feasible",))
    assert view.attrs["points_computed"] < 0.3 * 257 * 257


# ---------------------------------------------------------------- the store


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A refined coordination cube with several blocks per level (chunks of 16 x 16)."""
    tmp = tmp_path_factory.mktemp("small")
    text = cfg("coordination", BASE, refine_block(levels=4) + "\nchunks: {r_1: 16, theta_1: 16}")
    spec = parse_config(text, output=tmp / "ref.zarr")
    res = run(spec)
    return spec, res, text


def _store_arrays(path: Path, levels: int) -> dict:
    out = {}
    for level in range(levels + 1):
        grp = zarr.open_group(lv.level_dir(path, level), mode="r")
        for name in grp.array_keys():
            out[(level, name)] = np.asarray(grp[name][...])
    return out


def assert_same_store(a: Path, b: Path, levels: int) -> None:
    """Every level's every array, the plans and the marks' digests: equal."""
    x, y = _store_arrays(a, levels), _store_arrays(b, levels)
    assert set(x) == set(y)
    for k in x:
        assert x[k].dtype == y[k].dtype and x[k].tobytes() == y[k].tobytes(), k
    for level in range(levels + 1):
        assert lv.read_plan(a, level) == lv.read_plan(b, level)
        da, db = lv.done_blocks(a, level), lv.done_blocks(b, level)
        assert da == db
        for blk in da:
            ma, mb = lv.read_marker(a, level, blk), lv.read_marker(b, level, blk)
            assert ma["digests"] == mb["digests"] and ma["points"] == mb["points"]
    assert zarr.open_group(a).attrs["complete"] == zarr.open_group(b).attrs["complete"] == 1


def test_the_store_opens_with_plain_xarray_and_as_the_dense_view(small):
    spec, res, _ = small
    path = spec.output
    g = spec.refine.grid
    tree = xr.open_datatree(path, engine="zarr")
    for level in range(g.levels + 1):
        node = tree[f"levels/{level}"]
        assert tuple(node.sizes[d] for d in g.names) == g.shape(level)
        one = xr.open_zarr(path, group=f"levels/{level}")
        np.testing.assert_array_equal(one["r_1"].values, g.coords(level)["r_1"])
        # only the chunks of blocks holding points are written
        n_chunks = len(list((lv.level_dir(path, level) / "regime" / "c").rglob("*")))
        n_files = sum(
            1 for p in (lv.level_dir(path, level) / "regime" / "c").rglob("*") if p.is_file()
        )
        assert n_files == len(lv.read_plan(path, level)["blocks"]) <= n_chunks
    assert res["levels"][-1]["blocks"] < math.prod(math.ceil(n / 16) for n in g.finest_shape)
    ds = open_cube(path)
    assert ds.marshall.refined and ds.marshall.params == ("r_1", "theta_1")
    assert ds.sizes["r_1"] == 129 and ds["level"].dtype == np.int8
    assert (
        ds.attrs["points_computed"]
        == res["points_computed"]
        == sum(x["computed_points"] for x in res["levels"])
    )
    lev = ds["level"].values
    assert lev.min() == 0 and lev.max() == g.levels
    assert int(ds["computed"].sum()) == ds.attrs["points_computed"]
    assert ds.attrs["refine_levels"] == g.levels and ds.attrs["dense_points"] == 129 * 97


def test_a_slice_of_the_view_reads_only_the_slice(small, monkeypatch):
    spec, _, _ = small
    keys = []
    orig = rf.ViewArray.__getitem__

    def spy(self, key):
        keys.append((self.name, key))
        return orig(self, key)

    monkeypatch.setattr(rf.ViewArray, "__getitem__", spy)
    ds = open_cube(spec.output)
    v = ds["regime"].isel(theta_1=40).values
    assert v.shape == (129,)
    assert keys and all(k[1] == 40 for _, k in keys)  # the slice reached the getter


def test_an_incomplete_cube_reads_missing_where_no_level_holds_a_point(tmp_path, small):
    spec, _, text = small
    text = text.replace("chunks: {r_1: 16, theta_1: 16}", "chunks: {r_1: 8, theta_1: 32}")
    part = parse_config(text, output=tmp_path / "p.zarr")
    res = run(part, max_blocks=1)
    assert res["remaining"] > 0 and res["finalized"] is None
    ds = open_cube(part.output).load()
    assert ds.attrs["complete"] == 0
    lev = ds["level"].values
    assert (lev == -1).any() and (lev == 0).any()
    miss = lev == -1
    assert (ds["regime"].values[miss] == -1).all() and not ds["done"].values[miss].any()
    assert np.isnan(ds["wage"].values[miss]).all()
    run(part)  # resumes; smaller blocks, the same points and values
    a, b = open_cube(part.output).load(), open_cube(spec.output).load()
    for v in b.data_vars:
        assert np.array_equal(a[v].values, b[v].values, equal_nan=True), v


def test_queries_claims_plot_and_explore_on_a_refined_cube(small, tmp_path):
    spec, _, _ = small
    path = spec.output
    ds = open_cube(path)
    acc = ds.marshall
    s = acc.summary()
    assert s["points"] == 129 * 97 and s["done"] == ds.attrs["points_computed"]
    # claims are counted on computed points only: the levels' new points, each once
    cl = acc.claims()
    g = spec.refine.grid
    want = np.zeros(len(cl), int)
    for level in range(g.levels + 1):
        grp = zarr.open_group(lv.level_dir(path, level), mode="r")
        new = np.asarray(grp["done"][...])
        if level:  # copies of the level below sit on its (even) sub-lattice
            even = np.zeros(g.shape(level), bool)
            even[::2, ::2] = True
            new &= ~even
        c = np.asarray(grp["claims"][...])[new]
        want += (c >= 0).sum(axis=0)
    assert cl["checked"].tolist() == want.tolist()
    assert acc.count("regime == 'B1+C1'") <= s["done"]
    df = acc.at(r_1=1.0, theta_1=2.0)
    assert df.attrs["done"] and "computed" in df.attrs and df.attrs["level"] >= 0
    runner = CliRunner(env={"COLUMNS": "200"})
    for args in (
        ["query", str(path)],
        ["claims", str(path)],
        ["query", str(path), "--where", "exists['C2']", "--limit", "3"],
        ["query", str(path), "--at", "r_1=3", "--at", "theta_1=1.5"],
    ):
        r = runner.invoke(app, args)
        assert r.exit_code == 0, (args, r.output)
    png = tmp_path / "p.png"
    r = runner.invoke(app, ["plot", str(path), "phase", "-o", str(png)])
    assert r.exit_code == 0 and png.stat().st_size > 1000, r.output
    html = tmp_path / "e.html"
    r = runner.invoke(app, ["explore", str(path), "--html", str(html)])
    assert r.exit_code == 0, r.output
    text = html.read_text()
    assert "bokeh" in text.lower() and len(text) > 100_000


def test_plan_reports_the_expected_points_and_the_dense_equivalent(small, write_config, tmp_path):
    spec, res, text = small
    p = write_config(text)
    r = CliRunner().invoke(app, ["plan", str(p), "-o", str(tmp_path / "new.zarr"), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["dense_points"] == 129 * 97 and out["finest"] == [129, 97]
    assert out["per_level"][0] == 9 * 7 and not out["level0_from_store"]
    # level 1 is predicted exactly (from level 0's marks); the total is an estimate
    assert out["per_level"][1] == res["levels"][1]["computed_points"]
    assert 0.3 < out["expected_points"] / res["points_computed"] < 3
    r = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["plan", str(p), "-o", str(spec.output)])
    assert r.exit_code == 0 and "dense equivalent" in r.output and "expected points" in r.output


# ---------------------------------------------------------- resume, parts, dask


def test_kill_minus_9_during_level_3_of_6_then_resume_bit_for_bit(tmp_path):
    params = {
        "r_1": axis("logspace", 0.25, 8.0, 5),
        "r_2": "1.0",
        "theta_1": axis("linspace", 1.05, 6.0, 5),
        "theta_2": "2.0",
    }
    text = cfg("coordination", params, refine_block(levels=6) + "\nchunks: {r_1: 16, theta_1: 16}")
    ref = parse_config(text, output=tmp_path / "ref.zarr")
    run(ref)
    assert len(lv.read_plan(ref.output, 3)["blocks"]) >= 4
    out = tmp_path / "k.zarr"
    p = tmp_path / "k.yaml"
    p.write_text(text.replace("output: x.zarr", f"output: {out}"))
    proc = subprocess.Popen(
        [MARSHALL, "run", str(p), "--no-progress", "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        t0 = time.monotonic()
        while not lv.done_blocks(out, 3) if out.exists() else True:
            assert proc.poll() is None, "the run ended before level 3"
            assert time.monotonic() - t0 < 120
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    planned = set(lv.read_plan(out, 3)["blocks"])
    done3 = lv.done_blocks(out, 3)
    assert done3 and done3 < planned, "killed during level 3"
    assert lv.read_plan(out, 4) is None
    before = {(lvl, b) for lvl in range(4) for b in lv.done_blocks(out, lvl)}
    log0 = len((out / "_marshall" / "computed.log").read_text().splitlines())
    res = subprocess.run(
        [MARSHALL, "run", str(p), "--no-progress"], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stdout + res.stderr
    again = [
        json.loads(x) for x in (out / "_marshall" / "computed.log").read_text().splitlines()[log0:]
    ]
    assert not {(x["level"], x["block"]) for x in again} & before  # nothing done twice
    assert_same_store(out, ref.output, 6)


def test_parts_side_by_side_and_a_part_alone_adopting_the_others(tmp_path, small):
    spec, _, text = small
    L = spec.refine.grid.levels
    # a part alone: after the grace period it computes the other part's blocks itself
    alone = parse_config(text, output=tmp_path / "alone.zarr")
    res = run(alone, part=(1, 2), part_grace=0.0)
    assert res["finalized"] is None and res["remaining"] == 0
    run(alone)  # finalizes (nothing left to compute)
    assert_same_store(alone.output, spec.output, L)
    # two parts at once, each a process
    out = tmp_path / "two.zarr"
    p = tmp_path / "two.yaml"
    p.write_text(text.replace("output: x.zarr", f"output: {out}"))
    procs = [
        subprocess.Popen(
            [MARSHALL, "run", str(p), "--part", f"{i}/2", "--no-progress"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in (1, 2)
    ]
    outs = [q.communicate(timeout=300)[0] for q in procs]
    assert all(q.returncode == 0 for q in procs), outs
    r = subprocess.run([MARSHALL, "finalize", str(p)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_same_store(out, spec.output, L)
    log = [json.loads(x) for x in (out / "_marshall" / "computed.log").read_text().splitlines()]
    assert len({x["pid"] for x in log}) == 2  # both parts computed blocks


@pytest.mark.slow
def test_blocks_of_a_level_run_on_a_dask_cluster(tmp_path, small):
    spec, _, text = small
    other = parse_config(text, output=tmp_path / "dask.zarr")
    res = run(other, workers=2)
    assert res["finalized"] is not None
    assert_same_store(other.output, spec.output, spec.refine.grid.levels)
    log = [
        json.loads(x)
        for x in (other.output / "_marshall" / "computed.log").read_text().splitlines()
    ]
    assert len({x["pid"] for x in log}) >= 2


def test_verify_finds_damage_and_repair_restores_the_store(tmp_path, small):
    import shutil

    spec, _, text = small
    path = tmp_path / "v.zarr"
    shutil.copytree(spec.output, path)
    runner = CliRunner(env={"COLUMNS": "200"})
    r = runner.invoke(app, ["verify", str(path)])
    assert r.exit_code == 0 and "complete" in r.output, r.output
    chunk_files = sorted(
        p for p in (lv.level_dir(path, 3) / "wage" / "c").rglob("*") if p.is_file()
    )
    chunk_files[0].unlink()  # a lost chunk
    done_files = sorted(p for p in (lv.level_dir(path, 2) / "done" / "c").rglob("*") if p.is_file())
    data = bytearray(done_files[0].read_bytes())
    data[len(data) // 2] ^= 0xFF  # a flipped byte: fails its checksum
    done_files[0].write_bytes(bytes(data))
    with pytest.warns(Warning, match="missing data"):
        open_cube(path)
    r = runner.invoke(app, ["verify", str(path)])
    assert r.exit_code == 1 and "level 3 block" in r.output and "level 2 block" in r.output
    assert "damaged" in r.output, r.output
    r = runner.invoke(app, ["verify", str(path), "--repair"])
    assert r.exit_code == 0, r.output
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        open_cube(path)
    assert_same_store(path, spec.output, spec.refine.grid.levels)


# ------------------------------------------------------------ bisected boundaries


def test_bisected_boundaries_agree_with_the_analytic_ones_coordination(small):
    """``C2`` exists iff ``r_1/r_2 <= theta_1``, ``B1`` beats ``B2`` iff ``r_1/theta_1 >=
    r_2/theta_2`` and ``C1`` iff ``r_1 >= r_2/theta_2``: every bisected point of the
    boundary where that equilibrium's stability changes is on its line to 1e-10."""
    spec, _, _ = small
    ds = open_cube(spec.output)
    bnds = ds.marshall.boundaries("r_1", "theta_1")
    assert {b.equilibrium for b in bnds} == {"C2", "B1+B2", "C1"}
    th2 = 2.0
    for b in bnds:
        pts = np.concatenate(b.segments)
        r1, th1 = pts[:, 0], pts[:, 1]
        rel = {"C2": r1 / th1, "B1+B2": (r1 / th1) / (1.0 / th2), "C1": r1 * th2}[b.equilibrium]
        np.testing.assert_allclose(rel, 1.0, rtol=1e-10, atol=0)
        assert len(b.segments) == 1  # one line, joined across cells
    # the drawn boundary comes from these (the phase figure on a refined cube)
    import matplotlib

    matplotlib.use("Agg")
    from pipeline import figures

    ax = figures.plot_phase(ds, "r_1", "theta_1")
    gids = {line.get_gid() for line in ax.get_lines()}
    assert {f"boundary:{b.name}" for b in bnds} <= gids


def test_bisected_boundary_of_the_standard_model_is_c_equals_theta(tmp_path):
    params = {
        "r_1": "1.0",
        "r_2": axis("logspace", 0.3, 6.0, 9),
        "theta": axis("linspace", 1.2, 5.0, 9),
    }
    _, (ds,) = pair(tmp_path, "standard", params, 3, dense=False)
    bnds = ds.marshall.boundaries("r_2", "theta")
    b1 = [b for b in bnds if b.equilibrium == "B1"]
    assert b1
    for b in b1:
        pts = np.concatenate(b.segments)
        np.testing.assert_allclose(pts[:, 0] / pts[:, 1], 1.0, rtol=1e-10, atol=0)  # c = theta


def test_bisected_boundary_of_the_dynamic_model_is_theta_over_a_hat(tmp_path):
    """The dynamic (*): ``C2`` exists iff ``r_1/r_2 <= theta_1/a_hat``, ``a_hat = 1 -
    g/eps``."""
    params = {
        "r_1": axis("logspace", 0.5, 8.0, 5),
        "r_2": "1.0",
        "theta_1": axis("linspace", 1.05, 4.0, 5),
        "theta_2": "3.0",
        "g": "0.02",
        "eps": "0.05",
        "T": "20.0",
        "n_time": "5",
    }
    _, (ds,) = pair(tmp_path, "dynamic", params, 2, dense=False)
    a_hat = 1 - 0.02 / 0.05
    bnds = [b for b in ds.marshall.boundaries("r_1", "theta_1") if b.equilibrium == "C2"]
    assert bnds
    pts = np.concatenate([s for b in bnds for s in b.segments])
    np.testing.assert_allclose(pts[:, 0] / (pts[:, 1] / a_hat), 1.0, rtol=1e-10, atol=0)


def test_join_segments_chains_cells_into_lines():
    segs = np.array(
        [
            [[0, 0], [1, 0]],
            [[2, 0], [1, 0]],
            [[2, 0], [3, 1]],  # an open line
            [[5, 5], [6, 5]],
            [[6, 5], [6, 6]],
            [[6, 6], [5, 5]],
        ],
        float,
    )  # a loop
    lines = rf.join_segments(segs)
    assert sorted(len(x) for x in lines) == [4, 4]
    open_line = next(x for x in lines if not np.array_equal(x[0], x[-1]))
    assert {tuple(open_line[0]), tuple(open_line[-1])} == {(0.0, 0.0), (3.0, 1.0)}
    loop = next(x for x in lines if np.array_equal(x[0], x[-1]))
    assert len({tuple(p) for p in loop}) == 3


NO_JAX = """
import sys
from pipeline.cli import app
for args in {args!r}:
    try:
        app(args)
    except SystemExit as exc:
        assert exc.code in (0, None), (args, exc.code)
assert "jax" not in sys.modules, sorted(m for m in sys.modules if m.startswith("jax"))[:5]
print("ok")
"""


def test_reading_a_refined_cube_does_not_import_jax(small):
    spec, _, _ = small
    cube = str(spec.output)
    args = [
        ["query", cube],
        ["claims", cube],
        ["query", cube, "--at", "r_1=2", "--at", "theta_1=3"],
        ["verify", cube],
    ]
    res = subprocess.run(
        [sys.executable, "-c", NO_JAX.format(args=args)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-2000:]


def test_a_design_cannot_be_refined():
    text = cfg(
        "coordination",
        {
            "r_1": "{loguniform: [0.25, 4.0]}",
            "r_2": "1.0",
            "theta_1": "{uniform: [1.05, 4.0]}",
            "theta_2": "2.0",
        },
        "design: {sobol: 64, seed: 1}\n" + refine_block(),
    )
    with pytest.raises(ConfigError) as exc:
        parse_config(text)
    assert any(f == "refine" and "design" in m for f, m in exc.value.problems), exc.value.problems
