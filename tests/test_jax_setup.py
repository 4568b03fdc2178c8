"""JAX set-up of every process: float64 and the persistent compilation cache."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pipeline import _jax

SCRIPT = """
import json, sys, time
import jax
import numpy as np
from pipeline.kernels import run_kernel
# cache whatever the compile time (a fast machine compiles this kernel in < 0.2 s)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
rng = np.random.default_rng(0)
i = {"r": rng.uniform(0.2, 2.0, (64, 2)), "theta": rng.uniform(1.1, 3.0, (64, 2))}
t = time.perf_counter()
out = run_kernel("coordination", 2, i)
print(json.dumps({"s": time.perf_counter() - t, "regime": out["regime"].tolist()}))
"""


@pytest.mark.parametrize(
    ("env", "want"),
    [
        ({"MARSHALL_JAX_CACHE": "/x/y"}, "/x/y"),
        ({"MARSHALL_JAX_CACHE": "off"}, None),
        ({"MARSHALL_JAX_CACHE": ""}, None),
        ({"JAX_COMPILATION_CACHE_DIR": "/j"}, None),  # JAX's own setting applies
        ({"XDG_CACHE_HOME": "/c"}, "/c/marshall/jax"),
        ({"HOME": "/h"}, "/h/.cache/marshall/jax"),
    ],
)
def test_cache_dir_from_the_environment(monkeypatch, env, want):
    for k in ("MARSHALL_JAX_CACHE", "JAX_COMPILATION_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert _jax.cache_dir() == want


def test_a_second_process_loads_the_compiled_kernel(tmp_path):
    """The first process compiles and writes the cache, the second reads it: no new
    entry, the same results."""
    import json

    cache = tmp_path / "jax-cache"
    env = {**os.environ, "MARSHALL_JAX_CACHE": str(cache)}

    def once():
        res = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
        )
        return json.loads(res.stdout.strip().splitlines()[-1])

    first = once()
    entries = sorted(p.name for p in cache.iterdir())
    assert entries, "nothing cached"
    second = once()
    assert sorted(p.name for p in cache.iterdir()) == entries
    assert second["regime"] == first["regime"]


@pytest.mark.parametrize(
    ("env", "want"),
    [
        ({"MARSHALL_JAX_PLATFORMS": "cpu"}, "cpu cpu"),  # the older setting still works
        ({"MARSHALL_DEVICE": "cpu", "MARSHALL_JAX_PLATFORMS": "cuda"}, "cpu cpu"),
        ({}, "None *"),  # nothing set: JAX's default backend (a GPU where there is one)
    ],
)
def test_importing_pipeline_jax_applies_the_device_choice(env, want):
    """``JAX_PLATFORMS`` is no longer forced to ``cpu``: a CUDA jaxlib's GPU is used
    by default; the choices of pipeline.device apply before JAX starts."""
    code = (
        "import os; from pipeline import _jax; import jax; "
        "print(os.environ.get('JAX_PLATFORMS'), jax.default_backend())"
    )
    base = {k: v for k, v in os.environ.items()
            if k not in ("JAX_PLATFORMS", "MARSHALL_DEVICE", "MARSHALL_JAX_PLATFORMS")}  # fmt: skip
    res = subprocess.run([sys.executable, "-c", code], env={**base, **env}, capture_output=True,
                         text=True, check=True)  # fmt: skip
    got, want = res.stdout.split()[-2:], want.split()
    assert got[0] == want[0] and want[1] in ("*", got[1])
