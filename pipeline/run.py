"""Run a sweep's plan: in this process (the default on one machine), on a dask
``LocalCluster``, on a running dask scheduler, or as parts (``--part I/N``) side by side.
Whoever computes a block writes its region and marker; the driver holds the
single-writer lock, tracks progress and finalizes the cube.

A killed run resumes where it stopped (blocks with a marker are skipped) and gives
the same cube, bit for bit on the same kind of machine: a block's values depend only
on the config and the block id, never on which process computed it or in which order.
XLA may round differently on another CPU, so "bit for bit" holds on one kind of
machine.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from .config import SweepSpec
from .grid import Plan, bytes_per_point, dim_sizes
from .store import (
    STATE,
    CubeWriter,
    StoreError,
    check_target,
    create,
    done_blocks,
    finalize,
    marker,
    writer_lock,
)

#: files smaller than this still take a filesystem block on disk
_FS_BLOCK = 4096


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
    """Size and time of a sweep, without running it (nothing is imported but numpy).

    ``bytes``: exactly the bytes of the arrays written (every declared output and
    ``done`` at its dtype, before compression). Time: the model's ``rate`` points/s
    per worker after compiling (per two sectors; 0.3x when saving paths) plus its
    compile time; ``workers`` is the number of cores in use (default: all)."""
    plan = Plan.of(spec)
    workers = workers or os.cpu_count() or 1
    m = spec.decl
    nbytes = spec.n_points * bytes_per_point(spec)
    rate = m.rate / (spec.J / 2) * (0.3 if spec.save_paths else 1.0)
    secs = m.compile_s + spec.n_points / (rate * max(1, min(workers, plan.n_blocks)))
    return Estimate(spec.n_points, plan.n_blocks, plan.block_points, nbytes, secs, workers)


def stored_bytes(spec: SweepSpec, n_blocks: int) -> int:
    """An upper bound of the disk space ``n_blocks`` blocks take once written: every
    variable's chunk at its uncompressed size (zarr stores a chunk at its full shape,
    also at the grid's edge), rounded up to whole filesystem blocks, and the block's
    completion mark."""
    plan = Plan.of(spec)
    sizes = dim_sizes(spec)
    per_point = [o.itemsize * math.prod(sizes[d] for d in o.dims)
                 for o in spec.decl.outputs_for(spec.save_paths)] + [1]  # fmt: skip
    full = plan.block_points
    per_block = sum(-(-p * full // _FS_BLOCK) * _FS_BLOCK for p in per_point) + _FS_BLOCK
    return n_blocks * per_block


def check_disk(spec: SweepSpec, blocks=None) -> None:
    """Refuse a run whose remaining blocks would not fit on the output's disk (what is
    left to write, as it will be stored: :func:`stored_bytes`)."""
    plan = Plan.of(spec)
    if blocks is None:
        n = plan.n_blocks - len(done_blocks(spec.output))
    else:
        n = len(blocks)
    need = stored_bytes(spec, n) + 64 * 1024  # + the template's metadata
    parent = Path(spec.output).resolve()
    while not parent.exists():
        parent = parent.parent
    free = shutil.disk_usage(parent).free
    if need > free:
        raise StoreError(
            f"the {n:,} block(s) left to compute would write up to {human_bytes(need)} "
            f"({spec.n_points:,} points in all) but {parent} has {human_bytes(free)} free; "
            "free space, shrink the axes or choose another output"
        )


# --------------------------------------------------------------------- tasks


def compute_and_write(spec: SweepSpec, blocks: int | list[int]) -> list[dict]:
    """One task: compute blocks and write each (region, then marker). Runs on workers.

    Blocks already marked done are skipped (a task retried after a worker died does
    not compute the blocks it had finished). Pipelined: block ``i + 1`` computes (JAX
    dispatches asynchronously) while block ``i`` is written.
    """
    blocks = [blocks] if isinstance(blocks, int) else list(blocks)
    todo = [b for b in blocks if not marker(spec.output, b).exists()]
    return list(pipelined(spec, todo))


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

    from . import _jax
    from .kernels import collect_block, launch_block

    _jax.check_x64()
    plan = Plan.of(spec)
    log = Path(spec.output) / STATE / "computed.log"
    threads = max(1, threads)

    def compute(b: int):
        t0 = time.perf_counter()
        res = collect_block(launch_block(spec, b, plan))
        return res, t0

    pending: deque = deque()
    with CubeWriter(spec, plan) as writer:

        def finish(item) -> dict:
            b, fut = item
            res, t0 = fut.result()
            return writer.write(b, res, seconds=time.perf_counter() - t0)

        with ThreadPoolExecutor(threads, thread_name_prefix="marshall-block") as pool:
            try:
                for n, b in enumerate(blocks):
                    with open(log, "a") as fh:  # one short O_APPEND line per computation
                        fh.write(json.dumps({"block": b, "pid": os.getpid()}) + "\n")
                    pending.append((b, pool.submit(compute, b)))
                    if n == 0 and threads > 1:
                        pending[0][1].result()  # compile once, before the others start
                    while len(pending) > threads:
                        yield finish(pending.popleft())
                while pending:
                    yield finish(pending.popleft())
            finally:
                for _, fut in pending:  # interrupted: let started blocks finish computing
                    fut.cancel()
                    with contextlib.suppress(BaseException):
                        fut.result()


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


def _progress(enabled: bool):
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} points"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=False,
    )


@contextlib.contextmanager
def _sigint_ignored():
    """Processes started in here ignore Ctrl-C (the disposition survives exec): the
    driver handles the interrupt and shuts its workers down quietly."""
    try:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _local_cluster(workers: int):
    from dask.distributed import LocalCluster

    env = {
        "JAX_ENABLE_X64": "1",
        "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu"),
        "OMP_NUM_THREADS": "1",
        # one core per worker process: XLA's own thread pool would oversubscribe
        "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    }
    with _sigint_ignored():
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            env=env,
            silence_logs=50,
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
    check_target(spec.output)
    check_disk(spec)
    with writer_lock(spec.output):
        return create(spec, overwrite=overwrite)


def finalize_store(spec: SweepSpec) -> dict:
    """Finalize a cube whose blocks are all done (after parts ran as separate jobs)."""
    with writer_lock(spec.output):
        return finalize(spec)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run; ``done`` of ``total`` blocks are on disk."""

    def __init__(self, done: int, total: int):
        super().__init__(f"interrupted after {done:,} of {total:,} blocks")
        self.done, self.total = done, total


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

    By default (``workers`` None or 0) blocks are computed in this process, the
    fastest way on one machine: ``threads`` blocks at once (default: one per core
    for a model whose kernel uses one core per call, else one, since XLA already
    spreads a static block's kernel over the cores). ``workers=N`` starts a dask
    ``LocalCluster`` of N processes; ``scheduler`` connects to a running dask
    scheduler; ``cluster`` is any dask cluster object (e.g. a ``SLURMCluster``).
    ``part=(i, n)`` computes only the i-th of n contiguous block ranges (one cluster
    job each; parts run side by side) and does not finalize. ``overwrite`` replaces a
    cube that holds another config (a cube of the same config is resumed).
    ``max_blocks`` stops after that many blocks (for tests of resuming). Ctrl-C
    raises :class:`Interrupted` once the blocks in flight are written.
    Returns a summary dict (action, blocks computed/skipped, seconds, regimes).
    """
    t0 = time.perf_counter()
    check_target(spec.output)
    plan = Plan.of(spec)
    if not Path(spec.output).exists():
        check_disk(spec)  # before anything is written, the store's template included
    with writer_lock(spec.output, part):
        action = create(spec, overwrite=overwrite and part is None)
        done = done_blocks(spec.output)
        scope = part_blocks(plan, part)
        todo = [b for b in scope if b not in done]
        skipped = len(scope) - len(todo)
        if max_blocks is not None:
            todo = todo[:max_blocks]
        check_disk(spec, todo)
        n_workers = workers or 0
        in_process = scheduler is None and cluster is None and (n_workers == 0 or len(todo) <= 1)
        total_pts = sum(math.prod(s.stop - s.start for s in plan.region(b)) for b in todo)
        with _progress(progress) as bar:
            task = bar.add_task(spec.name, total=total_pts, rate="")
            n_blocks = 0

            def tick(summary: dict) -> None:
                nonlocal n_blocks
                n_blocks += 1
                bar.update(task, advance=summary["points"])
                dt = time.perf_counter() - t0
                bar.update(task, rate=f"{bar.tasks[0].completed / max(dt, 1e-9):,.0f} pts/s")

            try:
                if in_process:
                    if threads is None:
                        threads = (os.cpu_count() or 1) if spec.decl.kernel.threads else 1
                    for summary in pipelined(spec, todo, threads):
                        tick(summary)
                else:
                    _run_dask(spec, todo, tick, n_workers, scheduler, cluster)
            except KeyboardInterrupt:
                raise Interrupted(len(done_blocks(spec.output)), plan.n_blocks) from None
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
        "computed_points": total_pts,
        "seconds": time.perf_counter() - t0,
        "finalized": regimes,
    }


def _run_dask(spec, todo, tick, n_workers, scheduler, cluster) -> None:
    import logging

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
            fut.release()  # a finished task's result is not kept (nor recomputed if lost)
    finally:
        quiet = [logging.getLogger(n) for n in ("distributed", "tornado", "asyncio")]
        levels = [lg.level for lg in quiet]
        for lg in quiet:
            lg.setLevel(logging.CRITICAL)
        try:
            client.close()
            if own is not None and cluster is None:
                own.close()
        finally:
            for lg, lv in zip(quiet, levels):
                lg.setLevel(lv)
