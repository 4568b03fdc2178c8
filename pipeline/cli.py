"""The ``marshall`` command line: thin over :mod:`pipeline.config`, :mod:`pipeline.run`,
:mod:`pipeline.store`, :mod:`pipeline.query` and :mod:`pipeline.figures`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from .config import ConfigError, SweepSpec, load_config
from .store import StoreError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="marshall: sweeps of the economics of clusters and comparative advantage.",
)
console = Console(stderr=False)
err = Console(stderr=True)


def _load(config: Path, output: Path | None = None) -> SweepSpec:
    try:
        return load_config(config, output=output)
    except ConfigError as exc:
        err.print(f"[bold red]error:[/] invalid sweep config [cyan]{config}[/]")
        for field, msg in exc.problems:
            err.print(f"  [yellow]{field}[/]: {msg}", highlight=False)
        err.print("Nothing was written. Fix the fields above and run again.")
        raise typer.Exit(2) from None


def _fail(msg: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {msg}", highlight=False)
    raise typer.Exit(code)


ConfigArg = Annotated[Path, typer.Argument(help="sweep config (YAML)")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="override the output path")]


@app.command()
def plan(
    config: ConfigArg,
    output: OutputOpt = None,
    workers: Annotated[int | None, typer.Option(help="workers for the estimate")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
):
    """Grid size, chunk count, output size and a time estimate, without running."""
    from .run import estimate

    spec = _load(config, output)
    est = estimate(spec, workers)
    if json_out:
        console.print_json(
            json.dumps(
                {
                    "points": est.points,
                    "blocks": est.blocks,
                    "block_points": est.block_points,
                    "bytes": est.bytes,
                    "seconds": est.seconds,
                    "dims": list(spec.dims),
                    "shape": list(spec.shape),
                    "chunks": list(spec.chunks),
                }
            )
        )
        return
    t = Table(
        title=f"{spec.name}: model {spec.model}"
        + (f", J = {spec.J}" if spec.model != "standard" else "")
    )
    t.add_column("axis")
    t.add_column("points", justify="right")
    t.add_column("range")
    t.add_column("chunk", justify="right")
    for a, c in zip(spec.axes, spec.chunks):
        t.add_row(
            a.name, f"{len(a):,}", f"{a.values[0]:g} .. {a.values[-1]:g} ({a.spacing})", f"{c:,}"
        )
    console.print(t)
    if spec.fixed:
        console.print("fixed: " + ", ".join(f"{k} = {v:g}" for k, v in spec.fixed.items()))
    for line in est.lines():
        console.print(line)
    console.print(f"output           {spec.output}")


@app.command()
def run(
    config: ConfigArg,
    output: OutputOpt = None,
    workers: Annotated[
        int | None,
        typer.Option(help="local dask worker processes (default: one per core; 0 = this process)"),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            help="with --workers 0: blocks computed at once (default: one per core for "
            "the dynamic model, else 1)"
        ),
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="address of a running dask scheduler, e.g. tcp://host:8786")
    ] = None,
    cluster: Annotated[
        str | None, typer.Option(help="'slurm': start dask workers as SLURM jobs (dask-jobqueue)")
    ] = None,
    jobs: Annotated[int, typer.Option(help="SLURM jobs with --cluster slurm")] = 4,
    overwrite: Annotated[bool, typer.Option(help="replace an existing store")] = False,
    part: Annotated[
        str | None,
        typer.Option(
            help="I/N: compute only the I-th of N block ranges (one cluster job each); "
            "finish with `marshall finalize`"
        ),
    ] = None,
    progress: Annotated[bool, typer.Option(help="progress bar")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
):
    """Compute a sweep into its zarr cube (resumes a killed run of the same config)."""
    from .run import estimate
    from .run import run as run_sweep

    spec = _load(config, output)
    part_t = _parse_part(part) if part else None
    if not quiet:
        est = estimate(spec, workers)
        console.print(
            f"[bold]{spec.name}[/]: {est.points:,} points in {est.blocks:,} blocks, "
            f"~{est.lines()[2].split(maxsplit=2)[2]}, "
            f"{est.lines()[3].split(maxsplit=2)[2]} -> {spec.output}",
            highlight=False,
        )
    dask_cluster = None
    if cluster:
        from .cluster import slurm_cluster

        dask_cluster = slurm_cluster(spec, jobs=jobs)
    try:
        res = run_sweep(
            spec,
            workers=workers,
            threads=threads,
            scheduler=scheduler,
            overwrite=overwrite,
            progress=progress and not quiet,
            cluster=dask_cluster,
            part=part_t,
        )
    except StoreError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(
            f"{exc.strerror or exc} while writing {spec.output} ({exc.filename or ''}). The "
            "blocks finished so far are kept; free space and run the same command to resume."
        )
    if not quiet:
        console.print(
            f"{res['action']}: computed {res['computed']} blocks, skipped "
            f"{res['skipped']} already done, in {res['seconds']:.1f} s "
            f"({res['points'] / max(res['seconds'], 1e-9):,.0f} points/s)"
        )
        if res["finalized"]:
            names = ", ".join(res["finalized"]["regimes"].values())
            console.print(
                f"regimes: {names}; knife-edge points: {res['finalized']['knife_edge_points']:,}",
                highlight=False,
            )


def _parse_part(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
        if not 1 <= i <= n:
            raise ValueError
    except ValueError:
        _fail(f"--part must be I/N with 1 <= I <= N (e.g. 2/8); got {text!r}", 2)
    return i, n


@app.command()
def init(
    config: ConfigArg,
    output: OutputOpt = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing store")] = False,
):
    """Create the cube's template on disk (once); nothing is computed."""
    from .run import init as init_store

    spec = _load(config, output)
    try:
        action = init_store(spec, overwrite=overwrite)
    except StoreError as exc:
        _fail(str(exc))
    console.print(f"{spec.output}: {action}")


