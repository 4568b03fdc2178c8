"""``marshall query | claims | plot | report`` through the typer app (CliRunner)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import zarr
from typer.testing import CliRunner

import pipeline.query  # noqa: F401
from pipeline import open_cube, parse_config, run
from pipeline.cli import app

from .conftest import ROOT
from .cubes import INCREASING, as_written, coordination, standard

SMALL = coordination(33, 21)
STANDARD = standard(25, 20)

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A results directory: cubes/{small, standard}.zarr (and the paper's J = 2 config)."""
    root = tmp_path_factory.mktemp("results")
    for name, text in (("small", SMALL), ("standard", STANDARD)):
        run(parse_config(text, output=root / "cubes" / f"{name}.zarr"), workers=0)
    return root


@pytest.fixture(scope="module")
def small(results):
    return results / "cubes" / "small.zarr"


def stdout_json(res):
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


# ------------------------------------------------------------------------ query


def test_query_summary(small):
    res = invoke("query", small)
    assert res.exit_code == 0, res.output
    ds = open_cube(small)
    for name in ds.marshall.regime_names().values():
        assert name in res.stdout
    assert "r_1" in res.stdout and "theta_2" in res.stdout
    out = stdout_json(invoke("query", small, "--summary", "--format", "json"))
    share = ds.marshall.regime_share()
    assert out["regime_share"] == pytest.approx(share.to_dict())
    assert out["done"] == out["points"] == 33 * 21 * 2 and out["model"] == "coordination"


def test_query_summary_where_csv(small):
    res = invoke("query", small, "--where", "theta_2 == 2", "--summary", "-f", "csv")
    assert res.exit_code == 0, res.output
    df = pd.read_csv(io.StringIO(res.stdout), index_col=0)
    ds = open_cube(small)
    expected = ds.marshall.regime_share(by="theta_2").loc[2.0]
    for name, v in df["share"].items():
        assert v == pytest.approx(expected[name])
    assert df["points"].sum() == 33 * 21


def test_query_at(small):
    res = invoke("query", small, "--at", "r_1=2", "--at", "theta_1=3.0,theta_2=2")
    assert res.exit_code == 0, res.output
    assert "regime" in res.stdout and "C1" in res.stdout
    out = stdout_json(invoke("query", small, "--at", "r_1=2,theta_1=3,theta_2=2", "-f", "json"))
    ds = open_cube(small)
    pt = ds.isel(ds.marshall.indexers({"r_1": 2, "theta_1": 3, "theta_2": 2}))
    assert out["coords"]["r_1"] == float(pt.r_1) and out["coords"]["r_2"] == 1.0
    eq = {e["equilibrium"]: e for e in out["equilibria"]}
    for i, lab in enumerate(ds.equilibrium.values):
        assert eq[lab]["exists"] == bool(pt.exists.values[i])
        w = pt.wage.values[i]
        assert (eq[lab]["wage"] is None) if np.isnan(w) else eq[lab]["wage"] == w


def test_query_where_points(small):
    expr = "exists['C2'] and not exists['B2'] and theta_1 < 2"
    res = invoke("query", small, "--where", expr, "--limit", "5", "-f", "csv")
    assert res.exit_code == 0, res.output
    df = pd.read_csv(io.StringIO(res.stdout))
    assert len(df) == 5 and list(df.columns[:3]) == ["r_1", "theta_1", "theta_2"]
    ds = open_cube(small)
    out = stdout_json(invoke("query", small, "--where", expr, "-f", "json"))
    direct = ds.exists.sel(equilibrium="C2") & ~ds.exists.sel(equilibrium="B2") & (ds.theta_1 < 2)
    assert out["matches"] == int(direct.sum()) and out["computed"] == ds.done.size
    res = invoke("query", small, "--where", expr)
    assert f"{int(direct.sum()):,} of" in res.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--at", "r_1"], "expected NAME=VALUE"),
        (["--at", "r_1=abc"], "is not a number"),
        (["--at", "r_1=2"], "left over: theta_1"),
        (["--at", "r_1=2,theta_1=2,theta_2=2,lam_1S=1"], "unknown dimension 'lam_1S'"),
        (["--where", "__import__('os')"], "unknown function '__import__'"),
        (["--where", "exists"], "still varies over"),
        (["--where", "r_1 > 1", "--at", "r_1=1"], "not both"),
    ],
)
def test_query_errors(small, args, message):
    res = invoke("query", small, *args)
    assert res.exit_code == 2
    assert message in " ".join(res.stderr.split())


