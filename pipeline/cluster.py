"""Dask workers as SLURM jobs (dask-jobqueue), for ``marshall run --cluster slurm``.

Each SLURM job runs one dask worker process that computes many blocks (never one job
per block); jobs are requested adaptively between 1 and ``jobs`` and recycled before
their wall time runs out (``--lifetime``), with dask retrying any block a departing
worker had not finished. float64 is set in every job's environment.

Settings come from, in order: keyword arguments, ``MARSHALL_SLURM_*`` environment
variables (``QUEUE``, ``ACCOUNT``, ``WALLTIME``, ``MEMORY``, ``CORES``), defaults.
Install with ``pip install -e ".[cluster]"``.
"""

from __future__ import annotations

import os

from .config import SweepSpec

DEFAULTS = {"queue": None, "account": None, "walltime": "01:00:00", "memory": "8GB", "cores": 2}


def _setting(name: str, given):
    if given is not None:
        return given
    env = os.environ.get(f"MARSHALL_SLURM_{name.upper()}")
    if env is not None:
        return int(env) if name == "cores" else env
    return DEFAULTS[name]


def lifetime(walltime: str, margin_min: int = 5) -> str:
    """Worker lifetime: the job's wall time less a margin, as dask's duration string."""
    parts = [int(x) for x in walltime.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0)
    minutes = parts[0] * 60 + parts[1] + parts[2] / 60
    return f"{max(1, int(minutes - margin_min))}m"


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
        job_script_prologue=["export JAX_ENABLE_X64=1", "export JAX_PLATFORMS=cpu"],
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
