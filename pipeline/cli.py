"""The ``marshall`` command line: thin over :mod:`pipeline.config`, :mod:`pipeline.run`,
:mod:`pipeline.store`, :mod:`pipeline.query` and :mod:`pipeline.figures`.

Heavy libraries (JAX, xarray, zarr, matplotlib) are imported by the commands that use
them, so ``marshall --help`` starts at once. Exit codes: 0 fine, 1 a failed check
(missing blocks, a failing claim), 2 a usage error (bad config, unknown cube,
dimension, expression), 130 interrupted; the reason is on stderr, never a traceback
for a mistake of the user's.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from .paths import cli_path
from .term import console as _console
from .term import quote as escape

app = typer.Typer(
    add_completion=True,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="marshall: sweeps of the economics of clusters and comparative advantage.",
)
console = _console()
err = _console(stderr=True)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            v = version("marshall")
        except PackageNotFoundError:  # pragma: no cover - not installed
            v = "unknown"
        typer.echo(f"marshall {v}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version")
    ] = False,
):
    """marshall: sweeps of the economics of clusters and comparative advantage."""


def _fail(msg: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {escape(msg)}", highlight=False)
    raise typer.Exit(code)


def _load(config: Path, output: Path | None = None):
    from .config import ConfigError, load_config

    try:
        spec = load_config(config, output=output)
    except ConfigError as exc:
        err.print(f"[bold red]error:[/] invalid sweep config [cyan]{escape(str(config))}[/]")
        for field, msg in exc.problems:
            err.print(f"  [yellow]{escape(field)}[/]: {escape(msg)}", highlight=False)
        err.print("Nothing was written. Fix the fields above and run again.")
        raise typer.Exit(2) from None
    for note in spec.notes:
        # unwrapped: a note quotes paths, which a folded line would break
        err.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    return spec


def os_error_text(exc: OSError, what: str, resumable: bool = False) -> str:
    """A user's words for an OS error while writing ``what``: the real cause, and what
    to do (``resumable``: a run, whose finished blocks are kept)."""
    import errno

    where = f" ({exc.filename})" if exc.filename else ""
    cause = exc.strerror or str(exc)
    kept = " The blocks finished so far are kept." if resumable else ""
    again = "run the same command to resume" if resumable else "run it again"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"{cause} (the disk is full) while writing {what}{where}.{kept} Free space and {again}."
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"cannot write {what}{where}: {cause}. Choose a place you can write to "
                "(or fix the permissions).")  # fmt: skip
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return f"cannot write {what}{where}: a part of the path is a file, not a directory"
    if exc.errno == errno.ENOENT:
        return f"cannot write {what}{where}: {cause} (a dangling link or a removed folder?)"
    return f"{cause} while writing {what}{where}.{kept}"


ConfigArg = Annotated[Path, typer.Argument(help="sweep config (YAML)", callback=cli_path)]
OutputOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="override the output path", callback=cli_path),
]
DeviceOpt = Annotated[
    str | None,
    typer.Option(
        help="cpu or gpu (default: $MARSHALL_DEVICE, else JAX's default backend: the GPU "
        "when a CUDA jaxlib sees one)"
    ),
]


def _device_line(spec, device: str | None, block_points: int) -> tuple[str, dict]:
    """The ``device`` line of plan and run: where this process computes (checked:
    there, float64) and the points of one kernel launch; and the same as JSON."""
    from .device import DeviceError, setup
    from .kernels import slicing

    try:
        dev = setup(device)
    except DeviceError as exc:
        _fail(str(exc))
    count, size = slicing(spec.model, block_points, dev.kind, spec.J)
    per = f"{size:,} points per launch" + (f", {count} a block" if count > 1 else "")
    return f"device           {dev.text()}; {per}", {"device": dev.kind, "launch_points": size}


@app.command()
def plan(
    config: ConfigArg,
    output: OutputOpt = None,
    workers: Annotated[int | None, typer.Option(help="cores for the estimate")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
    device: DeviceOpt = None,
):
    """Grid size, chunk count, output size and a time estimate, without running."""
    from rich.table import Table

    from .run import estimate

    spec = _load(config, output)
    if spec.refine is not None:
        return _plan_refined(spec, workers, json_out, device)
    est = estimate(spec, workers)
    dev_line, dev_json = _device_line(spec, device, est.block_points)
    if json_out:
        typer.echo(json.dumps({
            "points": est.points, "blocks": est.blocks, "block_points": est.block_points,
            "bytes": est.bytes, "seconds": est.seconds, "startup_seconds": est.startup,
            "compile_seconds": est.compile, "compute_seconds": est.compute,
            "dims": list(spec.dims),
            "shape": list(spec.shape), "chunks": list(spec.chunks), **dev_json,
        }))  # fmt: skip
        return
    m = spec.decl
    t = Table(
        title=f"{escape(spec.name)}: model {escape(spec.model)}"
        + (f", J = {spec.J}" if m.sectors is None else "")
    )
    for col, just in (("axis", "left"), ("points", "right"), ("range", "left"), ("chunk", "right")):
        t.add_column(col, justify=just)
    for a, c in zip(spec.axes, spec.chunks):
        t.add_row(
            a.name, f"{len(a):,}", f"{a.values[0]:g} .. {a.values[-1]:g} ({a.spacing})", f"{c:,}"
        )
    if spec.design is not None:
        d = spec.design.design
        t.title += f"; design {d.kind} (n = {d.n:,}, seed {d.seed}): {spec.n_points:,} samples"
        for name, dist in spec.design.dists.items():
            kind, (lo, hi) = next(iter(dist.canonical().items()))
            t.add_row(
                name, f"{spec.n_points:,}", f"{lo:g} .. {hi:g} ({kind})", f"{spec.chunks[0]:,}"
            )
    console.print(t)
    if spec.fixed:
        console.print("fixed: " + ", ".join(f"{k} = {v:g}" for k, v in spec.fixed.items()))
    for line in est.lines():
        console.print(line)
    console.print(dev_line, highlight=False, markup=False)
    console.print(f"output           {spec.output}", highlight=False, markup=False, soft_wrap=True)


def _plan_refined(spec, workers, json_out: bool, device: str | None = None) -> None:
    """``marshall plan`` of a refined sweep: computes (or reads) its coarse level."""
    from rich.table import Table

    from .grid import refine_batch
    from .run import estimate_refined

    dev_line, dev_json = _device_line(spec, device, refine_batch(spec))
    est = estimate_refined(spec, workers)
    r = spec.refine
    if json_out:
        typer.echo(json.dumps({
            "refine": r.canonical(), "dims": list(spec.dims), "coarse": list(est.coarse),
            "finest": list(est.finest), "expected_points": est.points,
            "per_level": list(est.per_level), "dense_points": est.dense,
            "fraction": est.fraction, "seconds": est.seconds,
            "dense_seconds": est.dense_seconds, "chunks": list(spec.chunks),
            "startup_seconds": est.startup, "compile_seconds": est.compile,
            "level0_from_store": est.from_store, **dev_json,
        }))  # fmt: skip
        return
    m = spec.decl
    t = Table(
        title=f"{escape(spec.name)}: model {escape(spec.model)}"
        + (f", J = {spec.J}" if m.sectors is None else "")
        + f", refined on {', '.join(r.on)}, {r.levels} levels"
    )
    for col, just in (("axis", "left"), ("coarse", "right"), ("finest", "right"),
                      ("range", "left"), ("chunk", "right")):  # fmt: skip
        t.add_column(col, justify=just)
    for a, ra, c in zip(spec.axes, r.axes, spec.chunks):
        kind = a.spacing + ("" if ra.refinable else ", not refined")
        t.add_row(a.name, f"{ra.n:,}", f"{len(a):,}",
                  f"{a.values[0]:g} .. {a.values[-1]:g} ({kind})", f"{c:,}")  # fmt: skip
    console.print(t)
    if spec.fixed:
        console.print("fixed: " + ", ".join(f"{k} = {v:g}" for k, v in spec.fixed.items()))
    for line in est.lines():
        console.print(line, highlight=False)
    console.print(
        "  (from level 0's boundary cells: level 1 exactly, each finer level "
        f"{2 ** (r.grid.n_refined - 1)}x the one before)",
        highlight=False,
    )
    console.print(dev_line, highlight=False, markup=False)
    console.print(f"output           {spec.output}", highlight=False, markup=False, soft_wrap=True)


@app.command()
def run(
    config: ConfigArg,
    output: OutputOpt = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="dask worker processes (default 0: compute in this process, the "
            "fastest on one machine)"
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            help="in this process: blocks computed at once (default: one per core "
            "for a model whose kernel uses one core, else 1)"
        ),
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="address of a running dask scheduler, e.g. tcp://host:8786")
    ] = None,
    cluster: Annotated[
        str | None, typer.Option(help="'slurm': start dask workers as SLURM jobs (dask-jobqueue)")
    ] = None,
    jobs: Annotated[int, typer.Option(help="SLURM jobs with --cluster slurm")] = 4,
    overwrite: Annotated[
        bool, typer.Option(help="replace a marshall cube of another config at the output")
    ] = False,
    part: Annotated[
        str | None,
        typer.Option(
            help="I/N: compute only the I-th of N block ranges (one cluster job each); "
            "finish with `marshall finalize`"
        ),
    ] = None,
    part_grace: Annotated[
        float,
        typer.Option(
            help="refined sweeps with --part: seconds to wait for parts that are not "
            "running before computing their blocks of a level here"
        ),
    ] = 60.0,
    progress: Annotated[bool, typer.Option(help="progress bar")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    device: DeviceOpt = None,
):
    """Compute a sweep into its zarr cube (resumes a killed run of the same config)."""
    from .device import DeviceError
    from .run import Interrupted, estimate
    from .run import run as run_sweep
    from .store import StoreError

    spec = _load(config, output)
    part_t = _parse_part(part) if part else None
    if not quiet and spec.refine is not None:
        g = spec.refine.grid
        console.print(
            f"[bold]{escape(spec.name)}[/]: refined sweep, coarse "
            f"{' x '.join(map(str, g.shape(0)))}, {g.levels} levels to "
            f"{' x '.join(map(str, g.finest_shape))} ({g.n_dense:,} points dense) -> "
            f"{escape(str(spec.output))}",
            highlight=False,
        )
    elif not quiet:
        est = estimate(spec, workers)
        console.print(
            f"[bold]{escape(spec.name)}[/]: {est.points:,} points in {est.blocks:,} blocks, "
            f"~{est.size_text}, {est.time_text} -> {escape(str(spec.output))}",
            highlight=False,
        )
    if not workers and not scheduler and not cluster:  # computed here: check the device
        from .grid import Plan, refine_batch

        n = Plan.of(spec).block_points if spec.refine is None else refine_batch(spec)
        line = _device_line(spec, device, n)[0]
        if not quiet:
            console.print(line, highlight=False)
    elif not quiet:
        from .device import DeviceError, requested

        try:
            want = requested(device) or "JAX's default backend there"
        except DeviceError as exc:
            _fail(str(exc))
        console.print(f"device           each worker's: {want}", highlight=False)
    dask_cluster = None
    if cluster:
        from .cluster import slurm_cluster

        dask_cluster = slurm_cluster(spec, jobs=jobs, device=device)
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
            part_grace=part_grace,
            device=device,
        )
    except (StoreError, DeviceError) as exc:
        _fail(str(exc))
    except Interrupted as exc:
        err.print(
            f"interrupted after {exc.done:,} of {exc.total:,} blocks; run the same command "
            "to resume",
            highlight=False,
        )
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(130)  # not through interpreter shutdown: XLA's threads may still be busy
    except OSError as exc:
        _fail(os_error_text(exc, str(spec.output), resumable=True))
    if not quiet and "levels" in res:
        console.print(
            f"{res['action']}: computed {res['computed']} blocks "
            f"({res['computed_points']:,} points) in {res['seconds']:.1f} s; the cube holds "
            f"{res['points_computed']:,} computed points of {res['points']:,} dense "
            f"({res['points_computed'] / max(res['points'], 1):.2%})"
            + ("" if res["remaining"] == 0 else f"; {res['remaining']} block(s) left"),
            highlight=False,
        )
        if res["finalized"]:
            names = ", ".join(res["finalized"]["regimes"].values())
            console.print(f"regimes: {names}", highlight=False)
    elif not quiet:
        console.print(
            f"{res['action']}: computed {res['computed']} blocks, skipped "
            f"{res['skipped']} already done, in {res['seconds']:.1f} s "
            f"({res['computed_points'] / max(res['seconds'], 1e-9):,.0f} points/s)"
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
    overwrite: Annotated[
        bool, typer.Option(help="replace a marshall cube of another config at the output")
    ] = False,
):
    """Create the cube's template on disk (once); nothing is computed."""
    from .run import init as init_store
    from .store import StoreError

    spec = _load(config, output)
    try:
        action = init_store(spec, overwrite=overwrite)
    except StoreError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(os_error_text(exc, str(spec.output)))
    console.print(f"{spec.output}: {action}", highlight=False, markup=False)