def test_missing_cube(tmp_path):
    for cmd in (["query"], ["claims"], ["plot", "--output", tmp_path / "x.png"]):
        args = [cmd[0], tmp_path / "nope.zarr"] + (["phase"] + cmd[1:] if cmd[0] == "plot" else [])
        res = invoke(*args)
        assert res.exit_code == 2 and "no marshall cube" in res.stderr


# ----------------------------------------------------------------------- claims


def test_claims_pass_on_paper_config(tmp_path):
    spec = parse_config(
        (ROOT / "configs" / "coordination_j2.yaml").read_text(), output=tmp_path / "c2.zarr"
    )
    run(spec, workers=0)
    res = invoke("claims", spec.output)
    assert res.exit_code == 0, res.output
    assert "holds" in res.stdout and "FAILS" not in res.stdout
    out = stdout_json(invoke("claims", spec.output, "-f", "json"))
    assert out["ok"] and all(c["checked"] > 0 and c["failed"] == 0 for c in out["claims"])


def test_claims_fail_nonzero_on_edited_cube(small, tmp_path):
    """The claims are theorems where their assumptions hold, so no config can make one fail
    there; the failing cube is a copy whose stored claim '2' is set to failed at one point."""
    path = tmp_path / "edited.zarr"
    shutil.copytree(small, path)
    arr = zarr.open_group(path, mode="r+")["claims"]
    idx = np.argwhere(arr[:, :, :, 1] == 1)[0]
    arr[tuple(idx) + (1,)] = 0
    as_written(path)
    res = invoke("claims", path)
    assert res.exit_code == 1
    assert "FAILS" in res.stdout and "claim 2 fails at 1 points" in res.stdout
    ds = open_cube(small)
    assert f"r_1 = {ds.r_1.values[idx[0]]:.6g}" in res.stdout
    assert "claims failing where their assumptions hold: 2" in " ".join(res.stderr.split())
    out = json.loads(invoke("claims", path, "-f", "json").stdout)
    assert not out["ok"]


def test_claims_outside_assumptions_not_applicable(tmp_path):
    spec = parse_config(INCREASING, output=tmp_path / "incr.zarr")
    run(spec, workers=0)
    res = invoke("claims", spec.output)
    assert res.exit_code == 0, res.output
    assert "not applicable" in res.stdout
    assert "no computed point satisfies the claims' assumptions" in " ".join(res.stdout.split())


# ------------------------------------------------------------------------- plot


@pytest.mark.parametrize(
    ("kind", "extra", "name"),
    [
        ("phase", ["--x", "r_1", "--y", "theta_1", "--at", "theta_2=2"], "phase.png"),
        ("phase", ["--at", "theta_2=1.5"], "phase.svg"),
        ("welfare", ["--x", "theta_1", "--y", "r_1", "--at", "theta_2=2"], "welfare.pdf"),
        ("income-gap", ["--at", "theta_2=2", "--equilibrium", "C2"], "gap.png"),
    ],
)
def test_plot_kinds(small, tmp_path, kind, extra, name):
    out = tmp_path / "figs" / name
    res = invoke("plot", small, kind, *extra, "-o", out)
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > 2000


