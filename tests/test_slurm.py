"""Dask workers as SLURM jobs (:mod:`pipeline.cluster`).

The first tests need no SLURM: they check the generated job script, the settings and
``lifetime`` with fake ``sbatch``/``scancel`` on PATH, so nothing can reach a real
cluster. Tests marked ``slurm`` run sweeps on a real SLURM cluster and skip unless
``sinfo`` answers with an idle node; on one machine (root):

    scripts/slurm_local.sh --install start      # one-node cluster on 127.0.0.1
    .venv/bin/python -m pytest -q tests/test_slurm.py -m slurm
    scripts/slurm_local.sh stop

Jobs run on the cluster's nodes, so ``tmp_path`` (outputs, logs) must be on a file
system they share with this process (true for the one-node cluster).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from pipeline import open_cube, parse_config, run
from pipeline.cluster import lifetime, slurm_cluster
from pipeline.grid import Plan

CFG = """\
name: {name}
model: coordination
sectors: 2
description: "SLURM test"
params:
  r_1: {{logspace: [0.5, 4.0, 17]}}
  r_2: 1.0
  theta_1: {{linspace: [1.1, 3.0, 11]}}
  theta_2: 2.0
chunks: {{r_1: 4, theta_1: 4}}
output: {out}
"""
# the scheduler runs in this process; workers reach it on loopback (one-node cluster)
SCHED = {"host": "127.0.0.1", "dashboard_address": ":0"}


def spec_for(tmp_path, name: str, out: str = "cube.zarr"):
    return parse_config(CFG.format(name=name, out=tmp_path / out))


def worker_lines(script: str) -> list[str]:
    return [ln for ln in script.splitlines() if "distributed.cli.dask_worker" in ln]


# ------------------------------------------------------------- without SLURM


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """Fake sbatch/scancel/squeue first on PATH: they record what they get, submit nothing."""
    pytest.importorskip("dask_jobqueue", reason="needs dask-jobqueue (pip install -e '.[cluster]')")
    bin_ = tmp_path / "fakebin"
    bin_.mkdir()
    rec = tmp_path / "fake-slurm"
    rec.mkdir()
    # the job id is the fake sbatch's pid: unique among concurrent submissions
    sbatch = f'#!/bin/sh\ncp "$1" "{rec}/job-$$.sh" && echo "Submitted batch job $$"\n'
    (bin_ / "sbatch").write_text(sbatch)
    (bin_ / "scancel").write_text(f'#!/bin/sh\necho "$@" >> "{rec}/scancel.log"\n')
    (bin_ / "squeue").write_text("#!/bin/sh\nexit 0\n")
    for f in bin_.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")
    for k in ("QUEUE", "ACCOUNT", "WALLTIME", "MEMORY", "CORES"):
        monkeypatch.delenv(f"MARSHALL_SLURM_{k}", raising=False)
    return rec


def test_job_script_one_worker_per_job_with_float64(tmp_path, fake_slurm):
    spec = spec_for(tmp_path, "scripted")
    c = slurm_cluster(
        spec,
        jobs=3,
        queue="short",
        account="proj42",
        walltime="02:30:00",
        memory="6GB",
        cores=3,
        adapt=True,
        scheduler_options=SCHED,
        log_directory=str(tmp_path / "slurm-logs"),
    )
    try:
        s = c.job_script()
    finally:
        c.close()
    head = [ln for ln in s.splitlines() if ln.startswith("#SBATCH")]
    assert "#SBATCH -J marshall-scripted" in head
    assert "#SBATCH -p short" in head and "#SBATCH -A proj42" in head
    assert "#SBATCH -t 02:30:00" in head
    assert "#SBATCH -n 1" in head and "#SBATCH --cpus-per-task=3" in head
    assert any(ln.startswith("#SBATCH --mem=") for ln in head)
    assert f"#SBATCH -o {tmp_path / 'slurm-logs'}/marshall-scripted-%J.out" in head
    assert "export JAX_ENABLE_X64=1" in s.splitlines()
    # no device chosen: the job computes where JAX's default backend is (its GPU, if any)
    assert not any("JAX_PLATFORMS" in ln or "MARSHALL_DEVICE" in ln for ln in s.splitlines())
    # one worker process per job, using all the job's cores as threads
    (cmd,) = worker_lines(s)
    assert "--nthreads 3" in cmd and "--nworkers" not in cmd and "--nprocs" not in cmd
    assert cmd.split()[0] == sys.executable
    assert "--lifetime 145m" in cmd and "--lifetime-stagger" in cmd
    assert "tcp://127.0.0.1:" in cmd


def test_settings_from_environment_and_keywords_win(tmp_path, fake_slurm, monkeypatch):
    monkeypatch.setenv("MARSHALL_SLURM_QUEUE", "envq")
    monkeypatch.setenv("MARSHALL_SLURM_WALLTIME", "00:20:00")
    monkeypatch.setenv("MARSHALL_SLURM_MEMORY", "3GB")
    monkeypatch.setenv("MARSHALL_SLURM_CORES", "2")
    c = slurm_cluster(None, jobs=1, scheduler_options=SCHED, log_directory=str(tmp_path / "logs"))
    try:
        s = c.job_script()
    finally:
        c.close()
    assert "#SBATCH -p envq" in s and "#SBATCH -t 00:20:00" in s and "#SBATCH -J marshall" in s
    assert "--cpus-per-task=2" in s and "--lifetime 15m" in s and "-A " not in s
    c = slurm_cluster(
        None,
        jobs=1,
        queue="kwq",
        cores=1,
        scheduler_options=SCHED,
        log_directory=str(tmp_path / "logs"),
    )
    try:
        s = c.job_script()
    finally:
        c.close()
    assert "#SBATCH -p kwq" in s and "--cpus-per-task=1" in s and "#SBATCH -t 00:20:00" in s


def test_fixed_jobs_submit_one_script_each_and_close_cancels_them(tmp_path, fake_slurm):
    """adapt=False submits ``jobs`` jobs at once; closing the cluster cancels every one."""
    c = slurm_cluster(
        spec_for(tmp_path, "fixed"),
        jobs=2,
        queue="q",
        walltime="00:30:00",
        memory="2GB",
        cores=1,
        adapt=False,
        scheduler_options=SCHED,
        log_directory=str(tmp_path / "logs"),
    )
    try:
        deadline = time.monotonic() + 30
        while len(list(fake_slurm.glob("job-*.sh"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        c.close()
    scripts = sorted(fake_slurm.glob("job-*.sh"))
    assert len(scripts) == 2
    for f in scripts:
        assert len(worker_lines(f.read_text())) == 1
    cancelled = (fake_slurm / "scancel.log").read_text().split()
    assert sorted(cancelled) == sorted(f.stem.split("-")[1] for f in scripts)


@pytest.mark.parametrize(
    ("walltime", "expect"),
    [
        ("01:00:00", "55m"),
        ("00:10:00", "5m"),
        ("02:30:00", "145m"),
        ("12:00:00", "715m"),
        ("30:00", "25m"),  # SLURM minutes:seconds
        ("00:05:30", "1m"),  # never below a minute
        ("00:03:00", "1m"),
    ],
)
def test_lifetime(walltime, expect):
    assert lifetime(walltime) == expect


@pytest.mark.parametrize(
    ("walltime", "expect"),
    [
        pytest.param("90", "85m", id="minutes-only"),  # sbatch -t 90 is 90 minutes
        pytest.param("1-00:00:00", "1435m", id="days-hh:mm:ss"),
        pytest.param("2-12", "3595m", id="days-hours"),
        pytest.param("0-01:30", "85m", id="days-hh:mm"),
    ],
)
def test_lifetime_other_slurm_formats(walltime, expect):
    assert lifetime(walltime) == expect


@pytest.mark.parametrize("bad", ["", "1h", "01:00:00:00", "1-", "-5", "1:x"])
def test_lifetime_rejects_what_slurm_would(bad):
    with pytest.raises(ValueError, match="SLURM time"):
        lifetime(bad)


def test_lifetime_leaves_room_for_the_stagger():
    """lifetime + stagger (2m) must end before the wall time, so no worker is killed."""
    for wall_min in (10, 30, 60, 120, 24 * 60):
        wt = f"{wall_min // 60:02d}:{wall_min % 60:02d}:00"
        assert int(lifetime(wt)[:-1]) + 2 < wall_min


# ------------------------------------------------------------ with real SLURM


def _slurm_conf_env() -> dict:
    """Environment for SLURM clients: SLURM_CONF as given, else the local cluster's."""
    env = dict(os.environ)
    if "SLURM_CONF" not in env and not Path("/etc/slurm/slurm.conf").exists():
        local = Path(os.environ.get("SLURM_LOCAL_DIR", "/tmp/marshall-slurm")) / "slurm.conf"
        if local.exists():
            env["SLURM_CONF"] = str(local)
    return env


