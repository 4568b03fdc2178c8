"""Shared fixtures. float64 is on in this process (as in every worker) via pipeline._jax."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("JAX_ENABLE_X64", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# compiled kernels cached for this test session only, shared with the processes the
# tests start (workers, Snakemake jobs, CLI runs), never the user's own cache
_JAX_CACHE = tempfile.mkdtemp(prefix="marshall-test-jax-cache-")
os.environ["MARSHALL_JAX_CACHE"] = _JAX_CACHE
atexit.register(shutil.rmtree, _JAX_CACHE, ignore_errors=True)

import pytest  # noqa: E402

import pipeline  # noqa: E402,F401  (turns float64 on)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _x64():
    import jax.numpy as jnp

    assert jnp.zeros(()).dtype == jnp.float64


@pytest.fixture
def write_config(tmp_path):
    """Write YAML text to a config file in tmp_path; returns its path."""

    def _write(text: str, name: str = "sweep.yaml") -> Path:
        p = tmp_path / name
        p.write_text(text)
        return p

    return _write
