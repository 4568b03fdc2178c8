"""Run a sweep's plan: in this process (the default on one machine), on a dask
``LocalCluster``, on a running dask scheduler, or as parts (``--part I/N``) side by side.
Whoever computes a block writes its region and marker; the driver holds the
single-writer lock, tracks progress and finalizes the cube.

A killed run resumes where it stopped (blocks with a marker are skipped) and gives
the same cube, bit for bit on the same kind of machine: a block's values depend only
on the config and the block id, never on which process computed it or in which order.
XLA may round differently on another CPU, so "bit for bit" holds on one kind of
machine (and device: a GPU's cube agrees with the CPU's within the tolerances of
README "On a GPU"; :mod:`pipeline.device` chooses where blocks compute).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import time
import warnings
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


#: seconds a command takes before its first block computes: the Python process, JAX,
#: xarray and zarr imported, the store's template written (measured 2-3 s on a 2-core
#: VM; ``marshall plan`` adds it to every estimate)
STARTUP_S = 2.5


@dataclass(frozen=True)
class Estimate:
    """Size and time of a sweep. ``seconds`` is the whole command on a first run:
    ``startup`` (:data:`STARTUP_S`) + ``compile`` (the model's ``compile_s``: tracing and
    compiling its kernel when nothing is cached; a cached kernel loads in about half
    that) + ``compute`` (the points at the model's rate)."""

    points: int
    blocks: int
    block_points: int
    bytes: int
    seconds: float
    workers: int
    startup: float = 0.0
    compile: float = 0.0
    compute: float = 0.0

    @property
    def size_text(self) -> str:
        return f"{human_bytes(self.bytes)} uncompressed (zarr compresses it)"

    @property
    def time_text(self) -> str:
        return f"~{human_seconds(self.seconds)} on {self.workers} worker(s): {self.breakdown_text}"

    @property
    def breakdown_text(self) -> str:
        return (
            f"start-up {about(self.startup)} + compiling the kernel "
            f"{about(self.compile)} (first run; cached later runs compile less) "
            f"+ computing {about(self.compute)}"
        )

    def lines(self) -> list[str]:
        return [
            f"grid points      {self.points:,}",
            f"blocks (chunks)  {self.blocks:,} of up to {self.block_points:,} points",
            f"output size      {self.size_text}",
            f"time estimate    {self.time_text}",
        ]


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"


def about(s: float) -> str:
    """``~3 s``, ``~2 min``, or ``<1 s``."""
    text = human_seconds(s)
    return text if text.startswith("<") else "~" + text


def human_seconds(s: float) -> str:
    if s < 0.95:
        return "<1 s"
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def estimate(spec: SweepSpec, workers: int | None = None) -> Estimate:
    """Size and time of a sweep, without running it (nothing is imported but numpy).

    ``bytes``: exactly the bytes of the arrays written (every declared output and
    ``done`` at its dtype, before compression). Time, of the whole first run: the
    process's start-up (:data:`STARTUP_S`), the model's ``compile_s`` (compiling its
    kernel, nothing cached) and its ``rate`` points/s per worker (per two sectors;
    0.3x when saving paths); ``workers`` is the number of cores in use (default: all)."""
    plan = Plan.of(spec)
    workers = workers or os.cpu_count() or 1
    m = spec.decl
    nbytes = spec.n_points * bytes_per_point(spec)
    rate = m.rate / (spec.J / 2) * (0.3 if spec.save_paths else 1.0)
    compute = spec.n_points / (rate * max(1, min(workers, plan.n_blocks)))
    secs = STARTUP_S + m.compile_s + compute
    return Estimate(spec.n_points, plan.n_blocks, plan.block_points, nbytes, secs, workers,
                    STARTUP_S, m.compile_s, compute)  # fmt: skip


def stored_bytes(spec: SweepSpec, n_blocks: int, block_points: int | None = None) -> int:
    """An upper bound of the disk space ``n_blocks`` blocks take once written: every
    variable's chunk at its uncompressed size (zarr stores a chunk at its full shape,
    also at the grid's edge), rounded up to whole filesystem blocks, and the block's
    completion mark. ``block_points``: points of a full block (default: the plan's)."""
    sizes = dim_sizes(spec)
    per_point = [o.itemsize * math.prod(sizes[d] for d in o.dims)
                 for o in spec.decl.outputs_for(spec.save_paths)] + [1]  # fmt: skip
    full = Plan.of(spec).block_points if block_points is None else block_points
    per_block = sum(-(-p * full // _FS_BLOCK) * _FS_BLOCK for p in per_point) + _FS_BLOCK
    return n_blocks * per_block


def check_disk(spec: SweepSpec, blocks=None, block_points: int | None = None) -> None:
    """Refuse a run whose remaining blocks would not fit on the output's disk (what is
    left to write, as it will be stored: :func:`stored_bytes`)."""
    if blocks is None:
        n = Plan.of(spec).n_blocks - len(done_blocks(spec.output))
    else:
        n = len(blocks)
    need = stored_bytes(spec, n, block_points) + 64 * 1024  # + the template's metadata
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
    On a GPU one launch carries several consecutive blocks
    (:func:`pipeline.kernels.blocks_per_launch`; one on the CPU).
    """
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    from . import _jax
    from .kernels import blocks_per_launch, collect_blocks, launch_blocks

    _jax.check_x64()
    plan = Plan.of(spec)
    log = Path(spec.output) / STATE / "computed.log"
    threads = max(1, threads)
    blocks, per = list(blocks), blocks_per_launch(spec, plan)
    groups = [blocks[i : i + per] for i in range(0, len(blocks), per)]

    def compute(group: list[int]):
        t0 = time.perf_counter()
        res = collect_blocks(launch_blocks(spec, group, plan, slots=per))
        return res, t0

    pending: deque = deque()
    with CubeWriter(spec, plan) as writer:

        def finish(item):
            group, fut = item
            res, t0 = fut.result()
            seconds = (time.perf_counter() - t0) / len(group)
            for b, r in zip(group, res):
                yield writer.write(b, r, seconds=seconds)

        with ThreadPoolExecutor(threads, thread_name_prefix="marshall-block") as pool:
            try:
                for n, group in enumerate(groups):
                    with open(log, "a") as fh:  # one short O_APPEND line per computation
                        for b in group:
                            fh.write(json.dumps({"block": b, "pid": os.getpid()}) + "\n")
                    pending.append((group, pool.submit(compute, group)))
                    if n == 0 and threads > 1:
                        pending[0][1].result()  # compile once, before the others start
                    while len(pending) > threads:
                        yield from finish(pending.popleft())
                while pending:
                    yield from finish(pending.popleft())
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
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class Points(ProgressColumn):
        """``done/total points``, or ``done points`` while the total is not known (a
        refinement level learns its size as its blocks report)."""

        def render(self, task):
            total = "" if task.total is None else f"/{task.total:,.0f}"
            return Text(f"{task.completed:,.0f}{total} points")

    from .term import clean, console

    class Name(ProgressColumn):
        """The sweep's name (the config's: shown as text, never as markup)."""

        def render(self, task):
            return Text(clean(task.description), style="bold")

    return Progress(
        Name(),
        BarColumn(),
        Points(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=False,
        console=console(),
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
        **_device_env(),
        "OMP_NUM_THREADS": "1",
        # one core per worker process: XLA's own thread pool would oversubscribe
        "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    }
    with _sigint_ignored(), warnings.catch_warnings():
        # no dashboard; the scheduler's small HTTP server (health routes) still asks for
        # port 8787 first and, when another cluster holds it, warns and takes a free one
        warnings.filterwarnings("ignore", message="Port .* is already in use")
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            env=env,
            silence_logs=50,
        )


def _device_env() -> dict[str, str]:
    """The device choice of this process, for the workers it starts: they choose the
    same way (``MARSHALL_DEVICE``, ``JAX_PLATFORMS``; neither: JAX's default, a GPU
    where there is one) and share a GPU without each taking most of its memory."""
    keys = ("MARSHALL_DEVICE", "MARSHALL_JAX_PLATFORMS", "JAX_PLATFORMS")
    env = {k: os.environ[k] for k in keys if os.environ.get(k)}
    return env | {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}


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
    if spec.refine is None:
        check_disk(spec)
    else:  # a refined store starts as metadata only; each level checks its own blocks
        check_disk(spec, range(1), block_points=1)
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
    part_grace: float = 60.0,
    device: str | None = None,
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
    A refined sweep (``spec.refine``) runs level by level (:func:`run_refined`; parts
    wait for each level, ``part_grace``). ``device`` (``cpu``, ``gpu``; default: the
    environment's, else JAX's default backend) is where this process and the workers
    it starts compute (:mod:`pipeline.device`).
    """
    if device is not None:
        from .device import use

        use(device)
    if spec.refine is not None:
        return run_refined(spec, workers=workers, scheduler=scheduler, overwrite=overwrite,
                           progress=progress, cluster=cluster, max_blocks=max_blocks,
                           part=part, finalize_cube=finalize_cube, threads=threads,
                           part_grace=part_grace)  # fmt: skip
    t0 = time.perf_counter()
    check_target(spec.output)
    plan = Plan.of(spec)
    if not Path(spec.output).exists():
        check_disk(spec)  # before anything is written, the store's template included
    with writer_lock(spec.output, part):
        action = create(spec, overwrite=overwrite and part is None, sole=part is None)
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
                        from .kernels import in_flight

                        threads = in_flight(spec.model)
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
    with _client(n_workers, scheduler, cluster) as client:
        n = max(1, len(client.nthreads()) or n_workers)
        groups = task_groups(todo, n, Plan.of(spec))
        _map_tasks(client, compute_and_write, spec, groups, tick)


def _map_tasks(client, fn, spec, groups, tick, *args) -> None:
    """Run ``fn(spec, *args, group)`` for every group on the cluster, ticking summaries."""
    from dask.distributed import as_completed

    fspec = client.scatter(spec, broadcast=True)
    scattered = [client.scatter(a, broadcast=True) for a in args]
    n = len(groups)
    futures = client.map(fn, [fspec] * n, *[[a] * n for a in scattered], groups, pure=False,
                         retries=3)  # fmt: skip
    for fut in as_completed(futures):
        for summary in fut.result():
            tick(summary)
        fut.release()  # a finished task's result is not kept (nor recomputed if lost)


@contextlib.contextmanager
def _client(n_workers, scheduler, cluster):
    """A dask client: of a running scheduler, of ``cluster``, or of a LocalCluster of
    ``n_workers`` processes started (and closed) here."""
    import logging

    from dask.distributed import Client

    own = None
    if scheduler:
        client = Client(scheduler, timeout="30s")
    else:
        own = cluster or _local_cluster(max(1, n_workers))
        client = Client(own)
    try:
        yield client
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


# ------------------------------------------------------------------ refined sweeps
#
# A refined sweep runs level by level (pipeline/refine.py, store/levels.py). Level 0
# is a dense plan of the coarse grid; level l + 1's blocks are a pure function of the
# completed level l on disk, planned again by whoever needs them (a resumed run, each
# part, verify) and checked against the plan recorded the first time. Within a level
# the blocks' points to compute are gathered, in block order, into batches of exactly
# `refine_batch(spec)` points (padded), so the kernel compiles once; a point's outputs
# do not depend on its batch, so a block's values are those of any other batching (and
# of the dense sweep of the finest grid), bit for bit on one kind of machine.
#
# Parts (`--part I/N`) split each level's blocks into N contiguous ranges. A part that
# has finished its range of a level waits (polling the completion marks) until the
# level is complete, since the next level is planned from all of it. While the parts
# owning the missing blocks run (hold a live lock), it waits; once none of them has
# run for `part_grace` seconds (dead, or not started yet), it takes their locks and
# computes their missing blocks itself, so a split run completes with any part alive.
# A part whose lock is held that way refuses to start ("being written by another
# run"); run it again once the level is done, it resumes.


#: blocks of a refined level written at once (zarr's per-chunk overhead, not the bytes,
#: bounds a level's writes: two writers overlap it)
WRITERS = 2


def level_pipelined(spec: SweepSpec, level: int, works, threads: int = 1):
    """Compute and write ``works`` (blocks of one level), yielding each block's summary
    once its mark is written. Points go to the kernel in batches of exactly
    :func:`pipeline.grid.refine_batch` points, filled across blocks in block order;
    ``threads`` batches compute at once (the first alone: one compile). Writes overlap
    the next batches' computation."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from . import _jax
    from .grid import level_params, refine_batch
    from .kernels import collect_points, launch_points
    from .store.levels import LevelWriter

    _jax.check_x64()
    B = refine_batch(spec)
    log = Path(spec.output) / STATE / "computed.log"
    threads = max(1, threads)
    works = list(works)
    todo_pts: dict[int, np.ndarray] = {}
    left: dict[int, int] = {}
    bufs: dict[int, dict] = {}
    started: dict[int, float] = {}

    def batches():
        """``(points, segments)``: up to B points and, per block in them, ``(block index,
        start in the block's list, count, start in the batch)``; a block without points
        to compute comes as ``(None, [(i, 0, 0, 0)])``."""
        pts, segs, fill = [], [], 0
        for i, w in enumerate(works):
            compute = w.points()[0]
            todo_pts[i] = compute
            left[i] = len(compute)
            if not len(compute):
                yield None, [(i, 0, 0, 0)]
                continue
            pos = 0
            while pos < len(compute):
                take = min(B - fill, len(compute) - pos)
                pts.append(compute[pos : pos + take])
                segs.append((i, pos, take, fill))
                fill += take
                pos += take
                if fill == B:
                    yield np.concatenate(pts), segs
                    pts, segs, fill = [], [], 0
        if fill:
            yield np.concatenate(pts), segs

    def compute(pts):
        return collect_points(launch_points(spec, level_params(spec, level, pts, B)), len(pts))

    def note(i: int) -> None:
        if i not in started:
            started[i] = time.perf_counter()
            with open(log, "a") as fh:  # one short O_APPEND line per computation
                fh.write(
                    json.dumps({"level": level, "block": works[i].id, "pid": os.getpid()}) + "\n"
                )

    pending: deque = deque()
    writes: deque = deque()
    with (
        LevelWriter(spec, level) as writer,
        ThreadPoolExecutor(threads, thread_name_prefix="marshall-batch") as pool,
        ThreadPoolExecutor(WRITERS, thread_name_prefix="marshall-level-write") as wpool,
    ):

        def finish(item):
            """Take a computed batch into its blocks; start writing the complete ones."""
            segs, fut = item
            res = fut.result() if fut is not None else None
            for i, a, n, off in segs:
                if n:
                    if i not in bufs:
                        k = len(todo_pts[i])
                        bufs[i] = {
                            name: np.empty((k,) + v.shape[1:], v.dtype) for name, v in res.items()
                        }
                    for name, v in res.items():
                        bufs[i][name][a : a + n] = v[off : off + n]
                    left[i] -= n
                if left[i] == 0:
                    seconds = time.perf_counter() - started[i]
                    writes.append(wpool.submit(writer.write, works[i], bufs.pop(i, {}), seconds))
                    todo_pts.pop(i, None)
            while len(writes) > 2 * WRITERS:
                yield writes.popleft().result()

        try:
            first = True
            for pts, segs in batches():
                for i, *_ in segs:
                    note(i)
                fut = None if pts is None else pool.submit(compute, pts)
                pending.append((segs, fut))
                if first and fut is not None and threads > 1:
                    fut.result()  # compile once, before the others start
                first = first and fut is None
                while len(pending) > threads:
                    yield from finish(pending.popleft())
            while pending:
                yield from finish(pending.popleft())
            while writes:
                yield writes.popleft().result()
        finally:
            for fut in [f for _, f in pending if f is not None] + list(writes):
                fut.cancel()  # interrupted: let started batches and writes finish
                with contextlib.suppress(BaseException):
                    fut.result()


def compute_and_write_level(spec: SweepSpec, level: int, step, ids: list[int]) -> list[dict]:
    """One task of a refined level on a worker: blocks ``ids`` of ``level`` (planned
    from ``step``, the level below's marks; None at level 0), skipping those done."""
    from .store import levels as lv

    works = [w for w in lv.plan_level(spec, level, step) if w.id in set(ids)]
    done = lv.done_blocks(spec.output, level)
    return list(level_pipelined(spec, level, [w for w in works if w.id not in done]))


def _share(works: list, part: tuple[int, int] | None) -> list:
    """Part ``i`` of ``n``'s contiguous range of a level's blocks (all without parts)."""
    if part is None:
        return list(works)
    i, n = part
    if not 1 <= i <= n:
        raise ValueError(f"part {i}/{n}: need 1 <= i <= n")
    B = len(works)
    return works[(i - 1) * B // n : i * B // n]


def _part_running(path: Path, part: tuple[int, int]) -> bool:
    """A live process holds part ``part``'s lock (one on another host counts as live)."""
    from .store.lock import lock_path, read_owner, stale

    owner = read_owner(lock_path(path, part))
    return owner is not None and "damaged" not in owner and not stale(owner)


def run_refined(
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
    part_grace: float = 60.0,
    poll: float = 0.5,
) -> dict:
    """Run a refined sweep level by level (see the comment above); arguments as
    :func:`run`. Returns :func:`run`'s summary plus ``levels`` (per level: blocks,
    computed blocks, points computed) and ``points_computed``."""
    from .grid import level_chunks
    from .store import levels as lv

    t0 = time.perf_counter()
    check_target(spec.output)
    g = spec.refine.grid
    path = Path(spec.output)
    if not path.exists():
        check_disk(spec, range(1), block_points=math.prod(level_chunks(spec, 0)))
    n_workers = workers or 0
    in_process = scheduler is None and cluster is None and n_workers == 0
    if threads is None:
        threads = (os.cpu_count() or 1) if spec.decl.kernel.threads else 1
    per_level: list[dict] = []
    budget = max_blocks
    n_done_total = 0
    with contextlib.ExitStack() as stack:
        stack.enter_context(writer_lock(spec.output, part))
        action = create(spec, overwrite=overwrite and part is None, sole=part is None)
        client = None
        if not in_process:
            client = stack.enter_context(_client(n_workers, scheduler, cluster))
        bar = stack.enter_context(_progress(progress))
        dead: set[int] = set()  # parts found not running past the grace period

        def compute(level, step, works):
            nonlocal n_done_total
            if not works:
                return 0, 0
            task = bar.add_task(f"{spec.name} level {level}", total=None, rate="")
            nb = npts = 0
            t1 = time.perf_counter()

            def tick(summary):
                nonlocal nb, npts
                nb += 1
                npts += summary["computed"]
                dt = time.perf_counter() - t1
                bar.update(
                    task, advance=summary["computed"], rate=f"{npts / max(dt, 1e-9):,.0f} pts/s"
                )

            check_disk(spec, works, block_points=math.prod(level_chunks(spec, level)))
            if client is None or len(works) <= 1:
                for summary in level_pipelined(spec, level, works, threads):
                    tick(summary)
            else:
                n = max(1, len(client.nthreads()) or n_workers)
                ids = [w.id for w in works]
                per = max(1, len(ids) // max(1, 4 * n))
                groups = [ids[i : i + per] for i in range(0, len(ids), per)]
                light = (
                    None
                    if step is None
                    else type(step)(step.grid, step.level, step.marked, step.active)
                )
                _map_tasks(client, compute_and_write_level, spec, groups, tick, level, light)
            n_done_total += nb
            return nb, npts

        try:
            for level in range(g.levels + 1):
                step = None if level == 0 else lv.step_from(spec, level - 1)
                works = lv.plan_level(spec, level, step)
                lv.record_plan(spec, level, works, step)
                done = lv.done_blocks(path, level)
                mine = [w for w in _share(works, part) if w.id not in done]
                if budget is not None:
                    mine = mine[: max(0, budget)]
                    budget -= len(mine)
                nb, npts = compute(level, step, mine)
                per_level.append(
                    {
                        "level": level,
                        "blocks": len(works),
                        "computed_blocks": nb,
                        "computed_points": npts,
                    }
                )
                idle_since = None
                while part is not None:  # wait for the other parts' blocks of this level
                    missing = {w.id for w in works} - lv.done_blocks(path, level)
                    if not missing or (budget is not None and budget <= 0):
                        break
                    n_parts = part[1]
                    owner = {
                        w.id: j for j in range(1, n_parts + 1) for w in _share(works, (j, n_parts))
                    }
                    theirs = sorted({owner[b] for b in missing})
                    if any(_part_running(path, (j, n_parts)) for j in theirs):
                        idle_since = None
                        time.sleep(poll)
                        continue
                    idle_since = idle_since if idle_since is not None else time.monotonic()
                    waited = time.monotonic() - idle_since
                    if waited < part_grace and not dead.issuperset(theirs):
                        time.sleep(poll)
                        continue
                    dead.update(theirs)
                    idle_since = None
                    for j in theirs:  # adopt: compute part j's missing blocks under its lock
                        try:
                            with writer_lock(spec.output, (j, n_parts)):
                                now = lv.done_blocks(path, level)
                                orphans = [
                                    w for w in _share(works, (j, n_parts)) if w.id not in now
                                ]
                                nb2, np2 = compute(level, step, orphans)
                        except StoreError:  # it started meanwhile: wait for it
                            dead.discard(j)
                            continue
                        per_level[-1]["computed_blocks"] += nb2
                        per_level[-1]["computed_points"] += np2
                if {w.id for w in works} - lv.done_blocks(path, level):
                    break  # this level is not complete (max_blocks): the next cannot be planned
        except KeyboardInterrupt:
            st = lv.level_status(spec)
            n = sum(len(d) for _, d in st)
            raise Interrupted(n, sum(len(p) for p, _ in st if p is not None)) from None
        status = lv.level_status(spec)
        remaining = sum(len(set(p) - d) if p is not None else 1 for p, d in status)
        finalized = None
        if remaining == 0 and finalize_cube and part is None:
            finalized = lv.finalize(spec)
    per = lv.points_computed(path, g.levels)
    return {
        "output": str(spec.output),
        "action": action,
        "blocks": sum(len(p) for p, _ in status if p is not None),
        "computed": n_done_total,
        "skipped": 0,
        "remaining": remaining,
        "points": g.n_dense,
        "computed_points": sum(x["computed_points"] for x in per_level),
        "points_computed": int(sum(per)),
        "levels": per_level,
        "seconds": time.perf_counter() - t0,
        "finalized": finalized,
    }


@dataclass(frozen=True)
class RefineEstimate:
    """``marshall plan`` of a refined sweep: the points expected (level 0 computed, or
    read from the store, and its boundary cells extrapolated: :func:`pipeline.refine.
    estimate`) against the dense equivalent, and the time of both."""

    coarse: tuple[int, ...]
    finest: tuple[int, ...]
    per_level: tuple[int, ...]
    points: int
    dense: int
    level1_exact: int
    seconds: float
    dense_seconds: float
    workers: int
    from_store: bool

    startup: float = 0.0
    compile: float = 0.0

    @property
    def fraction(self) -> float:
        return self.points / self.dense

    def lines(self) -> list[str]:
        shape = " x ".join(f"{n:,}" for n in self.finest)
        return [
            f"coarse grid      {' x '.join(f'{n:,}' for n in self.coarse)} (level 0)",
            f"finest grid      {shape} = {self.dense:,} points (the dense equivalent)",
            f"expected points  ~{self.points:,} ({self.fraction:.2%} of dense), per level "
            + ", ".join(f"{n:,}" for n in self.per_level),
            f"time estimate    ~{human_seconds(self.seconds)} refined, "
            f"~{human_seconds(self.dense_seconds)} dense, on {self.workers} worker(s); "
            f"each includes start-up ~{human_seconds(self.startup)} and compiling the "
            f"kernel ~{human_seconds(self.compile)} (first run; cached later runs compile "
            "less)",
        ]


def level0(spec: SweepSpec) -> tuple[dict, bool]:
    """Level 0's ``on`` codes and knife-edge flags: read from the store when it is
    complete there, else computed here (the coarse grid, in batches)."""
    import numpy as np

    from .store import levels as lv
    from .store.cube import is_cube, state

    r = spec.refine
    names = list(dict.fromkeys([*r.on] + ([r.knife] if r.knife else [])))
    path = Path(spec.output)
    if is_cube(path) and (state(path) or {}).get("config_hash") == spec.config_hash:
        plan = lv.read_plan(path, 0)
        if plan is not None and set(plan["blocks"]) <= lv.done_blocks(path, 0):
            return lv.read_level(spec, 0, names), True
    from .grid import level_params, refine_batch
    from .kernels import collect_points, launch_points

    shape = r.grid.shape(0)
    pts = np.indices(shape).reshape(len(shape), -1).T
    B = refine_batch(spec)
    parts = []
    for a in range(0, len(pts), B):
        p = pts[a : a + B]
        parts.append(collect_points(launch_points(spec, level_params(spec, 0, p, B)), len(p)))
    return {
        n: np.concatenate([q[n] for q in parts]).reshape(shape + parts[0][n].shape[1:])
        for n in names
    }, False


def estimate_refined(spec: SweepSpec, workers: int | None = None) -> RefineEstimate:
    """Points and time of a refined sweep (computes its coarse level unless stored)."""
    from . import refine as rf

    r = spec.refine
    arrays, stored = level0(spec)
    step = r.grid.step(
        0,
        {n: arrays[n] for n in r.on},
        knife=arrays[r.knife] if r.knife else None,
        neighbours=r.neighbours,
        knife_rule="change",
    )
    est = rf.estimate(step)
    workers = workers or os.cpu_count() or 1
    m = spec.decl
    rate = m.rate / (spec.J / 2) * (0.3 if spec.save_paths else 1.0) * max(1, workers)
    return RefineEstimate(
        coarse=r.grid.shape(0),
        finest=r.grid.finest_shape,
        per_level=est.per_level,
        points=est.points,
        dense=est.dense,
        level1_exact=step.n_compute,
        seconds=STARTUP_S + m.compile_s + est.points / rate,
        dense_seconds=STARTUP_S + m.compile_s + est.dense / rate,
        workers=workers,
        from_store=stored,
        startup=STARTUP_S,
        compile=m.compile_s,
    )
