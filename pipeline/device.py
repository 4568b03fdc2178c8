"""Which device a sweep computes on: the choice, its checks, and a description.

By default a sweep computes where JAX's default backend is: on a GPU when a CUDA
jaxlib (``pip install -e ".[gpu]"``) sees one, else on the CPU. The choice is
overridden, in this order, by

* ``device=`` (``marshall run --device cpu|gpu``), which also sets
  ``MARSHALL_DEVICE`` so that processes started from here (dask workers of a
  ``LocalCluster``) choose the same;
* ``MARSHALL_DEVICE`` (``cpu``, ``gpu``; ``auto`` or empty: JAX's default);
* ``MARSHALL_JAX_PLATFORMS``, a JAX platform list (``cpu``, ``cuda``), the older
  setting, used when ``JAX_PLATFORMS`` is not set;
* ``JAX_PLATFORMS``, JAX's own.

Whatever the device, kernels compute in float64: :func:`setup` (and
:func:`pipeline._jax.check_x64`, which every process that computes blocks calls)
adds two float64 numbers on the device and refuses to run when the result is not
float64. A GPU asked for where JAX has none is an error that names the fix.

Importing this module imports nothing heavy (no JAX): the choice is an environment
variable until a kernel runs, so ``marshall --help`` never starts a backend.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

ENV = "MARSHALL_DEVICE"
LEGACY_ENV = "MARSHALL_JAX_PLATFORMS"
CHOICES = ("cpu", "gpu")
#: the JAX platform (``JAX_PLATFORMS``) of each choice
PLATFORMS = {"cpu": "cpu", "gpu": "cuda"}
#: JAX platform names of GPUs
GPU_PLATFORMS = ("cuda", "rocm", "gpu")

GPU_FIX = (
    "install JAX's CUDA build next to marshall: pip install -e '.[gpu]' (jax[cuda12]; "
    "`nvidia-smi` must list the GPU), or compute on the CPU: --device cpu "
    f"(or {ENV}=cpu)"
)


class DeviceError(RuntimeError):
    """A device that cannot be used (none there, or not computing in float64)."""


def requested(device: str | None = None) -> str | None:
    """The device asked for: ``device``, else ``$MARSHALL_DEVICE``; None (or ``auto``,
    or empty) when neither asks: JAX's default backend."""
    where = "--device"
    if device is None:
        device, where = os.environ.get(ENV), ENV
    if device is None:
        return None
    d = device.strip().lower()
    if d in ("", "auto", "default"):
        return None
    if d not in CHOICES:
        raise DeviceError(f"{where} must be one of cpu, gpu or auto; got {device!r}")
    return d


def kind_of(platform: str) -> str:
    """``cpu`` or ``gpu`` (any other platform by its own name) of a JAX platform."""
    p = platform.lower()
    return "gpu" if p in GPU_PLATFORMS else p


def environ_platforms() -> str | None:
    """What ``JAX_PLATFORMS`` should be before JAX starts (None: leave it): the
    platform of ``$MARSHALL_DEVICE``, else ``$MARSHALL_JAX_PLATFORMS`` unless
    ``JAX_PLATFORMS`` is set already."""
    choice = requested()
    if choice is not None:
        return PLATFORMS[choice]
    legacy = os.environ.get(LEGACY_ENV)
    if legacy and not os.environ.get("JAX_PLATFORMS"):
        return legacy
    return None


def use(device: str | None = None) -> str | None:
    """Make this process, and the processes it starts, compute on ``device`` (None:
    as the environment says). Call it before a kernel runs: JAX's backends start
    once per process. Returns the choice (None: JAX's default)."""
    choice = requested(device)
    if device is not None and choice is None:  # --device auto: the environment's
        os.environ.pop(ENV, None)
        return requested()
    if choice is not None:
        os.environ[ENV] = choice
        os.environ["JAX_PLATFORMS"] = PLATFORMS[choice]
        jax = sys.modules.get("jax")
        if jax is not None:  # imported already: JAX read its environment then
            jax.config.update("jax_platforms", PLATFORMS[choice])
    return choice


