"""The ``marshall explore`` command: :func:`register` adds it to a Typer app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..paths import cli_path
from ..term import clean
from .offline import MAX_CELLS


def _fail(msg: str, code: int = 2) -> None:
    typer.echo(f"error: {clean(msg)}", err=True)
    raise typer.Exit(code)


def explore(
    cube: Annotated[Path, typer.Argument(help="cube (zarr store)", callback=cli_path)],
    html: Annotated[
        Path | None,
        typer.Option(
            "--html", help="write a self-contained offline page to this file", callback=cli_path
        ),
    ] = None,
    port: Annotated[int, typer.Option(help="port to serve on (0: any free port)")] = 5006,
    host: Annotated[str, typer.Option(help="address to serve on")] = "127.0.0.1",
    x: Annotated[str | None, typer.Option("--x", help="swept dim on the x axis")] = None,
    y: Annotated[str | None, typer.Option("--y", help="swept dim on the y axis")] = None,
    at: Annotated[
        list[str] | None,
        typer.Option("--at", help="hold a swept dim at its nearest grid value: k=v (repeat)"),
    ] = None,
    max_cells: Annotated[
        int, typer.Option(help="--html: most cells embedded over all slices")
    ] = MAX_CELLS,
):
    """Browse a cube in the browser: phase diagram, hover, welfare, transitions.

    Serves the page on loopback (printing its address) or, with --html, writes it as
    one file that works offline (no network request at all)."""
    from .. import query as _query  # noqa: F401  (registers ds.marshall)
    from ..cli_query import parse_at
    from ..store import open_cube
    from .slices import ExploreError

    params = parse_at(at)
    try:
        ds = open_cube(cube)
    except (FileNotFoundError, ValueError, OSError) as exc:
        _fail(str(exc))
    kw = dict(at=params, x=x, y=y)
    try:
        if html is not None:
            from .offline import mb, write_html

            def announce(size: int) -> None:
                typer.echo(f"writing {clean(html)}: about {mb(size)} (estimated)", err=True)

            path = write_html(ds, html, str(cube), max_cells=max_cells, announce=announce, **kw)
            typer.echo(f"wrote {clean(html)} ({mb(path.stat().st_size)})")
        else:
            from .server import serve

            serve(ds, str(cube), host=host, port=port, **kw)
    except ExploreError as exc:
        _fail(str(exc))


def register(app: typer.Typer) -> None:
    """Add ``explore`` to the ``marshall`` app."""
    app.command("explore")(explore)