def test_plot_ppf_and_paths(results, tmp_path):
    out = tmp_path / "ppf.png"
    res = invoke("plot", results / "cubes" / "standard.zarr", "ppf", "-o", out)
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > 2000 and "fixed at the middle" in res.stderr
    res = invoke("plot", results / "cubes" / "small.zarr", "paths", "-o", out)
    assert res.exit_code == 2 and "no transition paths" in res.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["phase", "--x", "r_1", "--y", "theta"], "unknown dimension 'theta'"),
        (
            ["phase", "--x", "r_1", "--y", "theta_1", "--at", "theta_2=2", "--at", "r_1=1"],
            "plotted axis",
        ),
        (["income-gap", "--at", "theta_2=2", "--equilibrium", "D"], "unknown equilibrium 'D'"),
        (["ppf"], "model 'standard'"),
    ],
)
def test_plot_errors(small, tmp_path, args, message):
    res = invoke("plot", small, *args, "-o", tmp_path / "x.png")
    assert res.exit_code == 2
    assert message in " ".join(res.stderr.split())
    assert not (tmp_path / "x.png").exists()


def test_plot_bad_suffix_and_kind(small, tmp_path):
    res = invoke("plot", small, "phase", "--at", "theta_2=2", "-o", tmp_path / "x.jpg")
    assert res.exit_code == 2 and "unknown image format '.jpg'" in res.stderr
    res = invoke("plot", small, "contour", "-o", tmp_path / "x.png")
    assert res.exit_code == 2


# ----------------------------------------------------------------------- report


def test_report(results, tmp_path):
    figs = results / "figures" / "small"
    res = invoke(
        "plot",
        results / "cubes" / "small.zarr",
        "phase",
        "--at",
        "theta_2=2",
        "-o",
        figs / "phase.png",
    )
    assert res.exit_code == 0, res.output
    out = results / "report.md"
    res = invoke("report", results, "-o", out)
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert "## small" in text and "## standard" in text
    assert "![small: phase](figures/small/phase.png)" in text
    ds = open_cube(results / "cubes" / "small.zarr")
    for name, v in ds.marshall.regime_share().items():
        assert f"| {name} | {v:.2%} |" in text
    assert "| B1 and C1 exist; no Bj with j > 1 exists |" in text.replace("| 1 | ", "| ")
    assert "FAIL" not in text
    # a failing claim shows up in the report
    bad = results / "cubes" / "bad.zarr"
    shutil.copytree(results / "cubes" / "small.zarr", bad)
    arr = zarr.open_group(bad, mode="r+")["claims"]
    idx = np.argwhere(arr[:, :, :, 0] == 1)[0]
    arr[tuple(idx) + (0,)] = 0
    as_written(bad)
    invoke("report", results, "-o", tmp_path / "r.md")
    text = (tmp_path / "r.md").read_text()
    assert "**FAILS** at r_1 = " in text and "## bad" in text
    shutil.rmtree(bad)
    res = invoke("report", tmp_path / "nothing", "-o", tmp_path / "r.md")
    assert res.exit_code == 2


@pytest.mark.slow
def test_snakefile_has_figures_and_report_rules():
    snakemake = shutil.which("snakemake", path=str(ROOT / ".venv" / "bin")) or str(
        ROOT / ".venv" / "bin" / "snakemake"
    )
    res = subprocess.run(
        [
            snakemake,
            "-n",
            "-F",
            "--nolock",
            "--cores",
            "1",
            "--snakefile",
            "Snakefile",
            "--directory",
            str(ROOT),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(
            os.environ,
            PATH=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            PYTHONPATH=str(ROOT),
        ),
    )
    if res.returncode != 0 and "No module named" in res.stderr:  # pragma: no cover
        pytest.skip("snakemake cannot import pipeline here")
    assert res.returncode == 0, res.stderr
    # one `marshall figures` job per cube draws its model's figures into its folder
    assert "results/figures/standard" in res.stdout
    assert "results/figures/coordination_j2" in res.stdout
    assert "marshall figures" in res.stdout or "rule figures" in res.stdout
    assert "results/report.md" in res.stdout
