"""JAX set-up shared by every process that runs a kernel.

Importing this module turns on float64 (``jax_enable_x64``). Every module that
builds or runs a kernel imports it first, so dask worker processes that unpickle a
task from :mod:`pipeline` get float64 too; :func:`check_x64` asserts it at run time.
"""

from __future__ import annotations

import os

os.environ.setdefault("JAX_ENABLE_X64", "1")
os.environ.setdefault("JAX_PLATFORMS", os.environ.get("MARSHALL_JAX_PLATFORMS", "cpu"))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)


def check_x64() -> None:
    """Raise if JAX would compute in float32 in this process."""
    import jax.numpy as jnp

    if jnp.zeros(()).dtype != jnp.float64:  # pragma: no cover - defensive
        raise RuntimeError("JAX float64 is off in this process; import pipeline first")
