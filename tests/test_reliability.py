"""Nothing lost: kills, a dead worker, a separate dask scheduler, a full disk.

These start real processes (the ``marshall`` CLI, dask scheduler and workers) and
kill them with SIGKILL; each compares the final cube with an uninterrupted run, bit
for bit.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from pipeline import open_cube, parse_config, run
from pipeline.grid import Plan
from pipeline.run import computed_log
from pipeline.store import StoreError, done_blocks

BIN = Path(sys.executable).parent
MARSHALL = str(BIN / "marshall")

# many small blocks, so a run lasts a few seconds and kills land mid-run
CFG = """\
model: modes
sectors: 2
params:
  r_1: {{logspace: [0.3, 6.0, 60]}}
  r_2: 1.0
  beta: 0.5
  alpha: 0.25
  theta_1: {{linspace: [1.05, 5.0, 40]}}
  theta_2: [1.5, 3.0]
  L_S: [3.0, 100.0]
chunks: {{r_1: 6, theta_1: 8, theta_2: 1, L_S: 1}}
output: {out}
"""
N_BLOCKS = 10 * 5 * 2 * 2


def write_cfg(tmp_path: Path, out: Path, name="c.yaml", text=CFG) -> Path:
    p = tmp_path / name
    p.write_text(text.format(out=out))
    return p


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("ref")
    spec = parse_config(CFG.format(out=d / "ref.zarr"))
    assert Plan.of(spec).n_blocks == N_BLOCKS
    run(spec, workers=0)
    return open_cube(spec.output).load()


def assert_same_cube(path: Path, ref) -> None:
    ds = open_cube(path).load()
    assert ds.attrs["complete"] == 1
    for name in ref.data_vars:
        assert np.array_equal(ds[name].values, ref[name].values, equal_nan=True), name
    for name in ref.coords:
        assert np.array_equal(ds[name].values, ref[name].values), name


def env() -> dict:
    e = dict(os.environ)
    e["PATH"] = f"{BIN}:{e.get('PATH', '')}"
    return e


def start(cmd: list[str], **kw) -> subprocess.Popen:
    return subprocess.Popen(
        cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw
    )


def wait_for(cond, timeout: float, what: str) -> None:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
def test_kill_driver_at_random_moments_then_resume(tmp_path, reference):
    """SIGKILL the run at seeded random moments (from start-up and store creation to
    mid-run), resume each time: the cube equals an uninterrupted run, bit for bit, and
    no block finished before a kill is computed again."""
    out = tmp_path / "k.zarr"
    cfg = write_cfg(tmp_path, out)
    rng = np.random.default_rng(20261123)
    delays = sorted(rng.uniform(0.2, 4.0, 4))
    kills = 0
    for delay in delays:
        before_done = done_blocks(out)
        before_log = len(computed_log(out))
        p = start([MARSHALL, "run", str(cfg), "--workers", "0", "--no-progress"])
        time.sleep(delay)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.wait(timeout=60)
        # whatever the moment: either no store, or a valid one (never a half template)
        if out.exists():
            assert (out / "zarr.json").is_file() and (out / "_marshall" / "done").is_dir()
        new = computed_log(out)[before_log:]
        assert not set(new) & before_done, "a finished block was computed again"
    assert kills >= 2
    done_before = done_blocks(out)
    log_before = len(computed_log(out))
    res = subprocess.run(
        [MARSHALL, "run", str(cfg), "--workers", "0", "--no-progress"],
        env=env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    new = computed_log(out)[log_before:]
    assert sorted(new) == sorted(set(range(N_BLOCKS)) - done_before)  # each missing block once
    assert not list(tmp_path.glob("k.zarr.partial-*")) and not (tmp_path / "k.zarr.lock").exists()
    assert_same_cube(out, reference)


def test_killed_store_creation_leaves_nothing_half_made(tmp_path, reference):
    """A creation killed before its rename leaves only a temporary sibling with its
    owner's record beside it; the next run removes it (its owner, on this host, is
    dead); the store appears whole or not at all."""
    out = tmp_path / "c.zarr"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    partial = tmp_path / "c.zarr.partial-deadbeef0000"
    (partial / "wage").mkdir(parents=True)
    (partial / "zarr.json").write_text("{")  # torn
    record = tmp_path / "c.zarr.partial-deadbeef0000.owner.json"
    record.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    spec = parse_config(CFG.format(out=out))
    run(spec, workers=0)
    assert not partial.exists() and not record.exists()
    assert_same_cube(out, reference)


def _descendants_running_worker(pid: int) -> list[psutil.Process]:
    procs = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            cmd = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if "multiprocessing" in cmd and not child.children():
            procs.append(child)
    return procs


@pytest.mark.slow
def test_killed_worker_is_retried(tmp_path, reference):
    out = tmp_path / "w.zarr"
    cfg = write_cfg(tmp_path, out)
    p = start([MARSHALL, "run", str(cfg), "--workers", "2", "--no-progress"])
    try:
        wait_for(lambda: len(done_blocks(out)) >= 5 if out.exists() else False, 120, "first blocks")
        workers = _descendants_running_worker(p.pid)
        assert workers, "no dask worker process found"
        done_before = done_blocks(out)
        workers[0].send_signal(signal.SIGKILL)
        log_at_kill = len(computed_log(out))
        text, _ = p.communicate(timeout=300)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, text
    assert_same_cube(out, reference)
    # a retried task skips the blocks it had finished; no finished block runs again
    again = set(computed_log(out)[log_at_kill:]) & done_before
    assert not again, f"finished blocks computed again after the worker died: {sorted(again)}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_separate_scheduler_and_workers_on_loopback(tmp_path, reference):
    """`dask scheduler` + two `dask worker` processes, `marshall run --scheduler`."""
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    procs = [
        start(
            [
                str(BIN / "dask"),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-dashboard",
            ]
        )
    ]
    try:
        for i in range(2):
            procs.append(
                start(
                    [
                        str(BIN / "dask"),
                        "worker",
                        addr,
                        "--nthreads",
                        "1",
                        "--no-dashboard",
                        "--name",
                        f"w{i}",
                        "--host",
                        "127.0.0.1",
                    ]
                )
            )
        from dask.distributed import Client

        with Client(addr, timeout="30s") as c:
            c.wait_for_workers(2, timeout=60)
            worker_pids = set(c.run(os.getpid).values())
        out = tmp_path / "s.zarr"
        cfg = write_cfg(tmp_path, out)
        res = subprocess.run(
            [MARSHALL, "run", str(cfg), "--scheduler", addr, "--no-progress"],
            env=env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert res.returncode == 0, res.stdout + res.stderr
        pids = {
            json.loads(x)["pid"]
            for x in (out / "_marshall" / "computed.log").read_text().splitlines()
        }
        assert pids <= worker_pids and len(pids) == 2
        assert_same_cube(out, reference)
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=30)


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.slow
def test_disk_full_during_a_run_then_resume(tmp_path, small_disk, reference):
    out = small_disk / "d.zarr"
    cfg = write_cfg(tmp_path, out)
    filler = small_disk / "filler.bin"
    p = start([MARSHALL, "run", str(cfg), "--workers", "0", "--no-progress"])
    try:
        wait_for(lambda: out.exists() and len(done_blocks(out)) >= 3, 120, "first blocks")
        with open(filler, "wb") as fh:  # another program eats the disk mid-run
            with pytest.raises(OSError):
                while True:
                    fh.write(b"\0" * 2**20)
                    fh.flush()
        text, _ = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 1, text
    assert "No space left on device" in text and "resume" in text
    assert len(done_blocks(out)) < N_BLOCKS
    # every block marked done is whole (no truncated chunk behind a marker)
    ds = open_cube(out)
    spec = parse_config(CFG.format(out=out))
    plan = Plan.of(spec)
    for b in done_blocks(out):
        assert bool(ds.done.isel(dict(zip(spec.dims, plan.region(b)))).all())
    filler.unlink()
    res = subprocess.run(
        [MARSHALL, "run", str(cfg), "--workers", "0", "--no-progress"],
        env=env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert_same_cube(out, reference)


def test_sweep_too_large_for_the_disk_is_refused_with_its_size(tmp_path):
    text = (
        CFG.replace("{{logspace: [0.3, 6.0, 60]}}", "{{logspace: [0.3, 6.0, 1000000]}}")
        .replace("{{linspace: [1.05, 5.0, 40]}}", "{{linspace: [1.05, 5.0, 50000]}}")
        .replace("chunks: {{r_1: 6, theta_1: 8, theta_2: 1, L_S: 1}}", "")
    )
    cfg = write_cfg(tmp_path, tmp_path / "huge.zarr", text=text)
    res = subprocess.run(
        [MARSHALL, "run", str(cfg), "--workers", "0"],
        env=env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 1
    assert "would write up to" in res.stdout + res.stderr and "TB" in res.stdout + res.stderr
    assert sorted(x.name for x in tmp_path.iterdir()) == ["c.yaml"]
    with pytest.raises(StoreError, match="free"):
        run(parse_config(text.format(out=tmp_path / "huge.zarr")), workers=0)


def test_parts_run_side_by_side_then_finalize(tmp_path, reference):
    """Part i of n (one cluster job each) computes disjoint blocks; parts may run at
    once, a whole-store run may not run beside them."""
    out = tmp_path / "p.zarr"
    cfg = write_cfg(tmp_path, out)
    procs = [
        start([MARSHALL, "run", str(cfg), "--workers", "0", "--part", f"{i}/3", "--no-progress"])
        for i in (1, 2, 3)
    ]
    texts = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), texts
    assert sorted(computed_log(out)) == list(range(N_BLOCKS))
    assert open_cube(out).attrs["complete"] == 0
    res = subprocess.run(
        [MARSHALL, "finalize", str(cfg)], env=env(), capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert_same_cube(out, reference)


def test_whole_run_refused_while_a_part_runs(tmp_path):
    from pipeline.store import writer_lock

    out = tmp_path / "x.zarr"
    with writer_lock(out, (1, 2)):
        with writer_lock(out, (2, 2)):  # another part of the same split: fine
            pass
        with pytest.raises(StoreError, match="another run"):
            with writer_lock(out):
                pass
        with pytest.raises(StoreError, match="another run"):
            with writer_lock(out, (1, 3)):  # a different split overlaps
                pass
    with writer_lock(out):
        pass
    assert not list(tmp_path.iterdir())
