"""Small cubes shared by the query, figure and CLI tests."""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from pipeline import open_cube, parse_config, run

#: a 6 x 4 dynamic sweep with paths (instant coordination, g = 0.02, eps = 0.05)
DYNAMIC = """
model: dynamic
sectors: 2
params:
  r_1: {logspace: [0.5, 4.0, 6]}
  r_2: 1.0
  theta_1: {linspace: [1.2, 3.0, 4]}
  theta_2: 2.0
  g: 0.02
  eps: 0.05
  T: 200
  n_time: 41
save_paths: true
output: x.zarr
"""


def coordination(n_r: int, n_theta: int) -> str:
    """A J = 2 coordination sweep over r_1 (log), theta_1 and two theta_2."""
    return f"""
model: coordination
sectors: 2
params:
  r_1: {{logspace: [0.25, 8.0, {n_r}]}}
  r_2: 1.0
  theta_1: {{linspace: [1.05, 6.0, {n_theta}]}}
  theta_2: [1.5, 2.0]
output: x.zarr
"""


def standard(n_r: int, n_theta: int) -> str:
    """A standard-model sweep over r_2 (log) and theta."""
    return f"""
model: standard
params:
  r_1: 1.0
  r_2: {{logspace: [0.25, 8.0, {n_r}]}}
  theta: {{linspace: [1.05, 6.0, {n_theta}]}}
output: x.zarr
"""


#: r_j increasing in j: outside the paper's ordering assumptions (claims not applicable)
INCREASING = """
model: coordination
sectors: 2
params:
  r_1: {linspace: [0.3, 0.9, 7]}
  r_2: 1.0
  theta_1: {linspace: [1.2, 3.0, 5]}
  theta_2: 2.0
output: x.zarr
"""


def build_cube(tmp_path_factory, text: str, name: str, **kw) -> tuple[xr.Dataset, Path]:
    """Run a config (YAML text) in this process into a fresh store; (cube, path)."""
    out = tmp_path_factory.mktemp(name) / f"{name}.zarr"
    run(parse_config(text, output=out), workers=0, **kw)
    return open_cube(out), out


def as_written(path: Path) -> None:
    """Make a copy's edited chunks read as if written so: drop the chunk checksums from
    its completion marks (as an older cube's marks), which would otherwise make every
    edited block read as damaged (pipeline/store/integrity.py)."""
    import json

    for m in (Path(path) / "_marshall" / "done").glob("*.json"):
        mark = json.loads(m.read_text())
        mark.pop("crc32c", None)
        m.write_text(json.dumps(mark))