def _sh(*cmd, env=None, timeout=20) -> subprocess.CompletedProcess:
    return subprocess.run(
        list(cmd), capture_output=True, text=True, timeout=timeout, env=env or _slurm_conf_env()
    )


@pytest.fixture(scope="module")
def slurm_partition():
    """The partition to use (MARSHALL_SLURM_QUEUE or the default one) if SLURM has an idle
    node there; skips otherwise. Sets SLURM_CONF for the module when it had to find it."""
    for tool in ("sinfo", "squeue", "sbatch", "scancel"):
        if shutil.which(tool) is None:
            pytest.skip(f"no SLURM here ({tool} not on PATH); see scripts/slurm_local.sh")
    env = _slurm_conf_env()
    try:
        r = _sh("sinfo", "-h", "-o", "%P %t %D", env=env)
    except subprocess.TimeoutExpired:
        pytest.skip("sinfo did not answer within 20 s")
    if r.returncode != 0:
        pytest.skip(f"sinfo failed (no SLURM controller?): {r.stderr.strip()[:200]}")
    rows = [ln.split() for ln in r.stdout.splitlines() if ln.strip()]
    want = os.environ.get("MARSHALL_SLURM_QUEUE")
    if want is None:
        default = [p for p, *_ in rows if p.endswith("*")]
        want = (default or [rows[0][0] if rows else ""])[0]
    want = want.rstrip("*")
    if not any(p.rstrip("*") == want and s.startswith(("idle", "mix")) for p, s, _ in rows):
        pytest.skip(f"no idle SLURM node in partition {want!r}: {r.stdout.strip()[:200]}")
    mp = pytest.MonkeyPatch()
    if "SLURM_CONF" in env:
        mp.setenv("SLURM_CONF", env["SLURM_CONF"])
    yield want
    mp.undo()


