"""Run a sweep's plan: in this process, on a dask ``LocalCluster``, or on a running
dask scheduler. Workers compute a block and write its region and marker themselves;
the driver holds the single-writer lock, tracks progress and finalizes the cube.

A killed run resumes where it stopped (blocks with a marker are skipped) and gives
the same cube, bit for bit: a block's values depend only on the config and the
block id, never on which process computed it or in which order.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from . import _jax  # noqa: F401
from .config import SweepSpec
from .grid import Plan, bytes_per_point
from .kernels import collect_block, launch_block
from .store import STATE, StoreError, create, done_blocks, finalize, write_block, writer_lock

#: points/s per worker (core) after compilation, measured end to end on a 2-core
#: laptop (benchmarks/RESULTS.md: coordination J = 2, 10^8 points, ~2 M/s per core;
#: the dynamic model ~25 k points/s per core with J = 2, ~0.3x that saving paths)
RATE = {"standard": 2.5e6, "coordination": 2e6, "modes": 1.2e6, "dynamic": 2.5e4}
COMPILE_S = {"standard": 1.0, "coordination": 1.0, "modes": 1.5, "dynamic": 8.0}


@dataclass(frozen=True)
class Estimate:
    points: int
    blocks: int
    block_points: int
    bytes: int
    seconds: float
    workers: int

    def lines(self) -> list[str]:
        return [
            f"grid points      {self.points:,}",
            f"blocks (chunks)  {self.blocks:,} of up to {self.block_points:,} points",
            f"output size      {human_bytes(self.bytes)} uncompressed (zarr compresses it)",
            f"time estimate    ~{human_seconds(self.seconds)} on {self.workers} worker(s)",
        ]


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"


def human_seconds(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def estimate(spec: SweepSpec, workers: int | None = None) -> Estimate:
    """Size and time of a sweep, without running it."""
    plan = Plan.of(spec)
    workers = workers or os.cpu_count() or 1
    n_time = int(spec.fixed.get("n_time", 401))
    nbytes = spec.n_points * bytes_per_point(spec.model, spec.J, spec.save_paths, n_time)
    rate = RATE[spec.model] / (spec.J / 2) * (0.3 if spec.save_paths else 1.0)
    secs = COMPILE_S[spec.model] + spec.n_points / (rate * max(1, min(workers, plan.n_blocks)))
    return Estimate(spec.n_points, plan.n_blocks, plan.block_points, nbytes, secs, workers)


def check_disk(spec: SweepSpec) -> None:
    """Refuse a sweep whose uncompressed output would not fit on the output's disk."""
    est = estimate(spec)
    parent = Path(spec.output).resolve().parent
    while not parent.exists():
        parent = parent.parent
    free = shutil.disk_usage(parent).free
    if est.bytes > free:
        raise StoreError(
            f"the sweep would write up to {human_bytes(est.bytes)} ({spec.n_points:,} points) "
            f"but {parent} has {human_bytes(free)} free; shrink the axes or choose another output"
        )


# --------------------------------------------------------------------- tasks


def compute_and_write(spec: SweepSpec, blocks: int | list[int]) -> list[dict]:
    """One task: compute blocks and write each (region, then marker). Runs on workers.

    Pipelined: block ``i + 1`` computes (JAX dispatches asynchronously) while block
    ``i`` is written, so one process keeps both the kernel and the writer busy.
    """
    return list(pipelined(spec, [blocks] if isinstance(blocks, int) else blocks))


def pipelined(spec: SweepSpec, blocks, threads: int = 1):
    """Compute and write ``blocks``, overlapping each write with the computation of
    the next blocks; yields each block's summary (in block order) once its marker is
    written.

    ``threads`` blocks compute at once, each on its own thread (XLA releases the
    GIL): the dynamic model's integration loop runs on one core per call, so this is
    how one process uses every core. The first block computes alone, so that the
    kernel is traced and compiled once. Results do not depend on ``threads``.
    """
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    _jax.check_x64()
    plan = Plan.of(spec)
    log = Path(spec.output) / STATE / "computed.log"
    threads = max(1, threads)

    def compute(b: int):
        t0 = time.perf_counter()
        res = collect_block(launch_block(spec, b, plan))
        return res, t0

    def finish(item) -> dict:
        b, fut = item
        res, t0 = fut.result()
        return write_block(spec, b, res, plan, seconds=time.perf_counter() - t0)

    pending: deque = deque()
    with ThreadPoolExecutor(threads, thread_name_prefix="marshall-block") as pool:
        for n, b in enumerate(blocks):
            with open(log, "a") as fh:  # one short O_APPEND line per block computation
                fh.write(json.dumps({"block": b, "pid": os.getpid()}) + "\n")
            pending.append((b, pool.submit(compute, b)))
            if n == 0 and threads > 1:
                pending[0][1].result()  # compile once, before the others start
            while len(pending) > threads:
                yield finish(pending.popleft())
        while pending:
            yield finish(pending.popleft())


