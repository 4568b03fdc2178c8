"""JAX set-up shared by every process that runs a kernel.

Importing this module turns on float64 (``jax_enable_x64``). Every module that
builds or runs a kernel imports it first, so dask worker processes that unpickle a
task from :mod:`pipeline` get float64 too; :func:`check_x64` asserts it at run time.

It also turns on JAX's persistent compilation cache (:func:`cache_dir`): a kernel
compiled once (~5 s for the dynamic model) loads from disk in every later process
with the same shapes, which a sweep's dask workers, Snakemake jobs and reruns are.
A cached executable is the one XLA compiled, so results do not change. Set
``MARSHALL_JAX_CACHE`` to a directory, or to ``off``; XLA refuses, and recompiles,
an entry made for another CPU, so a cache shared by unlike machines only costs time.
"""

from __future__ import annotations

import os

os.environ.setdefault("JAX_ENABLE_X64", "1")
os.environ.setdefault("JAX_PLATFORMS", os.environ.get("MARSHALL_JAX_PLATFORMS", "cpu"))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)


def cache_dir() -> str | None:
    """Where compiled kernels are cached: ``$MARSHALL_JAX_CACHE`` (``off``, ``0`` or
    empty: nowhere), else none if JAX's own ``JAX_COMPILATION_CACHE_DIR`` is set (it
    applies), else ``$XDG_CACHE_HOME/marshall/jax`` (``~/.cache/marshall/jax``)."""
    v = os.environ.get("MARSHALL_JAX_CACHE")
    if v is not None:
        return None if v.strip().lower() in ("", "0", "off", "none", "false") else v
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "marshall", "jax")


if (_dir := cache_dir()) is not None:
    jax.config.update("jax_compilation_cache_dir", _dir)
    # the static kernels compile in ~0.2-1 s, the dynamic one in ~5 s
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)


def check_x64() -> None:
    """Raise if JAX would compute in float32 in this process."""
    import jax.numpy as jnp

    if jnp.zeros(()).dtype != jnp.float64:  # pragma: no cover - defensive
        raise RuntimeError("JAX float64 is off in this process; import pipeline first")
