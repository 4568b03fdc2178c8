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


def build_cube(tmp_path_factory, text: str, name: str, **kw) -> tuple[xr.Dataset, Path]:
    """Run a config (YAML text) in this process into a fresh store; (cube, path)."""
    out = tmp_path_factory.mktemp(name) / f"{name}.zarr"
    run(parse_config(text, output=out), workers=0, **kw)
    return open_cube(out), out
