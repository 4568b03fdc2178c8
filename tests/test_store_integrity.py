"""The store's integrity (issue 20, items 4-6): a chunk read where it was not written, a
coordinate, attribute or array's metadata changed, a killed write's temporary files.
Each test failed on the code before its fix."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pipeline import open_cube, parse_config, run
from pipeline.cli import app
from pipeline.store import levels as lv
from pipeline.store.read import DamagedCubeWarning

DENSE = """
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

REFINED = """
model: coordination
sectors: 2
params:
  r_1: {logspace: [0.25, 8.0, 9]}
  r_2: 1.0
  theta_1: {linspace: [1.05, 6.0, 7]}
  theta_2: 2.0
refine: {on: [regime, best], levels: 3}
chunks: {r_1: 8, theta_1: 8}
output: x.zarr
"""

DESIGN = """
model: coordination
sectors: 2
design: {saltelli: 64, seed: 3}
params:
  r_1: {loguniform: [0.25, 4.0]}
  r_2: {loguniform: [0.25, 4.0]}
  theta_1: {uniform: [1.05, 4.0]}
  theta_2: {uniform: [1.05, 4.0]}
chunks: {sample: 128}
output: x.zarr
"""

KINDS = {"dense": DENSE, "refined": REFINED, "design": DESIGN}


def cli(*args):
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def cubes(tmp_path_factory):
    """One finished cube of each kind, copied by each test before damaging it."""
    tmp = tmp_path_factory.mktemp("ref")
    out = {}
    for kind, text in KINDS.items():
        spec = parse_config(text, output=tmp / f"{kind}.zarr")
        run(spec)
        out[kind] = spec.output
    return out


def copy(cubes, kind: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{kind}.zarr"
    shutil.copytree(cubes[kind], path)
    return path


def var_dir(path: Path, kind: str, var: str) -> Path:
    """The directory of ``var`` (a refined cube: its finest level's)."""
    if kind == "refined":
        return lv.level_dir(path, 3) / var
    return path / var


def chunk_files(vdir: Path) -> list[Path]:
    return sorted(p for p in (vdir / "c").rglob("*") if p.is_file())


def arrays(path: Path) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an intact cube opens without a warning
        ds = open_cube(path).load()
    return {str(k): v.values for k, v in ds.data_vars.items()}


# ----------------------------------------------------- 4: a chunk read where it was not


@pytest.mark.parametrize("kind", list(KINDS))
def test_swapped_chunks_read_as_missing_never_as_data(cubes, tmp_path, kind):
    ref = arrays(cubes[kind])
    path = copy(cubes, kind, tmp_path)
    files = chunk_files(var_dir(path, kind, "wage"))
    a, b = next((x, y) for x in files for y in files if x.read_bytes() != y.read_bytes())
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db)  # each a valid chunk, with a valid CRC-32C, in the other's place
    b.write_bytes(da)
    with pytest.warns(DamagedCubeWarning, match="verify"):
        ds = open_cube(path).load()
    if kind == "refined":  # the two blocks read as not held: coarser levels stand in
        done = ds.level.values == ref["level"]
        assert not done.all() and (ds.level.values[~done] < 3).all()
    else:  # the two blocks read as not computed
        done = ds.done.values
        assert not done.all() and np.isnan(ds.wage.values[~done]).all()
    # everything that reads as done is what was written, bit for bit
    for name, want in ref.items():
        got = ds[name].values
        if got.shape[: done.ndim] == done.shape:
            assert np.array_equal(got[done], want[done], equal_nan=True), name
    r = cli("verify", path)
    assert r.exit_code == 1 and "2 damaged" in r.output, r.output
    r = cli("verify", path, "--repair")
    assert r.exit_code == 0, r.output
    got = arrays(path)
    for name, want in ref.items():
        assert np.array_equal(got[name], want, equal_nan=True), name


def test_a_chunk_from_another_cube_at_the_same_place_reads_as_missing(cubes, tmp_path):
    path = copy(cubes, "dense", tmp_path)
    other = parse_config(DENSE.replace("theta_2: [1.5, 3.0]", "theta_2: [1.5, 2.5]"),
                         output=tmp_path / "other.zarr")  # fmt: skip
    run(other)
    mine, theirs = chunk_files(path / "wage"), chunk_files(other.output / "wage")
    i = next(i for i, (x, y) in enumerate(zip(mine, theirs)) if x.read_bytes() != y.read_bytes())
    mine[i].write_bytes(theirs[i].read_bytes())
    with pytest.warns(DamagedCubeWarning):
        ds = open_cube(path).load()
    assert (~ds.done.values).sum() == 6 * 5


def test_marks_record_each_chunks_checksum(cubes):
    from pipeline.store.cube import read_marker

    m = read_marker(cubes["dense"], 0)
    assert set(m["crc32c"]) == set(m["digests"])
    m = lv.read_marker(cubes["refined"], 1, sorted(lv.done_blocks(cubes["refined"], 1))[0])
    assert set(m["crc32c"]) == set(m["digests"])