def _jobcomp_file() -> Path | None:
    r = _sh("scontrol", "show", "config")
    m = re.search(r"^JobCompLoc\s*=\s*(\S+)", r.stdout, re.M)
    t = re.search(r"^JobCompType\s*=\s*(\S+)", r.stdout, re.M)
    if m and t and t.group(1) == "jobcomp/filetxt":
        return Path(m.group(1))
    return None


def _jobs_named(name: str) -> list[str]:
    r = _sh("squeue", "-h", "-n", name, "-o", "%i")
    return r.stdout.split()


def _cancel_and_wait(name: str, timeout: float = 60) -> list[str]:
    """scancel every job called ``name``; the ids still queued after ``timeout`` s."""
    _sh("scancel", "-n", name)
    deadline = time.monotonic() + timeout
    while (left := _jobs_named(name)) and time.monotonic() < deadline:
        time.sleep(1)
    return left


def _ended_job_ids(name: str, timeout: float = 30) -> set[str] | None:
    """Ids of ended jobs called ``name`` per the job completion log (None: no such log)."""
    jc = _jobcomp_file()
    if jc is None:
        return None
    deadline = time.monotonic() + timeout
    while True:
        text = jc.read_text() if jc.exists() else ""
        ids = set(re.findall(rf"JobId=(\d+) .*?Name={re.escape(name)} ", text))
        if ids or time.monotonic() > deadline:
            return ids
        time.sleep(1)


