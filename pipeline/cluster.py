"""Dask workers as SLURM jobs (dask-jobqueue), for ``marshall run --cluster slurm``.

Each SLURM job runs one dask worker process that computes many blocks (never one job
per block); jobs are requested adaptively between 1 and ``jobs`` and recycled before
their wall time runs out (``--lifetime``), with dask retrying any block a departing
worker had not finished. float64 is set in every job's environment, and the device
choice (``device=``, else ``MARSHALL_DEVICE``; neither: each job computes where JAX's
default backend is, on its GPU if it has one and a CUDA jaxlib).

Settings come from, in order: keyword arguments, ``MARSHALL_SLURM_*`` environment
variables (``QUEUE``, ``ACCOUNT``, ``WALLTIME``, ``MEMORY``, ``CORES``), defaults.
Install with ``pip install -e ".[cluster]"``.
"""

from __future__ import annotations

import os
import re

from .config import SweepSpec

DEFAULTS = {"queue": None, "account": None, "walltime": "01:00:00", "memory": "8GB", "cores": 2}


def _setting(name: str, given):
    if given is not None:
        return given
    env = os.environ.get(f"MARSHALL_SLURM_{name.upper()}")
    if env is not None:
        return int(env) if name == "cores" else env
    return DEFAULTS[name]


def walltime_minutes(walltime: str) -> float:
    """A SLURM ``--time`` value in minutes.

    SLURM accepts ``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M`` and ``D-H:M:S``.
    """
    text = str(walltime).strip()
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if not m:
        raise ValueError(
            f"walltime {walltime!r} is not a SLURM time (M, M:S, H:M:S, D-H, D-H:M or D-H:M:S)"
        )
    days, a, b, c = m.groups()
    a, b, c = int(a), int(b or 0), int(c or 0)
    if days is not None:  # D-H[:M[:S]]
        return int(days) * 1440 + a * 60 + b + c / 60
    if m.group(4) is not None:  # H:M:S
        return a * 60 + b + c / 60
    return a + b / 60  # M or M:S


def lifetime(walltime: str, margin_min: int = 5) -> str:
    """Worker lifetime: the job's wall time less a margin, as dask's duration string."""
    return f"{max(1, int(walltime_minutes(walltime) - margin_min))}m"


def _device_exports(device: str | None) -> list[str]:
    """The job script's lines that make its worker choose ``device`` (None: as this
    process's environment says; nothing there: JAX's default in the job)."""
    from .device import ENV, requested

    choice = requested(device) if device is not None else requested()
    return [] if choice is None else [f"export {ENV}={choice}"]


def slurm_cluster(
    spec: SweepSpec | None = None,
    jobs: int = 4,
    *,
    queue=None,
    account=None,
    walltime=None,
    memory=None,
    cores=None,
    adapt: bool = True,
    device: str | None = None,
    **extra,
):
    """A ``dask_jobqueue.SLURMCluster`` set up for marshall (adaptive, 1..``jobs`` jobs)."""
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "--cluster slurm needs dask-jobqueue: pip install -e '.[cluster]'"
        ) from None
    walltime = _setting("walltime", walltime)
    cores = int(_setting("cores", cores))
    kw = dict(
        queue=_setting("queue", queue),
        account=_setting("account", account),
        walltime=walltime,
        memory=_setting("memory", memory),
        cores=cores,
        processes=1,  # one worker process per job, using the job's cores through XLA
        job_name=f"marshall-{spec.name}" if spec else "marshall",
        job_script_prologue=["export JAX_ENABLE_X64=1", *_device_exports(device)],
        worker_extra_args=[
            "--lifetime",
            lifetime(walltime),
            "--lifetime-stagger",
            "2m",
            "--lifetime-restart",
        ],
        log_directory="logs/slurm",
    )
    kw.update(extra)
    cluster = SLURMCluster(**{k: v for k, v in kw.items() if v is not None})
    if adapt:
        cluster.adapt(minimum_jobs=1, maximum_jobs=jobs)
    else:
        cluster.scale(jobs=jobs)
    return cluster