@app.command()
def finalize(config: ConfigArg, output: OutputOpt = None):
    """Name the regimes and mark the cube complete once every block is done."""
    from .run import finalize_store
    from .store import StoreError

    spec = _load(config, output)
    try:
        res = finalize_store(spec)
    except StoreError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(os_error_text(exc, str(spec.output)))
    console.print(
        f"{spec.output}: complete; regimes: {', '.join(res['regimes'].values())}",
        highlight=False,
        markup=False,
    )


def spec_of_cube(cube: Path):
    """The sweep of an existing cube (its stored config, output = the cube)."""
    import zarr

    from .config import ConfigError, parse_config

    if not (cube / "zarr.json").is_file():
        _fail(f"no marshall cube at {cube}", 2)
    try:
        attrs = dict(zarr.open_group(cube, mode="r").attrs)
        return parse_config(attrs["config"], output=cube)
    except (KeyError, ConfigError) as exc:
        _fail(f"{cube} does not hold a readable marshall config ({exc})", 2)


@app.command()
def verify(
    cube: Annotated[Path, typer.Argument(help="zarr store", callback=cli_path)],
    repair: Annotated[
        bool, typer.Option(help="recompute the damaged (and missing) blocks, then finalize")
    ] = False,
):
    """Check every block: marked done, every chunk present and readable, data as
    written. Exit 1 if a block is missing or damaged (0: the cube is complete)."""
    from .grid import Plan
    from .store import StoreError
    from .store.meta import trusted_spec
    from .store.verify import repair as repair_cube
    from .store.verify import verify as verify_cube

    try:  # the config the cube was written for, even if its root config was edited
        spec = trusted_spec(cube)[0]
    except StoreError:
        spec = spec_of_cube(cube)
    rep = verify_cube(spec)
    spec = rep.spec or spec  # the sweep the cube was written for (its root config may differ)
    refined = spec.refine is not None
    plan = None if refined else Plan.of(spec)
    console.print(
        f"{cube}: {rep.n_blocks} blocks, {rep.done} marked done, {len(rep.missing)} missing, "
        f"{len(rep.damaged)} damaged"
        + (f"; levels not planned yet: {rep.unplanned}" if refined and rep.unplanned else ""),
        highlight=False,
        markup=False,
    )
    for b in (rep.missing + sorted(rep.damaged))[:50]:
        region = rep.regions.get(b, ()) if refined else plan.region(b)
        reg = ", ".join(f"{d}[{s.start}:{s.stop}]" for d, s in zip(spec.dims, region))
        what = "; ".join(rep.damaged[b]) if b in rep.damaged else "missing (not computed yet)"
        name = (f"level {b[0]} " + (f"block {b[1]}" if b[1] >= 0 else "plan")) if refined else (
            f"block {b}")  # fmt: skip
        console.print(f"  {name}: {escape(what)}  {reg}", highlight=False)
    for p in rep.problems:  # of the store: metadata, coordinates, temporary files
        console.print(f"  {escape(p)}", highlight=False)
    if repair and not rep.ok:
        try:
            res = repair_cube(spec, rep)
        except StoreError as exc:
            _fail(str(exc))
        rep = verify_cube(spec)
        console.print(
            f"repaired: recomputed {res['computed']} block(s); now {len(rep.missing)} missing, "
            f"{len(rep.damaged)} damaged" + (f", {len(rep.problems)} other problem(s)" if
                                             rep.problems else ""),
            highlight=False,
        )  # fmt: skip
        for p in rep.problems:
            console.print(f"  {escape(p)}", highlight=False)
    if not rep.ok:
        if (rep.damaged or rep.problems) and not repair:
            err.print(
                f"run `marshall verify {cube} --repair` to recompute the damaged blocks"
                + (" and restore the rest" if rep.problems else ""),
                markup=False,
            )
        raise typer.Exit(1)
    import zarr

    complete = dict(zarr.open_group(cube, mode="r").attrs).get("complete")
    console.print("complete" + ("" if complete else " (not finalized: run again to finalize)"))


