"""JAX set-up shared by every process that runs a kernel.

Importing this module applies the device choice (:mod:`pipeline.device`:
``MARSHALL_DEVICE``, else ``MARSHALL_JAX_PLATFORMS``, else JAX's own default: a GPU
when a CUDA jaxlib sees one, else the CPU) and turns on float64
(``jax_enable_x64``). Every module that builds or runs a kernel imports it first, so
dask worker processes that unpickle a task from :mod:`pipeline` get float64 and the
same device choice too; :func:`check_x64` asserts both at run time.

It also turns on JAX's persistent compilation cache (:func:`cache_dir`): a kernel
compiled once (~5 s for the dynamic model) loads from disk in every later process
with the same shapes, which a sweep's dask workers, Snakemake jobs and reruns are.
A cached executable is the one XLA compiled, so results do not change. Set
``MARSHALL_JAX_CACHE`` to a directory, or to ``off``; XLA refuses, and recompiles,
an entry made for another CPU, so a cache shared by unlike machines only costs time.
"""

from __future__ import annotations

import os

from . import device as _device

os.environ.setdefault("JAX_ENABLE_X64", "1")
if (_platforms := _device.environ_platforms()) is not None:
    os.environ["JAX_PLATFORMS"] = _platforms

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
if _platforms is not None:  # JAX imported before this module read its environment then
    jax.config.update("jax_platforms", _platforms)


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
    """Raise :class:`pipeline.device.DeviceError` unless this process computes in
    float64 on the device asked for (:func:`pipeline.device.current`): every process
    that computes blocks (a dask worker, a SLURM part) calls it first."""
    _device.current()
