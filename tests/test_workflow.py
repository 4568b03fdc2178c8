"""The Snakemake workflow for real: `snakemake` on a work directory of configs, a kill
of the whole workflow mid-run, and `--rerun-incomplete` finishing only what was left."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline import open_cube, parse_config, run
from pipeline.run import computed_log
from pipeline.store import done_blocks

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

SMALL = """\
model: standard
params:
  r_1: 1.0
  r_2: {logspace: [0.25, 8.0, 31]}
  theta: {linspace: [1.05, 6.0, 23]}
output: results/cubes/small.zarr
"""
SLOW = """\
model: modes
sectors: 2
params:
  r_1: {logspace: [0.3, 6.0, 24]}
  r_2: 1.0
  beta: 0.5
  alpha: 0.25
  theta_1: {linspace: [1.05, 5.0, 40]}
  theta_2: [1.5, 3.0]
  L_S: [3.0, 100.0]
chunks: {r_1: 3, theta_1: 8, theta_2: 1, L_S: 1}
output: results/cubes/slow.zarr
"""


def snakemake(workdir: Path, *extra: str, **kw):
    env = dict(os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '')}")
    cmd = [
        str(BIN / "snakemake"),
        "-s",
        str(ROOT / "Snakefile"),
        "-d",
        str(workdir),
        "--cores",
        "2",
        *extra,
    ]
    return subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        **kw,
    )


def make_workdir(tmp_path: Path, configs: dict[str, str]) -> Path:
    wd = tmp_path / "wd"
    (wd / "configs").mkdir(parents=True)
    for name, text in configs.items():
        (wd / "configs" / f"{name}.yaml").write_text(text)
    return wd


@pytest.mark.slow
def test_snakemake_kill_and_rerun_incomplete(tmp_path):
    wd = make_workdir(tmp_path, {"small": SMALL, "slow": SLOW})
    store = wd / "results" / "cubes" / "slow.zarr"
    p = snakemake(wd)
    t0 = time.monotonic()
    while not (store.exists() and len(done_blocks(store)) >= 10):
        assert p.poll() is None, p.stdout.read()
        assert time.monotonic() - t0 < 180, "workflow did not start computing"
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)  # the whole workflow: snakemake and its jobs
    p.wait(timeout=30)
    done_at_kill = done_blocks(store)
    log_at_kill = len(computed_log(store))
    assert 0 < len(done_at_kill) < 160  # of 160 blocks

    p = snakemake(wd, "--unlock")  # snakemake's own lock, left by the kill
    assert p.wait(timeout=120) == 0
    p = snakemake(wd, "--rerun-incomplete")
    out, _ = p.communicate(timeout=600)
    assert p.returncode == 0, out
    assert (wd / "results" / "cubes" / "slow.done").read_text().strip().endswith("complete")
    assert (wd / "results" / "cubes" / "small.done").exists()
    # the resume computed each unfinished block once, none of the finished ones
    new = computed_log(store)[log_at_kill:]
    assert sorted(new) == sorted(set(range(160)) - done_at_kill)
    # and the cube is the one an uninterrupted run gives
    ref = parse_config(SLOW.replace("results/cubes/slow.zarr", str(tmp_path / "ref.zarr")))
    run(ref, workers=0)
    a, b = open_cube(store).load(), open_cube(ref.output).load()
    for name in a.data_vars:
        assert np.array_equal(a[name].values, b[name].values, equal_nan=True), name
    assert list((wd / "logs" / "cube").glob("*.log"))
    # nothing left to do
    p = snakemake(wd, "-n")
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 0 and "Nothing to be done" in out, out
    shutil.rmtree(wd / ".snakemake", ignore_errors=True)


def test_snakemake_parts_plan_stages(tmp_path):
    """With MARSHALL_PARTS=N each config becomes init -> N parts -> finalize (dry run)."""
    wd = make_workdir(tmp_path, {"small": SMALL})
    env = dict(os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '')}", MARSHALL_PARTS="3")
    res = subprocess.run(
        [
            str(BIN / "snakemake"),
            "-s",
            str(ROOT / "Snakefile"),
            "-d",
            str(wd),
            "--cores",
            "1",
            "-n",
            "-p",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    for i in (1, 2, 3):
        assert f"--part {i}/3" in out
    assert "marshall init" in out.replace(str(BIN) + "/", "")
    assert "finalize" in out and "results/report.md" in out


SLEEPY = """\
rule all:
    input: "out.txt"

rule out:
    output: "out.txt"
    shell: "test -e go || sleep 120; echo done > {output}"
"""


def test_demo_command_recovers_from_a_killed_run_by_itself(tmp_path):
    """`make demo`'s command (scripts/workflow.py) after a killed Snakemake: the stale
    lock is removed (no Snakemake runs on the directory) and the run proceeds; while a
    Snakemake does run there, it refuses and unlocks nothing."""
    wd = tmp_path / "wd"
    wd.mkdir()
    (wd / "Snakefile").write_text(SLEEPY)
    env = dict(os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '')}")
    workflow = [sys.executable, str(ROOT / "scripts" / "workflow.py"), "--cores", "1",
                "-s", str(wd / "Snakefile"), "-d", str(wd)]  # fmt: skip

    def plain():
        return subprocess.run([str(BIN / "snakemake"), "--cores", "1", "-s", str(wd / "Snakefile"),
                               "-d", str(wd)], env=env, capture_output=True, text=True,
                              timeout=120)  # fmt: skip

    p = subprocess.Popen([str(BIN / "snakemake"), "--cores", "1", "-s", str(wd / "Snakefile")],
                         cwd=wd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)  # fmt: skip
    try:
        locks = wd / ".snakemake" / "locks"
        t0 = time.monotonic()
        while not (locks.is_dir() and any(locks.iterdir())):
            assert p.poll() is None and time.monotonic() - t0 < 120
            time.sleep(0.05)
        # a live Snakemake on the directory (started there, no -d): refused, lock kept
        res = subprocess.run(workflow, env=env, capture_output=True, text=True, timeout=120)
        assert res.returncode == 1 and f"another Snakemake (pid {p.pid})" in res.stderr, res
        assert any(locks.iterdir())
    finally:
        os.killpg(p.pid, signal.SIGKILL)  # killed as `make demo` is by a closed terminal
        p.wait(timeout=30)
    assert any(locks.iterdir())  # the stale lock a killed run leaves
    res = plain()
    assert res.returncode != 0 and "cannot be locked" in res.stdout + res.stderr
    (wd / "go").touch()
    res = subprocess.run(workflow, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "removing the lock a killed Snakemake left" in res.stderr
    assert (wd / "out.txt").read_text().strip() == "done"
    assert (ROOT / "Makefile").read_text().count("scripts/workflow.py") == 1  # make demo's