@app.command()
def models():
    """Every registered model: its parameters, ranges, paper section and figures."""
    from rich.table import Table

    from .models import RUNS_CODE, all_models

    for m in all_models():
        J = f"{m.sectors} goods" if m.sectors else "J sectors (sectors: 2..10)"
        t = Table(title=f"{m.name}: {m.title} ({m.source}; {m.doc}); {J}", title_justify="left")
        for col in ("parameter", "meaning", "range", "default", "units"):
            t.add_column(col)
        for p in m.params:
            name = p.name.replace("{j}", "j") + (
                f" (alias {', '.join(a.replace('{j}', 'j') for a in p.aliases)})"
                if p.aliases else ""
            )  # fmt: skip
            t.add_row(name, p.meaning.replace("{j}", "j"), p.bounds_text(),
                      "" if p.default is None else f"{p.default:g}", p.units)  # fmt: skip
        console.print(t)
        console.print(
            f"  equilibria: {', '.join(m.labels(2 if m.sectors is None else m.sectors))}"
            + (" (for J = 2)" if m.sectors is None else "")
            + f"; claims: {', '.join(m.claim_labels())}; figures: {', '.join(m.figures)}\n",
            highlight=False,
        )
    console.print(f"note: {RUNS_CODE}", highlight=False, markup=False)


@app.command()
def new(
    model: Annotated[str, typer.Argument(help="a registered model (see `marshall models`)")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="write the config here (default: stdout)", callback=cli_path
        ),
    ] = None,
    sectors: Annotated[int, typer.Option(help="J, for the sector models")] = 2,
):
    """Write a commented starter config for a model."""
    from .models import ModelNotFound, get
    from .starter import starter_config

    try:
        m = get(model)
    except ModelNotFound as exc:
        _fail(str(exc), 2)
    text = starter_config(m, model, sectors)
    if output is None:
        typer.echo(text, nl=False)
        return
    if output.exists():
        _fail(f"{output} exists; choose another file (marshall does not overwrite it)", 2)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
    except OSError as exc:
        _fail(os_error_text(exc, str(output)), 2)
    console.print(
        f"wrote {output}; edit it, then `marshall plan {output}`", highlight=False, markup=False
    )


from .cli_query import register as _register_query  # noqa: E402

_register_query(app)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
