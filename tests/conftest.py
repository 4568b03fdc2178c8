"""Shared fixtures. float64 is on in this process (as in every worker) via pipeline._jax."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("JAX_ENABLE_X64", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

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
