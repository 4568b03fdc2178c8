"""Input that reaches marshall from configs and the command line (issue 20): paths are
the ones checked, a config's code is named plainly, numbers read as an economist writes
them, text reaches the terminal inert, sizes are capped where they enter. Each test
failed on the code before its fix."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline import ConfigError, parse_config
from pipeline.cli import app

BIN = Path(sys.executable).parent

STANDARD = """\
model: standard
params:
  r_1: 1.0
  r_2: {logspace: [0.25, 8.0, 7]}
  theta: {linspace: [1.05, 6.0, 5]}
output: OUT
"""


def cli(*args, env=None):
    return CliRunner(env={"COLUMNS": "200", **(env or {})}).invoke(app, [str(a) for a in args])


def problems(text: str, **kw) -> dict[str, str]:
    with pytest.raises(ConfigError) as ei:
        parse_config(text, **kw)
    return dict(ei.value.problems)


# ------------------------------------------------- 3: a config that names code


def test_model_names_are_checked_before_anything_is_imported(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    for bad in ("..evil:MODEL", "a:b:c", "os.:x", ":MODEL", "pkg-name:MODEL", "x:1y"):
        msg = problems(STANDARD.replace("model: standard", f"model: '{bad}'"))["model"]
        assert "dotted Python identifiers" in msg, (bad, msg)
    # a model file with a syntax error, one that raises, one that exits: clear errors
    (tmp_path / "broken_syntax_mod.py").write_text("def (:\n")
    (tmp_path / "raising_mod.py").write_text("raise RuntimeError('no database')\n")
    (tmp_path / "exiting_mod.py").write_text("import sys\nsys.exit(3)\n")
    for mod, what in (
        ("broken_syntax_mod", "SyntaxError"),
        ("raising_mod", "no database"),
        ("exiting_mod", "SystemExit"),
    ):
        msg = problems(STANDARD.replace("model: standard", f"model: {mod}:MODEL"))["model"]
        assert f"importing module {mod!r} failed" in msg and what in msg, msg
        assert "fix that module" in msg
    msg = problems(STANDARD.replace("model: standard", "model: json:dumps"))["model"]
    assert "not a pipeline.Model" in msg and "json:MODEL" in msg


def test_a_modules_import_output_stays_out_of_the_commands_output(tmp_path):
    (tmp_path / "noisy_mod_for_test.py").write_text("print('IMPORTED NOISILY')\nx = 1\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(STANDARD.replace("model: standard", "model: noisy_mod_for_test:x")
                   .replace("OUT", str(tmp_path / "c.zarr")))  # fmt: skip
    res = subprocess.run([str(BIN / "marshall"), "plan", str(cfg), "--json"], capture_output=True,
                         text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=str(tmp_path), COLUMNS="250"))  # fmt: skip
    assert res.returncode == 2
    assert res.stdout == "", res.stdout  # nothing on stdout: the module's print went to stderr
    assert "IMPORTED NOISILY" in res.stderr and "Traceback" not in res.stderr
    assert "model" in res.stderr and "not a pipeline.Model" in res.stderr
    assert not (tmp_path / "c.zarr").exists()


def test_models_and_readme_say_a_config_runs_the_module_it_names():
    r = cli("models")
    assert r.exit_code == 0
    text = " ".join(r.output.split())
    assert "imports (runs) that Python module" in text and "entry points" in text
    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    assert "runs that module" in readme