def _assert_same_cube(a_path, b_path):
    a, b = open_cube(a_path).load(), open_cube(b_path).load()
    assert list(a.data_vars) == list(b.data_vars)
    for name in a.data_vars:
        assert np.array_equal(a[name].values, b[name].values, equal_nan=True), name


@pytest.mark.slurm
@pytest.mark.timeout(420)
def test_sweep_on_two_slurm_jobs_matches_single_process(tmp_path, slurm_partition):
    """Two SLURM jobs, one worker each, compute the blocks; the cube is the
    single-process cube bit for bit."""
    from dask.distributed import Client

    name = f"t{uuid.uuid4().hex[:8]}"
    job_name = f"marshall-{name}"
    ref = spec_for(tmp_path, name, "single.zarr")
    spec = spec_for(tmp_path, name, "slurm.zarr")
    assert Plan.of(spec).n_blocks >= 8
    run(ref, workers=0)
    logs = tmp_path / "slurm-logs"
    # adapt=False: both jobs at once (an adaptive cluster would not grow for so small a
    # sweep; the CLI test below runs adaptively)
    cluster = slurm_cluster(
        spec,
        jobs=2,
        queue=slurm_partition,
        walltime="00:10:00",
        memory="2GB",
        cores=1,
        adapt=False,
        scheduler_options=SCHED,
        log_directory=str(logs),
    )
    try:
        with Client(cluster, timeout="30s") as client:
            client.wait_for_workers(2, timeout=180)  # submitted, started, connected
            env = client.run(
                lambda: (
                    {"pid": os.getpid()}
                    | {
                        k: os.environ.get(k)
                        for k in ("SLURM_JOB_ID", "SLURM_JOB_NAME", "JAX_ENABLE_X64")
                    }
                )
            )
            res = run(spec, cluster=cluster)
    finally:
        cluster.close()
        left = _cancel_and_wait(job_name)
    assert not left, f"jobs still queued after cancel: {left}"
    assert res["computed"] == Plan.of(spec).n_blocks and res["remaining"] == 0
    # the workers were two SLURM jobs of this cluster, with float64 on
    assert all(
        e["SLURM_JOB_NAME"] == job_name and e["JAX_ENABLE_X64"] == "1" for e in env.values()
    ), env
    job_of_pid = {e["pid"]: e["SLURM_JOB_ID"] for e in env.values()}
    assert len(set(job_of_pid.values())) == 2 and None not in job_of_pid.values(), env
    # every block was computed in those workers, and both jobs computed some
    pids = [
        json.loads(x)["pid"]
        for x in (spec.output / "_marshall" / "computed.log").read_text().splitlines()
    ]
    assert set(pids) <= set(job_of_pid), (set(pids), job_of_pid)
    assert len(set(pids)) == 2
    # each job wrote its log where asked; SLURM recorded the ended jobs
    for jid in job_of_pid.values():
        assert (logs / f"{job_name}-{jid}.err").exists(), sorted(p.name for p in logs.iterdir())
    ended = _ended_job_ids(job_name)
    if ended is not None:
        assert set(job_of_pid.values()) <= ended, (job_of_pid, ended)
    _assert_same_cube(ref.output, spec.output)