@app.command()
def finalize(config: ConfigArg, output: OutputOpt = None):
    """Name the regimes and mark the cube complete once every block is done."""
    from .run import finalize_store

    spec = _load(config, output)
    try:
        res = finalize_store(spec)
    except StoreError as exc:
        _fail(str(exc))
    console.print(
        f"{spec.output}: complete; regimes: {', '.join(res['regimes'].values())}", highlight=False
    )


@app.command()
def verify(cube: Annotated[Path, typer.Argument(help="zarr store")]):
    """List missing or incomplete blocks; exit 1 if any (0: the cube is complete)."""
    import numpy as np

    from .config import parse_config
    from .grid import Plan
    from .store import done_blocks, open_cube

    try:
        ds = open_cube(cube)
    except FileNotFoundError as exc:
        _fail(str(exc))
    spec = parse_config(ds.attrs["config"], output=cube)
    plan = Plan.of(spec)
    done = done_blocks(cube)
    missing = [b for b in plan.blocks() if b not in done]
    # a block marked done must have every point written
    bad = []
    mask = ds["done"]
    for b in sorted(done):
        reg = dict(zip(spec.dims, plan.region(b)))
        if not bool(np.all(mask.isel(reg).values)):
            bad.append(b)
    console.print(
        f"{cube}: {plan.n_blocks} blocks, {len(done)} marked done, "
        f"{len(missing)} missing, {len(bad)} incomplete"
    )
    for b in (missing + bad)[:50]:
        reg = ", ".join(f"{d}[{s.start}:{s.stop}]" for d, s in zip(spec.dims, plan.region(b)))
        console.print(f"  block {b}: {'incomplete' if b in bad else 'missing'}  {reg}")
    if missing or bad:
        raise typer.Exit(1)
    console.print(
        "complete" + ("" if ds.attrs.get("complete") else " (not finalized: run again to finalize)")
    )


from .cli_query import register as _register_query  # noqa: E402

_register_query(app)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
