"""Nothing lost, nothing wrong without a flag: the defects found by using marshall as a
new user would and by attacking it (each test failed on the code before its fix)."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from typer.testing import CliRunner

from pipeline import ConfigError, open_cube, parse_config, run
from pipeline.cli import app
from pipeline.grid import Plan
from pipeline.store import LockError, StoreError, done_blocks, lock_path, marker, writer_lock
from pipeline.store.read import DamagedCubeWarning

from .cubes import coordination

BIN = Path(sys.executable).parent
MARSHALL = str(BIN / "marshall")

SMALL = """
model: coordination
sectors: 2
params:
  r_1: {logspace: [0.3, 6.0, 24]}
  r_2: 1.0
  theta_1: {linspace: [1.05, 5.0, 20]}
  theta_2: [1.5, 3.0]
chunks: {r_1: 6, theta_1: 5, theta_2: 1}
output: x.zarr
"""


def small(tmp_path, name="c.zarr", text=SMALL):
    return parse_config(text, output=tmp_path / name)


def cli(*args, env=None):
    return CliRunner(env={"COLUMNS": "200", **(env or {})}).invoke(app, [str(a) for a in args])


# ------------------------------------------------------------- 1, 2: data loss


def test_overwrite_never_deletes_a_directory_that_is_not_a_cube(tmp_path):
    docs = tmp_path / "Documents"
    docs.mkdir()
    (docs / "thesis.tex").write_text("precious")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(SMALL.replace("output: x.zarr", f"output: {docs}"))
    for cmd in (["run", cfg, "--overwrite"], ["init", cfg, "--overwrite"], ["run", cfg]):
        r = cli(*cmd)
        assert r.exit_code == 1, r.output
        assert "not a marshall cube" in r.output and "--overwrite" not in r.output
        assert (docs / "thesis.tex").read_text() == "precious"
    assert not lock_path(docs).exists()
    # a file, and a symbolic link to a cube, are refused too
    f = tmp_path / "file.zarr"
    f.write_text("x")
    with pytest.raises(StoreError, match="a file"):
        run(small(tmp_path, "file.zarr"), overwrite=True)
    assert f.read_text() == "x"
    spec = small(tmp_path, "real.zarr")
    run(spec)
    (tmp_path / "link.zarr").symlink_to(tmp_path / "real.zarr")
    with pytest.raises(StoreError, match="symbolic link"):
        run(small(tmp_path, "link.zarr"), overwrite=True)
    assert (tmp_path / "real.zarr" / "zarr.json").is_file()


def test_overwrite_replaces_a_cube_of_another_config_and_resumes_the_same(tmp_path):
    spec = small(tmp_path)
    run(spec)
    again = run(spec, overwrite=True)  # the same config: nothing to replace
    assert again["action"] == "resumed" and again["computed"] == 0
    other = parse_config(SMALL.replace("r_2: 1.0", "r_2: 1.1"), output=spec.output)
    res = run(other, overwrite=True)
    assert res["action"] == "overwritten" and float(open_cube(spec.output).r_2) == 1.1


def test_partial_cleanup_matches_names_literally_and_spares_other_owners(tmp_path):
    """Names with glob characters delete nothing else; a partial of another host or of a
    live process is left alone; only a dead local owner's partial is removed."""
    star = tmp_path / "a*.zarr"
    victim = tmp_path / "abc.zarr.partial-0123"  # matched by the old glob "a*.zarr.partial-*"
    victim.mkdir()
    (victim / "keep").write_text("not marshall's")
    live = tmp_path / "a*.zarr.partial-live"
    live.mkdir()
    (tmp_path / "a*.zarr.partial-live.owner.json").write_text(
        json.dumps({"pid": os.getpid(), "host": socket.gethostname()})
    )
    remote = tmp_path / "a*.zarr.partial-remote"
    remote.mkdir()
    (tmp_path / "a*.zarr.partial-remote.owner.json").write_text(
        json.dumps({"pid": 1, "host": "another-node"})
    )
    dead_pid = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_pid.wait()
    dead = tmp_path / "a*.zarr.partial-dead"
    dead.mkdir()
    (tmp_path / "a*.zarr.partial-dead.owner.json").write_text(
        json.dumps({"pid": dead_pid.pid, "host": socket.gethostname()})
    )
    run(small(tmp_path, star.name))
    assert (victim / "keep").read_text() == "not marshall's"
    assert live.is_dir() and remote.is_dir() and not dead.exists()


