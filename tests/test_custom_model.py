"""An out-of-tree model: examples/custom_model.py, copied outside the repository and
named in a config as ``custom_model:MODEL``, gets the whole pipeline (plan, run, verify,
query, claims, plot, report) with nothing added to the package."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .conftest import ROOT

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    d = tmp_path_factory.mktemp("elsewhere")
    for f in ("custom_model.py", "custom_model.yaml"):
        shutil.copy(ROOT / "examples" / f, d / f)
    text = (d / "custom_model.yaml").read_text().replace("61]", "31]").replace("41]", "21]")
    (d / "custom_model.yaml").write_text(text)
    return d


def marshall(d: Path, *args, ok=True):
    env = dict(os.environ, PYTHONPATH=str(d))
    res = subprocess.run([str(BIN / "marshall"), *map(str, args)], cwd=d, env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    if ok:
        assert res.returncode == 0, res.stdout + res.stderr
    return res


def test_out_of_tree_model_end_to_end(outside):
    d = outside
    assert not (d / "pipeline").exists()  # the package is imported, not copied
    r = marshall(d, "plan", "custom_model.yaml")
    assert "651 " in r.stdout or "651" in r.stdout  # 31 x 21 points
    marshall(d, "run", "custom_model.yaml", "--no-progress")
    cube = d / "results" / "cubes" / "custom_model.zarr"
    r = marshall(d, "verify", cube)
    assert "complete" in r.stdout
    r = marshall(d, "query", cube, "--at", "a=0.8", "--at", "b=1", "--format", "json")
    out = json.loads(r.stdout)
    eq = {e["equilibrium"]: e for e in out["equilibria"]}
    a, b = out["coords"]["a"], out["coords"]["b"]
    w0 = 1.0
    # closed forms: O iff a <= w0, K iff w0 <= a (1 + b), X strictly between
    assert eq["O"]["exists"] == (a <= w0) and eq["K"]["exists"] == (w0 <= a * (1 + b))
    assert eq["X"]["exists"] == (a < w0 < a * (1 + b)) and not eq["X"]["stable"]
    if eq["K"]["exists"]:
        np.testing.assert_allclose(eq["K"]["wage"], a * (1 + b), rtol=1e-15)
    r = marshall(d, "claims", cube)
    assert "FAILS" not in r.stdout
    marshall(d, "plot", cube, "phase", "-o", d / "phase.png")
    assert (d / "phase.png").stat().st_size > 5000
    r = marshall(d, "report", d / "results", "-o", d / "report.md")
    assert "custom_model" in (d / "report.md").read_text()
    # the whole grid against the closed forms, in Python, from outside too
    code = (
        "import numpy as np, pipeline\n"
        f"ds = pipeline.open_cube({str(cube)!r}).load()\n"
        "a, b = ds.a, ds.b\n"
        "ex = ds.exists\n"
        "assert ((ex.sel(equilibrium='O') == (a <= 1.0)) | ds.knife_edge).all()\n"
        "assert ((ex.sel(equilibrium='K') == (1.0 <= a * (1 + b))) | ds.knife_edge).all()\n"
        "two = (a < 1.0) & (1.0 < a * (1 + b))\n"
        "assert (((ds.n_stable == 2) == two) | ds.knife_edge).all()\n"
        "bs = ds.marshall.boundaries('a', 'b')\n"
        "assert {x.name for x in bs} == {'O: a = w0', 'K: a (1 + b) = w0'}, bs\n"
        "print('ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=d, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(d)), timeout=120)  # fmt: skip
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr


def test_unimportable_model_is_a_clear_config_error(outside, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text((outside / "custom_model.yaml").read_text())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    res = subprocess.run([str(BIN / "marshall"), "plan", str(cfg)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    assert res.returncode == 2
    assert "cannot import module 'custom_model'" in res.stderr and "PYTHONPATH" in res.stderr