@dataclass(frozen=True)
class Device:
    """Where kernels run in this process."""

    kind: str  # cpu, gpu
    platform: str  # JAX's: cpu, cuda, rocm
    name: str  # the first device's kind, e.g. "NVIDIA H100 80GB HBM3"
    count: int  # devices of that platform JAX sees (kernels use the first)
    chosen: str | None  # what asked: "--device", "MARSHALL_DEVICE", ... or None

    def text(self) -> str:
        many = f", 1 of {self.count} in use" if self.count > 1 else ""
        how = f"chosen by {self.chosen}" if self.chosen else "JAX's default backend"
        return f"{self.kind} ({self.name}{many}; {how}; float64)"


def _chosen(device: str | None) -> str | None:
    if device is not None and requested(device) is not None:
        return "--device"
    if requested() is not None:
        return ENV
    if os.environ.get("JAX_PLATFORMS"):
        return "JAX_PLATFORMS"
    return None


def require_float64(dtype, value: float, where: str) -> None:
    """Raise :class:`DeviceError` unless ``1 + 2**-40`` computed on ``where`` came
    back as float64 (``dtype``) with its value (float32 rounds it to 1)."""
    import numpy as np

    if np.dtype(dtype) != np.float64 or value != 1.0 + 2.0**-40:
        raise DeviceError(
            f"JAX computes in {np.dtype(dtype).name} on {where}, and marshall's results "
            "are float64 on every device: turn float64 on (import pipeline before JAX, or "
            "set JAX_ENABLE_X64=1; nothing may turn jax_enable_x64 off), or choose a "
            "device that computes in float64 (--device cpu)"
        )


def check(device=None) -> None:
    """Refuse a device (default: JAX's default device) that does not compute in float64."""
    import jax
    import jax.numpy as jnp

    x = jax.device_put(jnp.asarray(1.0, dtype=jnp.float64), device)
    y = x + jnp.asarray(2.0**-40, dtype=jnp.float64)
    where = getattr(device, "platform", None) or jax.default_backend()
    require_float64(y.dtype, float(y), where)


def current(device: str | None = None) -> Device:
    """The device this process computes on; starts JAX's backend and checks it: it
    is the one asked for and computes in float64 (else :class:`DeviceError`)."""
    choice = requested(device) if device is not None else requested()
    from ._jax import jax  # float64 on, $MARSHALL_DEVICE applied, before JAX starts

    try:
        platform = jax.default_backend()
        devs = jax.devices()
    except Exception as exc:  # JAX_PLATFORMS names a platform JAX cannot start (or knows not)
        want = PLATFORMS[choice] if choice else os.environ.get("JAX_PLATFORMS", "")
        text = str(exc).strip()
        first = text.splitlines()[0] if text else f"JAX_PLATFORMS={want}: no such backend here"
        if choice == "gpu" or any(p in want for p in GPU_PLATFORMS):
            msg = f"a GPU was asked for but JAX has none ({first}); {GPU_FIX}"
            raise DeviceError(msg) from None
        raise DeviceError(f"JAX cannot start platform {want!r} ({first})") from None
    kind = kind_of(platform)
    if choice is not None and kind != choice:
        raise DeviceError(
            f"{choice} was asked for but JAX computes on {kind} in this process (its "
            "backend had started before the choice); choose the device before any "
            f"kernel runs, or in the environment: {ENV}={choice}"
            + (f"; {GPU_FIX}" if choice == "gpu" else "")
        )
    check(devs[0])
    return Device(kind, platform, str(devs[0].device_kind), len(devs), _chosen(device))


def setup(device: str | None = None) -> Device:
    """Choose ``device`` (:func:`use`) and check it (:func:`current`)."""
    use(device)
    return current(device)