def task_groups(todo: list[int], n_workers: int, plan: Plan) -> list[list[int]]:
    """Cut the blocks to do into tasks of consecutive blocks: about four tasks per
    worker (load balance, retry granularity) and at most ~16 M points per task."""
    if not todo:
        return []
    per = max(1, min(len(todo) // max(1, 4 * n_workers), max(1, 16_000_000 // plan.block_points)))
    return [todo[i : i + per] for i in range(0, len(todo), per)]


def computed_log(path: str | Path) -> list[int]:
    """Block ids in the order their computation started, over every run of the store."""
    log = Path(path) / STATE / "computed.log"
    if not log.exists():
        return []
    return [json.loads(line)["block"] for line in log.read_text().splitlines() if line.strip()]


def _progress(enabled: bool, total: int):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=False,
    )


def _local_cluster(workers: int):
    from dask.distributed import LocalCluster

    env = {
        "JAX_ENABLE_X64": "1",
        "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu"),
        "OMP_NUM_THREADS": "1",
        # one core per worker process: XLA's own thread pool would oversubscribe
        "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    }
    return LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        env=env,
        silence_logs=40,
    )


def part_blocks(plan: Plan, part: tuple[int, int] | None) -> list[int]:
    """Blocks of part ``i`` of ``n`` (1-based, contiguous ranges) or all blocks."""
    if part is None:
        return list(plan.blocks())
    i, n = part
    if not 1 <= i <= n:
        raise ValueError(f"part {i}/{n}: need 1 <= i <= n")
    B = plan.n_blocks
    return list(range((i - 1) * B // n, i * B // n))


def init(spec: SweepSpec, overwrite: bool = False) -> str:
    """Create the store's template (once); a no-op for an existing store of this config."""
    check_disk(spec)
    with writer_lock(spec.output):
        return create(spec, overwrite=overwrite)


def finalize_store(spec: SweepSpec) -> dict:
    """Finalize a cube whose blocks are all done (after parts ran as separate jobs)."""
    with writer_lock(spec.output):
        return finalize(spec)


def run(
    spec: SweepSpec,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    overwrite: bool = False,
    progress: bool = False,
    cluster=None,
    max_blocks: int | None = None,
    part: tuple[int, int] | None = None,
    finalize_cube: bool = True,
    threads: int | None = None,
) -> dict:
    """Compute every block of ``spec`` not yet done and finalize the cube.

    ``workers=0`` computes in this process, ``threads`` blocks at once (default: one
    per core for the dynamic model, one for the others, whose kernels XLA already
    spreads over the cores); ``scheduler`` connects to a running dask
    scheduler; ``cluster`` is any dask cluster object (e.g. a ``SLURMCluster``);
    otherwise a ``LocalCluster`` with ``workers`` processes (default: one per core).
    ``part=(i, n)`` computes only the i-th of n contiguous block ranges (one cluster
    job each; parts run side by side) and does not finalize. ``max_blocks`` stops after
    that many blocks (for tests of resuming).
    Returns a summary dict (action, blocks computed/skipped, seconds, regimes).
    """
    t0 = time.perf_counter()
    check_disk(spec)
    plan = Plan.of(spec)
    with writer_lock(spec.output, part):
        action = create(spec, overwrite=overwrite and part is None)
        done = done_blocks(spec.output)
        scope = part_blocks(plan, part)
        todo = [b for b in scope if b not in done]
        skipped = len(scope) - len(todo)
        if max_blocks is not None:
            todo = todo[:max_blocks]
        n_workers = workers if workers is not None else (os.cpu_count() or 1)
        in_process = scheduler is None and cluster is None and (n_workers == 0 or len(todo) <= 1)
        with _progress(progress, len(todo)) as bar:
            task = bar.add_task(spec.name, total=len(todo), rate="")
            npts = 0

            def tick(summary: dict) -> None:
                nonlocal npts
                npts += summary["points"]
                dt = time.perf_counter() - t0
                bar.update(task, advance=1, rate=f"{npts / max(dt, 1e-9):,.0f} pts/s")

            if in_process:
                if threads is None:  # the dynamic loop runs on one core per block;
                    # XLA already spreads a static block's kernel over the cores
                    threads = (os.cpu_count() or 1) if spec.model == "dynamic" else 1
                for summary in pipelined(spec, todo, threads):
                    tick(summary)
            else:
                _run_dask(spec, todo, tick, n_workers, scheduler, cluster)
        remaining = plan.n_blocks - len(done_blocks(spec.output))
        regimes = finalize(spec) if remaining == 0 and finalize_cube and part is None else None
    return {
        "output": str(spec.output),
        "action": action,
        "blocks": plan.n_blocks,
        "computed": len(todo),
        "skipped": skipped,
        "remaining": remaining,
        "points": spec.n_points,
        "seconds": time.perf_counter() - t0,
        "finalized": regimes,
    }


def _run_dask(spec, todo, tick, n_workers, scheduler, cluster) -> None:
    from dask.distributed import Client, as_completed

    own = None
    if scheduler:
        client = Client(scheduler, timeout="30s")
    else:
        own = cluster or _local_cluster(max(1, n_workers))
        client = Client(own)
    try:
        n = max(1, len(client.nthreads()) or n_workers)
        groups = task_groups(todo, n, Plan.of(spec))
        fspec = client.scatter(spec, broadcast=True)
        futures = client.map(
            compute_and_write, [fspec] * len(groups), groups, pure=False, retries=3
        )
        for fut in as_completed(futures):
            for summary in fut.result():
                tick(summary)
    finally:
        client.close()
        if own is not None and cluster is None:
            own.close()
