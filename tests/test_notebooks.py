"""Every notebook runs top to bottom (nbclient) and is stored without outputs."""

from __future__ import annotations

import importlib.util
import os
import time

import nbformat
import pytest

from .conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
NEEDS = {"04_dynamics_transition.ipynb": "pipeline.models.dynamic"}


def test_notebooks_present_and_stored_without_outputs():
    names = {p.name for p in NOTEBOOKS}
    assert {
        "01_standard_model_and_fig1.ipynb",
        "02_modes_condition_star.ipynb",
        "03_coordination_J_sectors.ipynb",
        "04_dynamics_transition.ipynb",
        "05_querying_a_cube.ipynb",
    } <= names
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name
                for line in cell.source.splitlines():  # imports from pipeline only (+ stdlib,
                    if line.startswith(("import ", "from ")):  # numpy, matplotlib)
                        mod = line.split()[1].split(".")[0]
                        assert mod in {"pipeline", "numpy", "matplotlib", "tempfile", "pathlib"}, (
                            path.name,
                            line,
                        )
        assert any(c.cell_type == "markdown" for c in nb.cells)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    need = NEEDS.get(path.name)
    if need and importlib.util.find_spec(need) is None:
        pytest.skip(f"{need} is not available")
    nb = nbformat.read(path, as_version=4)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv(
        "PYTHONPATH",
        os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebooks' cubes go to a temp dir
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    t0 = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - t0
    assert elapsed < 60, f"{path.name} took {elapsed:.0f} s (budget 60 s)"
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors
