"""The store's integrity (issue 20, items 4-6): a chunk read where it was not written, a
coordinate, attribute or array's metadata changed, a killed write's temporary files.
Each test failed on the code before its fix."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import zarr
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


@pytest.mark.parametrize("kind", ["dense", "refined"])
def test_a_chunk_failing_its_checksum_reads_as_missing_with_a_warning(cubes, tmp_path, kind):
    ref = arrays(cubes[kind])
    path = copy(cubes, kind, tmp_path)
    f = chunk_files(var_dir(path, kind, "wage"))[1]
    b = bytearray(f.read_bytes())
    b[len(b) // 2] ^= 0xFF  # the file is whole, its bytes are not
    f.write_bytes(bytes(b))
    with pytest.warns(DamagedCubeWarning, match="CRC-32C"):
        ds = open_cube(path).load()  # no exception in the middle of a computation
    wage = ds.wage.values
    bad = ~np.isclose(wage, ref["wage"], rtol=0, atol=0, equal_nan=True)
    assert bad.any() and np.isnan(wage[bad]).all()  # the chunk reads as not computed
    for name, want in ref.items():
        if name != "wage":
            assert np.array_equal(ds[name].values, want, equal_nan=True), name


def test_marks_record_each_chunks_checksum(cubes):
    from pipeline.store.cube import read_marker

    m = read_marker(cubes["dense"], 0)
    assert set(m["crc32c"]) == set(m["digests"])
    m = lv.read_marker(cubes["refined"], 1, sorted(lv.done_blocks(cubes["refined"], 1))[0])
    assert set(m["crc32c"]) == set(m["digests"])


# ------------------------------------- 5: what gives the values their meaning, restored


def verify_finds(path: Path, *words: str) -> None:
    r = cli("verify", path)
    assert r.exit_code == 1, r.output
    for w in words:
        assert w in r.output, (w, r.output)


def repaired(path: Path, ref: Path) -> None:
    """``verify --repair`` restores the cube: the same arrays, attributes and coordinates
    as the reference, and a second verify (and repair) finds nothing."""
    r = cli("verify", path, "--repair")
    assert r.exit_code == 0, r.output
    for _ in range(2):
        r = cli("verify", path, "--repair")
        assert r.exit_code == 0 and "0 damaged" in r.output, r.output
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a, b = open_cube(path).load(), open_cube(ref).load()
    assert set(a.variables) == set(b.variables)
    for name in b.variables:
        assert np.array_equal(a[name].values, b[name].values, equal_nan=True) or (
            a[name].dtype.kind in "OUT" and list(a[name].values) == list(b[name].values)
        ), name
        assert a[name].attrs == b[name].attrs, name
    skip = {"created", "git_commit", "versions"}
    assert {k: v for k, v in a.attrs.items() if k not in skip} == {
        k: v for k, v in b.attrs.items() if k not in skip
    }


COORDS = [
    ("dense", "r_1"),
    ("dense", "theta_2"),
    ("design", "theta_1"),
    ("design", "sample"),
    ("refined", "r_1"),
]


@pytest.mark.parametrize(("kind", "coord"), COORDS)
def test_a_rewritten_coordinate_is_found_and_restored(cubes, tmp_path, kind, coord):
    path = copy(cubes, kind, tmp_path)
    node = (lv.level_dir(path, 3) if kind == "refined" else path) / coord
    arr = zarr.open_array(node, mode="r+")
    arr[...] = arr[...][::-1]  # every point labelled with another parameter value
    verify_finds(path, f"coordinate {node.relative_to(path)}")
    repaired(path, cubes[kind])


@pytest.mark.parametrize("kind", ["dense", "refined"])
def test_swapped_flag_attributes_are_found_and_restored(cubes, tmp_path, kind):
    path = copy(cubes, kind, tmp_path)
    reg = "regime" if kind == "dense" else "levels/3/regime"
    f = path / reg / "zarr.json"
    doc = json.loads(f.read_text())
    at = doc["attributes"]
    labels = json.loads(at["regime_labels"])
    k = sorted(labels)
    labels[k[0]], labels[k[-1]] = labels[k[-1]], labels[k[0]]
    at["regime_labels"] = json.dumps(labels)
    at["flag_meanings"] = " ".join(reversed(at["flag_meanings"].split()))
    f.write_text(json.dumps(doc))
    zarr.consolidate_metadata(path)  # the swap is what readers see
    verify_finds(path, f"{reg}: attributes flag_meanings, regime_labels differ")
    repaired(path, cubes[kind])


@pytest.mark.parametrize(("kind", "broken"), [(k, False) for k in KINDS] + [("dense", True)])
def test_an_edited_root_config_is_found_and_restored(cubes, tmp_path, kind, broken):
    path = copy(cubes, kind, tmp_path)
    root = zarr.open_group(path, mode="r+")
    text = root.attrs["config"]
    edited = text.replace("4.0", "4.5") if kind == "design" else text.replace("6.0", "6.5")
    if broken:  # not even a config any more
        edited = "model: [\n"
    assert edited != text
    root.attrs["config"] = edited
    zarr.consolidate_metadata(path)
    verify_finds(path, "root attribute config differs")
    repaired(path, cubes[kind])
    assert zarr.open_group(path).attrs["config"] == text


NODES = [("dense", "wage"), ("design", "wage"), ("refined", "levels/2/wage"), ("dense", "r_1")]


@pytest.mark.parametrize(("kind", "node"), NODES)
def test_a_deleted_array_metadata_is_restored_and_never_dropped(cubes, tmp_path, kind, node):
    path = copy(cubes, kind, tmp_path)
    (path / node / "zarr.json").unlink()  # the consolidated copy hides it from readers
    verify_finds(path, f"{node}: zarr.json missing")
    repaired(path, cubes[kind])  # repaired, then verified and repaired again: all there
    assert (path / node / "zarr.json").is_file()


def test_a_damaged_metadata_record_is_reported(cubes, tmp_path):
    path = copy(cubes, "dense", tmp_path)
    rec = path / "_marshall" / "meta.json"
    rec.write_text(rec.read_text().replace('"wage"', '"wage2"'))
    verify_finds(path, "meta.json")


# --------------------------------------------- 6: temporary files of a killed write


def test_temporary_files_of_a_killed_write_are_reported_and_removed(cubes, tmp_path):
    path = copy(cubes, "refined", tmp_path)
    c = lv.level_dir(path, 2) / "done" / "c" / "0"
    ours = [c / f"0.{'ab12' * 8}.partial",  # zarr's, through marshall's writes
            lv.state_dir(path, 1) / "done" / ".3.json.0a1b2c3d.tmp",  # marshall's marks
            lv.level_dir(path, 1) / f"zarr.{'0f' * 16}.partial"]  # fmt: skip
    theirs = [c / "notes.partial", c / f"x.{'ab12' * 8}.partial", path / "keep.tmp"]
    for f in ours + theirs:
        f.write_bytes(b"\x00" * 10)
    verify_finds(path, "3 temporary file(s) left by a killed write")
    r = cli("verify", path, "--repair")
    assert r.exit_code == 0, r.output
    assert not any(f.exists() for f in ours) and all(f.exists() for f in theirs)


def test_a_resumed_run_removes_temporary_files(cubes, tmp_path):
    path = copy(cubes, "dense", tmp_path)
    f = next(p for p in (path / "wage" / "c").rglob("*") if p.is_file())
    tmp = f.with_name(f"{f.name}.{'9' * 32}.partial")
    tmp.write_bytes(f.read_bytes()[:5])
    run(parse_config(DENSE, output=path))
    assert not tmp.exists() and f.exists()


def test_a_cube_written_before_the_record_is_checked_against_its_config(cubes, tmp_path):
    """No ``_marshall/meta.json`` (the previous format): coordinates are checked against
    the config, a missing array's metadata is restored from the consolidated copy."""
    path = copy(cubes, "dense", tmp_path)
    (path / "_marshall" / "meta.json").unlink()
    arr = zarr.open_array(path / "theta_1", mode="r+")
    arr[...] = arr[...] * 2
    (path / "wage" / "zarr.json").unlink()
    verify_finds(path, "coordinate theta_1", "wage: zarr.json missing")
    repaired(path, cubes["dense"])