# ----------------------------------------------------- 3, 4: silently wrong reads


def _chunk(path: Path, var: str) -> Path:
    files = sorted(p for p in (path / var / "c").rglob("*") if p.is_file())
    return files[len(files) // 2]


@pytest.mark.parametrize("damage", ["delete", "truncate", "flip", "zero", "marker"])
def test_damage_is_found_read_as_missing_and_repaired_bit_for_bit(tmp_path, damage):
    ref_spec = small(tmp_path, "ref.zarr")
    run(ref_spec)
    ref = open_cube(ref_spec.output).load()
    spec = small(tmp_path)
    run(spec)
    c = _chunk(spec.output, "exists")
    if damage == "delete":
        c.unlink()
    elif damage == "truncate":
        c.write_bytes(c.read_bytes()[: len(c.read_bytes()) // 2])
    elif damage == "flip":
        b = bytearray(c.read_bytes())
        b[len(b) // 2] ^= 0xFF
        c.write_bytes(bytes(b))
    elif damage == "zero":  # a valid chunk of other data: only the digest can tell
        arr = zarr.open_array(spec.output / "wage", mode="r+")
        arr[0, 0, 0, 0] = 123.0
    else:
        marker(spec.output, 0).write_text("{")
    r = cli("verify", spec.output)
    assert r.exit_code == 1 and "1 damaged" in r.output, r.output
    if damage == "delete":  # a lost chunk reads as not computed, with a warning
        with pytest.warns(DamagedCubeWarning, match="verify"):
            ds = open_cube(spec.output).load()
        assert not ds.done.values.all() and ds.exists.values[~ds.done.values].sum() == 0
        assert ds.marshall.summary()["done"] < ref.sizes["r_1"] * ref.sizes["theta_1"] * 2
    r = cli("verify", spec.output, "--repair")
    assert r.exit_code == 0, r.output
    ds = open_cube(spec.output).load()
    assert ds.attrs["complete"] == 1
    for v in ref.data_vars:
        assert np.array_equal(ds[v].values, ref[v].values, equal_nan=True), v


def test_a_reader_during_a_run_never_sees_done_over_unwritten_data(tmp_path):
    """open_cube reads done first (one snapshot) and masks the rest by it."""
    spec = small(tmp_path)
    run(spec, max_blocks=3)
    # a block's data is being written: its chunks exist for some variables, done not yet
    # (blocks 0-2 are done: r_1[0:6]; one whose chunk changed would read as damaged)
    zarr.open_array(spec.output / "exists", mode="r+")[6:] = True
    ds = open_cube(spec.output).load()
    done = ds.done.values
    assert done.sum() == 3 * 6 * 5 * 1
    assert not ds.exists.values[~done].any() and np.isnan(ds.wage.values[~done]).all()
    # the order of the plain xarray reader matters; ours does not
    plain = xr.open_zarr(spec.output).load()
    assert plain.exists.values[~plain.done.values].any()  # what a careless reader would see


# ------------------------------------------------------------ 9: values off the grid


def test_values_off_the_grid_are_refused_or_named(tmp_path):
    spec = small(tmp_path)
    run(spec)
    ds = open_cube(spec.output)
    with pytest.raises(ValueError, match=r"r_1=100 is outside the grid .*nearest"):
        ds.marshall.at(r_1=100, theta_1=2, theta_2=1.5)
    df = ds.marshall.at(method="nearest", r_1=100, theta_1=2, theta_2=1.5)
    assert df.attrs["coords"]["r_1"] == 6.0
    df = ds.marshall.at(r_1=2, theta_1=2, theta_2=1.5)
    asked, used = df.attrs["snapped"]["r_1"]
    assert asked == 2 and used != 2 and df.attrs["coords"]["r_1"] == used
    r = cli("query", spec.output, "--at", "r_1=100", "--at", "theta_1=2", "--at", "theta_2=1.5")
    assert r.exit_code == 2 and "outside the grid" in r.output
    r = cli("query", spec.output, "--at", "r_1=2", "--at", "theta_1=2", "--at", "theta_2=1.5")
    assert r.exit_code == 0 and "not on the grid" in r.output
    r = cli("query", spec.output, "--nearest", "--at", "r_1=100", "--at", "theta_1=2",
            "--at", "theta_2=1.5")  # fmt: skip
    assert r.exit_code == 0


# ---------------------------------------------------------------- 10: locks


def test_stale_lock_takeover_is_atomic(tmp_path):
    """Many threads race to take over a dead process's lock: exactly one holds it."""
    store = tmp_path / "s.zarr"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for _ in range(20):
        lock_path(store).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
        holders, barrier = [], threading.Barrier(8)
        lock = threading.Lock()

        def take(barrier=barrier, lock=lock, holders=holders):
            barrier.wait()
            try:
                with writer_lock(store):
                    with lock:
                        holders.append(threading.get_ident())
                    time.sleep(0.05)
                    with lock:
                        assert len(holders) == 1, "two holders of one lock"
                        holders.pop()
            except LockError:
                pass

        # the lock records a pid: threads of one process share it, so each thread
        # sees the others' lock as live (not stale) and backs off
        threads = [threading.Thread(target=take) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not lock_path(store).exists()


def test_lock_files_appear_whole_and_damaged_ones_are_named(tmp_path):
    store = tmp_path / "s.zarr"
    lock_path(store).write_text("")  # left by an older marshall on a full disk
    with pytest.raises(LockError, match="empty.*remove the file"):
        with writer_lock(store):
            pass
    lock_path(store).write_text("garbage{")
    r = cli("run", tmp_path / "cfg.yaml")  # the config does not exist: a config error
    assert r.exit_code == 2
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(SMALL.replace("output: x.zarr", f"output: {store}"))
    r = cli("run", cfg)
    assert r.exit_code == 1 and "not a marshall lock record" in r.output
    assert "pid None" not in r.output
    lock_path(store).unlink()
    with writer_lock(store) as me:  # written at once, whole
        rec = json.loads(lock_path(store).read_text())
        assert rec["pid"] == os.getpid() and rec["token"] == me["token"] and rec["pid_start"]


# ------------------------------------------------------------ 11, 12: sizes


def test_huge_grids_count_in_python_integers(tmp_path):
    text = """
model: coordination
sectors: 2
params:
  r_1: {logspace: [0.3, 6.0, 65536]}
  r_2: {logspace: [0.3, 6.0, 65536]}
  theta_1: {linspace: [1.05, 5.0, 65536]}
  theta_2: {linspace: [1.05, 5.0, 65536]}
output: x.zarr
"""
    with pytest.raises(ConfigError, match=r"1\.84e\+19 points; at most"):
        parse_config(text)
    big = """
model: coordination
sectors: 2
params:
  r_1: {logspace: [0.3, 6.0, 100000]}
  r_2: 1.0
  theta_1: {linspace: [1.05, 5.0, 100000]}
  theta_2: [1.5, 3.0]
output: OUT
"""
    spec = parse_config(big, output=tmp_path / "b.zarr")
    assert spec.n_points == 2 * 10**10 and Plan.of(spec).n_blocks > 0
    r = cli("run", _write(tmp_path, big.replace("OUT", str(tmp_path / "b.zarr"))))
    assert r.exit_code == 1 and "would write up to" in r.output and "TB" in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]
    tiny_chunks = big.replace("output: OUT", "chunks: {r_1: 1, theta_1: 1}\noutput: OUT")
    with pytest.raises(ConfigError, match=r"blocks; at most 1,000,000: give larger chunks"):
        parse_config(tiny_chunks)


def _write(tmp_path, text, name="c.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_disk_check_counts_what_remains_as_stored(tmp_path):
    from pipeline.run import check_disk, stored_bytes

    spec = small(tmp_path)
    run(spec, max_blocks=len(list(Plan.of(spec).blocks())) - 1)
    one = stored_bytes(spec, 1)
    du = sum(f.stat().st_blocks * 512 for f in spec.output.rglob("*") if f.is_file())
    per_block = du / len(done_blocks(spec.output))
    assert one >= 0.9 * per_block  # the estimate covers what a block takes on disk
    check_disk(spec)  # one block left: fits
    all_blocks = stored_bytes(spec, Plan.of(spec).n_blocks)
    assert all_blocks == one * Plan.of(spec).n_blocks


# -------------------------------------------- 14: errors a user should never see


def test_os_errors_name_the_real_cause(tmp_path):
    """A place the user cannot write (here /sys, read-only even for root) is named as
    such, never as "free space and run again"."""
    r = cli(
        "run", _write(tmp_path, SMALL.replace("output: x.zarr", "output: /sys/marshall/c.zarr"))
    )
    assert r.exit_code == 1, r.output
    assert "read-only" in r.output or "not writable" in r.output
    assert "free space" not in r.output and "Traceback" not in r.output


def test_bad_outputs_are_clear_errors(tmp_path):
    (tmp_path / "afile").write_text("x")
    cases = {
        f"{tmp_path}/afile/c.zarr": "is a file, not a directory",
        "/etc": "not a marshall cube",
        "''": "must name the cube's path",
    }
    for out, msg in cases.items():
        r = cli("run", _write(tmp_path, SMALL.replace("output: x.zarr", f"output: {out}")))
        assert r.exit_code in (1, 2) and msg in r.output, (out, r.output)
    assert not Path("/etc.lock").exists()
    dangling = tmp_path / "dangling.zarr"
    dangling.symlink_to(tmp_path / "nowhere")
    r = cli("run", _write(tmp_path, SMALL.replace("output: x.zarr", f"output: {dangling}")))
    assert r.exit_code == 1 and "symbolic link" in r.output


def test_plot_and_report_to_unwritable_places(tmp_path):
    spec = small(tmp_path)
    run(spec)
    (tmp_path / "afile").write_text("x")
    r = cli("plot", spec.output, "phase", "--at", "theta_2=1.5", "-o", tmp_path / "afile" / "p.png")
    assert r.exit_code != 0 and "Traceback" not in r.output and "not a directory" in r.output
    r = cli("report", tmp_path, "-o", tmp_path / "afile" / "r.md")
    assert r.exit_code != 0 and "Traceback" not in r.output
    one = parse_config(SMALL.replace("theta_2: [1.5, 3.0]", "theta_2: 2.0").replace(
        "{linspace: [1.05, 5.0, 20]}", "1.5").replace(", theta_1: 5, theta_2: 1", ""),
        output=tmp_path / "one.zarr")  # fmt: skip
    run(one)
    r = cli("plot", one.output, "phase", "-o", tmp_path / "x.png")
    assert r.exit_code == 2 and "needs two swept dimensions" in r.output


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["in-process", "cluster"])
def test_ctrl_c_says_how_to_resume(tmp_path, workers):
    cfg = _write(tmp_path, SMALL.replace("output: x.zarr", f"output: {tmp_path / 'i.zarr'}")
                 .replace("24]", "240]"))  # fmt: skip
    p = subprocess.Popen([MARSHALL, "run", str(cfg), "--no-progress", *workers],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    t0 = time.monotonic()
    while not done_blocks(tmp_path / "i.zarr") and time.monotonic() - t0 < 60:
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    out, errs = p.communicate(timeout=60)
    assert p.returncode == 130, errs
    assert "interrupted after" in errs and "run the same command to resume" in errs
    assert "Traceback" not in errs and "terminate called" not in errs
    assert len(errs.splitlines()) <= 3
    assert not lock_path(tmp_path / "i.zarr").exists()
    res = run(parse_config(cfg.read_text()))
    assert res["action"] == "resumed" and res["remaining"] == 0


# ------------------------------------------------------------- 15: config gaps


def test_config_gaps_are_reported_at_once(tmp_path):
    cases = [
        ("r_2: 1.0", "r_2: true", "params.r_2", "must be a number"),
        ("theta_2: [1.5, 3.0]", "theta_2: [1.5, true]", "params.theta_2", "must be numbers"),
    ]
    for old, new, field, msg in cases:
        with pytest.raises(ConfigError) as exc:
            parse_config(SMALL.replace(old, new))
        assert any(f == field and msg in m for f, m in exc.value.problems), exc.value.problems
    with pytest.raises(ConfigError, match="duplicate key 'r_2'"):
        parse_config(SMALL.replace("r_2: 1.0", "r_2: 1.0\n  r_2: 2.0"))
    four = (SMALL.replace("r_2: 1.0", "r_2: -1").replace("theta_2: [1.5, 3.0]", "theta_2: 0.5")
            .replace("sectors: 2", "sectors: 2\nbogus: 1") + "  \n")  # fmt: skip
    four = four.replace("chunks: {r_1: 6, theta_1: 5, theta_2: 1}", "chunks: {zeta: 3}")
    with pytest.raises(ConfigError) as exc:
        parse_config(four)
    fields = {f for f, _ in exc.value.problems}
    assert {"bogus"} <= fields or {"params.r_2", "params.theta_2", "chunks.zeta"} <= fields
    # a key with rich markup characters is printed as written
    cfg = _write(tmp_path, SMALL.replace("r_2: 1.0", "r_2: 1.0\n  '[/]': 2"))
    r = cli("run", cfg)
    assert r.exit_code == 2 and "params.[/]" in r.output
    deep = "a: " + "[" * 5000 + "]" * 5000
    with pytest.raises(ConfigError):
        parse_config(deep)
    spec = parse_config(SMALL.replace("theta_2: [1.5, 3.0]", "theta_2: [1.5]"))
    assert any("axis of one value" in n for n in spec.notes)


def test_every_problem_in_one_pass():
    text = SMALL.replace("r_2: 1.0", "r_2: -1").replace("theta_2: [1.5, 3.0]", "theta_2: 0.5")
    text = text.replace("theta_1: {linspace: [1.05, 5.0, 20]}", "theta_1: {linspace: [5, 1, 3]}")
    text = text.replace("chunks: {r_1: 6, theta_1: 5, theta_2: 1}", "chunks: {zeta: 3}")
    with pytest.raises(ConfigError) as exc:
        parse_config(text)
    fields = {f for f, _ in exc.value.problems}
    assert {"params.r_2", "params.theta_2", "params.theta_1", "chunks.zeta"} <= fields


# ---------------------------------------------------------- 18: cubes leave marshall


def test_a_cube_exports_to_netcdf_with_cf_attributes(tmp_path):
    from .cubes import DYNAMIC

    for text in (SMALL, DYNAMIC.replace("n_time: 41", "n_time: 5")):
        spec = parse_config(text, output=tmp_path / "n.zarr")
        run(spec, overwrite=True)
        ds = open_cube(spec.output).load()
        nc = tmp_path / "n.nc"
        ds.to_netcdf(nc, engine="h5netcdf")
        back = xr.open_dataset(nc, engine="h5netcdf")
        assert set(back.data_vars) == set(ds.data_vars)
        assert "rank" not in ds.data_vars and "wage_rank" in ds.data_vars
        assert ds.best.attrs["flag_values"][0] == -1
        for name, c in ds.coords.items():
            if "symbol" in c.attrs:  # a parameter: its sector is named, never "j"
                assert " sector j" not in c.attrs["long_name"], name
                assert "{j}" not in c.attrs["long_name"] + c.attrs["symbol"], name
        if "T" in ds.coords:
            assert ds["T"].attrs["units"] == "year" and ds["T"].attrs["long_name"] != "T"
        back.close()


# ------------------------------------------------------- 20, 21: a user's loop


def test_default_run_is_in_process(tmp_path, monkeypatch):
    prun = sys.modules["pipeline.run"]
    monkeypatch.setattr(prun, "_local_cluster", lambda *a: pytest.fail("started a cluster"))
    spec = small(tmp_path)
    res = run(spec)
    assert res["remaining"] == 0


def test_progress_counts_points_and_query_table_options(tmp_path):
    spec = small(tmp_path)
    cfg = _write(tmp_path, SMALL.replace("output: x.zarr", f"output: {spec.output}"))
    r = subprocess.run([MARSHALL, "run", str(cfg)], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, COLUMNS="200"))  # fmt: skip
    assert r.returncode == 0 and "960/960 points" in r.stdout, r.stdout
    r = cli("query", spec.output, "--where", "exists['C2']", "--limit", "-1")
    assert r.exit_code == 2 and "--limit must be >= 0" in r.output
    ds = open_cube(spec.output)
    n = ds.marshall.count("exists['C2']")
    r = cli("query", spec.output, "--where", "exists['C2']", "--limit", "0", "--format", "csv")
    lines = r.output.strip().splitlines()
    assert len(lines) == n + 1 and "best_wage" in lines[0] and "r_1" in lines[0]
    r = cli("query", spec.output, "--at", "r_1=2", "--at", "theta_1=2", "--at", "theta_2=1.5",
            "-f", "csv")  # fmt: skip
    head = r.output.splitlines()[0].split(",")
    assert head[:4] == ["r_1", "theta_1", "theta_2", "r_2"] and "wage" in head


def test_standard_income_gap_default_varies(tmp_path):
    """The standard model's default income-gap map is of C2 (B1's wage is r_1, a
    constant over the demo's slice)."""
    from pipeline import figures
    from pipeline.models import get

    assert get("standard").income_gap == "C2"
    from .cubes import standard

    spec = parse_config(standard(9, 7), output=tmp_path / "s.zarr")
    run(spec)
    ax = figures.plot_kind(open_cube(spec.output), "income-gap")
    assert "C_{2}" in ax.get_title() or "C2" in ax.get_title()


def test_demo_after_editing_a_config_recomputes_just_that_cube(tmp_path):
    """The workflow passes --overwrite: an edited config replaces its own cube, an
    unchanged one resumes (nothing recomputed)."""
    text = (Path(__file__).resolve().parents[1] / "Snakefile").read_text()
    assert "--overwrite" in text
    cfg = _write(
        tmp_path, coordination(9, 7).replace("output: x.zarr", f"output: {tmp_path / 'w.zarr'}")
    )
    assert cli("run", cfg, "--overwrite", "--no-progress").exit_code == 0
    r = cli("run", cfg, "--overwrite", "--no-progress")
    assert "resumed: computed 0 blocks" in r.output
    cfg.write_text(cfg.read_text().replace("r_2: 1.0", "r_2: 1.25"))
    r = cli("run", cfg, "--overwrite", "--no-progress")
    assert r.exit_code == 0 and "overwritten" in r.output
    assert math.isclose(float(open_cube(tmp_path / "w.zarr").r_2), 1.25)


def test_help_is_fast_and_says_the_version():
    t0 = time.perf_counter()
    r = subprocess.run([MARSHALL, "--help"], capture_output=True, text=True, timeout=60)
    dt = time.perf_counter() - t0
    assert r.returncode == 0 and "sensitivity" in r.stdout
    r = subprocess.run([MARSHALL, "--version"], capture_output=True, text=True, timeout=60)
    assert r.stdout.startswith("marshall 0.")
    del dt  # timed in the closing note, not asserted (a slow CI must not fail)


def test_shutil_and_nothing_else_left_behind(tmp_path):
    spec = small(tmp_path)
    run(spec)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["c.zarr"], left
    shutil.rmtree(spec.output)