@pytest.mark.slurm
@pytest.mark.timeout(420)
def test_cli_run_cluster_slurm(tmp_path, slurm_partition):
    """``marshall run CONFIG --cluster slurm --jobs 2``, settings from MARSHALL_SLURM_*;
    the CLI's jobs are gone when it exits."""
    name = f"c{uuid.uuid4().hex[:8]}"
    job_name = f"marshall-{name}"
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(CFG.format(name=name, out=tmp_path / "cli.zarr"))
    ref = spec_for(tmp_path, name, "single.zarr")
    run(ref, workers=0)
    exe = Path(sys.executable).with_name("marshall")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "pipeline.cli"]
    env = _slurm_conf_env() | {
        "MARSHALL_SLURM_QUEUE": slurm_partition,
        "MARSHALL_SLURM_WALLTIME": "00:10:00",
        "MARSHALL_SLURM_MEMORY": "2GB",
        "MARSHALL_SLURM_CORES": "1",
        # the CLI has no option for the scheduler's address: dask's config does it
        "DASK_JOBQUEUE__SLURM__SCHEDULER_OPTIONS": repr(SCHED),
    }
    try:
        r = subprocess.run(
            cmd + ["run", str(cfg), "--cluster", "slurm", "--jobs", "2", "--no-progress"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        assert "computed" in r.stdout and "regimes:" in r.stdout, r.stdout
        # no job outlives the CLI (dask closes the cluster at exit)
        deadline = time.monotonic() + 60
        while (left := _jobs_named(job_name)) and time.monotonic() < deadline:
            time.sleep(1)
        assert not left, f"jobs left running after the CLI exited: {left}"
    finally:
        _cancel_and_wait(job_name)
    logs = tmp_path / "logs" / "slurm"  # the default log_directory, relative to the cwd
    errs = sorted(logs.glob(f"{job_name}-*.err"))
    assert errs, "no SLURM job logs: did the workers run as SLURM jobs?"
    assert any("Registered to" in f.read_text() for f in errs)
    ended = _ended_job_ids(job_name)
    if ended is not None:
        assert {f.stem.rsplit("-", 1)[1] for f in errs} <= ended
    _assert_same_cube(ref.output, tmp_path / "cli.zarr")


@pytest.mark.slurm
@pytest.mark.timeout(600)
def test_snakemake_slurm_profile_parts(tmp_path, slurm_partition):
    """``snakemake --profile profiles/slurm`` with MARSHALL_PARTS=2: init, two parts and
    finalize run as SLURM jobs; the cube is the single-process cube bit for bit."""
    root = Path(__file__).resolve().parents[1]
    bindir = Path(sys.executable).parent
    if not (bindir / "snakemake").exists():
        pytest.skip("snakemake not installed beside this Python")
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="pip install -e '.[cluster]'")
    name = f"s{uuid.uuid4().hex[:8]}"
    wd = tmp_path / "wd"
    (wd / "configs").mkdir(parents=True)
    (wd / "configs" / f"{name}.yaml").write_text(
        CFG.format(name=name, out=f"results/cubes/{name}.zarr")
    )
    ref = spec_for(tmp_path, name, "single.zarr")
    run(ref, workers=0)
    small = "mem_mb=1000 runtime=10 cpus_per_task=1"
    cmd = [
        str(bindir / "snakemake"),
        "-s", str(root / "Snakefile"),
        "-d", str(wd),
        "--profile", str(root / "profiles" / "slurm"),
        # a test cluster without accounting: squeue for status, no account
        "--slurm-status-command", "squeue",
        "--slurm-init-seconds-before-status-checks", "5",
        "--slurm-no-account",
        "--default-resources", f"slurm_partition={slurm_partition}", *small.split(),
        "--set-resources", "cube_part:cpus_per_task=1", "cube_part:runtime=10",
        "--jobs", "4",
        f"results/cubes/{name}.done",
    ]  # fmt: skip
    env = _slurm_conf_env() | {
        "PATH": f"{bindir}:{os.environ.get('PATH', '')}",
        "MARSHALL_PARTS": "2",
    }
    r = subprocess.run(cmd, cwd=wd, env=env, capture_output=True, text=True, timeout=540)
    log = r.stdout + r.stderr
    assert r.returncode == 0, log[-4000:]
    assert len(re.findall(r"submitted with SLURM jobid", log)) == 4, log[-4000:]
    for rule in ("cube_init", "cube_part", "cube"):
        assert f"rule {rule}:" in log
    _assert_same_cube(ref.output, wd / "results" / "cubes" / f"{name}.zarr")
