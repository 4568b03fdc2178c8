"""Commands that read cubes: ``marshall query``, ``claims``, ``plot``, ``figures``, ``report``.

Thin over :mod:`pipeline.query`, :mod:`pipeline.figures` and :mod:`pipeline.report`;
added to the ``marshall`` app by :func:`register`. Exit codes: 0 fine, 1 a claim of the
paper fails where its assumptions hold (``claims``), 2 a usage error (unknown cube,
dimension, expression, ...), with the reason on stderr.
"""

from __future__ import annotations

import json
import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from .paths import cli_path
from .term import console as _console
from .term import quote as escape

console = _console(soft_wrap=True)
err = _console(stderr=True, soft_wrap=True)

PLOT_SUFFIXES = (".png", ".svg", ".pdf")


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


CubeArg = Annotated[Path, typer.Argument(help="cube (zarr store)", callback=cli_path)]
AtOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--at",
        help="fix a parameter at a grid value: k=v (repeat, or k=v,k2=v2); the nearest "
        "grid point inside the grid (see --nearest)",
    ),
]
NearestOpt = Annotated[
    bool,
    typer.Option(
        "--nearest", help="take the nearest grid point also for values outside the grid (its edge)"
    ),  # fmt: skip
]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table, csv or json")]


def _fail(msg: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {escape(msg)}", highlight=False)
    raise typer.Exit(code)


def _open(cube: Path):
    from . import query as _query  # noqa: F401  (registers ds.marshall)
    from .store import open_cube

    try:
        return open_cube(cube)
    except (FileNotFoundError, ValueError, OSError) as exc:
        _fail(f"{exc}")


def parse_at(items: list[str] | None) -> dict[str, float]:
    """``["r_1=2", "theta_1=3,theta_2=2"]`` -> ``{"r_1": 2.0, ...}`` (exit 2 if malformed)."""
    out: dict[str, float] = {}
    for item in items or []:
        for part in item.split(","):
            if not part.strip():
                continue
            k, sep, v = part.partition("=")
            if not sep or not k.strip():
                _fail(f"--at {part!r}: expected NAME=VALUE, e.g. --at theta_2=2.0")
            try:
                out[k.strip()] = float(v)
            except ValueError:
                _fail(f"--at {part!r}: {v!r} is not a number")
    return out


def _num(v: Any) -> Any:
    """JSON-safe value (NaN -> null, numpy -> python)."""
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return _num(obj)


def _cell(v: Any) -> str:
    v = _num(v)
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}"
    return escape(str(v))


def _emit_json(obj: Any) -> None:
    """Machine-readable output: plain JSON on stdout (never wrapped or styled)."""
    typer.echo(json.dumps(_jsonable(obj), indent=2))


def _print_df(df, title: str | None, fmt: Format, index: bool = True) -> None:
    if fmt is Format.csv:
        typer.echo(df.to_csv(index=index), nl=False)
        return
    if fmt is Format.json:
        records = df.reset_index().to_dict("records") if index else df.to_dict("records")
        _emit_json(records)
        return
    t = Table(title=title, title_justify="left")
    cols = ([df.index.name or ""] if index else []) + [str(c) for c in df.columns]
    for c in cols:
        t.add_column(c, justify="left")
    for idx, row in df.iterrows():
        t.add_row(*(([_cell(idx)] if index else []) + [_cell(v) for v in row.values]))
    console.print(t)


def _coords_line(coords: dict) -> str:
    return ", ".join(f"{k} = {_cell(v)}" for k, v in coords.items())


# ------------------------------------------------------------------------ query


def query(
    cube: CubeArg,
    at: AtOpt = None,
    where: Annotated[
        str | None,
        typer.Option(
            "--where",
            help="points where an expression holds, e.g. \"theta_1 > 2 and exists['C2']\"",
        ),
    ] = None,
    summary: Annotated[
        bool, typer.Option("--summary", help="regime shares (of the --where points, if given)")
    ] = False,
    fmt: FormatOpt = Format.table,
    limit: Annotated[int, typer.Option(help="rows of --where points to list (0: all)")] = 20,
    nearest: NearestOpt = False,
):
    """Look into a cube: a summary with regime shares (default), the equilibria at a grid
    point (--at), or the points where an expression holds (--where)."""
    import pandas as pd

    from .query import QueryError
    from .query.tables import per_target

    if limit < 0:
        _fail(f"--limit must be >= 0 (0: every matching point); got {limit}")
    ds = _open(cube)
    acc = ds.marshall
    params = parse_at(at)
    method = "nearest" if nearest else None
    if params and where:
        _fail("give --at (one point) or --where (a set of points), not both")
    try:
        if params:
            df = acc.at(method=method, **params)
            a = df.attrs
            has_tr = bool(per_target(ds))
            if fmt is Format.json:
                out = {k: v for k, v in a.items()} | {
                    "equilibria": df.reset_index().to_dict("records")
                }
                if has_tr:
                    out["transition"] = (
                        acc.transition(method=method, **params).reset_index().to_dict("records")
                    )
                _emit_json(out)
                return
            if fmt is Format.csv:  # one row per equilibrium, with the point's coordinates
                flat = df.reset_index()
                for k, v in reversed(list(a["coords"].items())):
                    flat.insert(0, k, v)
                _print_df(flat, None, fmt, index=False)
                return
            if fmt is Format.table:
                console.print(
                    f"[bold]{escape(str(cube))}[/] at the grid point "
                    f"{escape(_coords_line(a['coords']))}",
                    highlight=False,
                )
                for d, (asked, used) in a["snapped"].items():
                    console.print(
                        f"[yellow]note:[/] {d} = {asked:.6g} is not on the grid; the nearest grid "
                        f"point {d} = {used:.6g} is shown",
                        highlight=False,
                    )
                if not a["done"]:
                    console.print("[yellow]this point is not computed yet[/]")
                elif a.get("computed") is False:
                    console.print(
                        f"[yellow]note:[/] a refined cube: this point was not computed; it "
                        f"shows its nearest point computed at level {a['level']} (exact for "
                        "the refined outputs away from knife-edges)",
                        highlight=False,
                    )
                else:
                    console.print(
                        f"regime [bold]{a['regime']}[/]; {a['n_equilibria']} "
                        f"equilibria, {a['n_stable']} stable; best {a['best']}, worst "
                        f"{a['worst']}" + ("; [yellow]knife-edge[/]" if a["knife_edge"] else ""),
                        highlight=False,
                    )
            _print_df(df, "equilibria", fmt)
            if a["claims"]:
                console.print(
                    "claims here: " + ", ".join(f"{c} {v}" for c, v in a["claims"].items()),
                    highlight=False,
                )
            if has_tr:
                _print_df(
                    acc.transition(method=method, **params), "transition (per target sector k)",
                    fmt,
                )  # fmt: skip
            return
        if where and not summary:
            mask = acc.where(where)
            pts = acc.points(mask, limit=limit or None)
            n, total = pts.attrs["matches"], int(acc.done.sum())
            if fmt is Format.table:
                console.print(
                    f"{n:,} of {total:,} computed points satisfy {where!r}"
                    + (f"; the first {len(pts)}:" if n > len(pts) else ":"),
                    highlight=False,
                    markup=False,
                )
            if fmt is Format.json:
                _emit_json(
                    {
                        "expression": where,
                        "matches": n,
                        "computed": total,
                        "points": pts.to_dict("records"),
                    }
                )
                return
            _print_df(pts, None, fmt, index=False)
            return
        # summary
        shares = acc.regime_share(where=where) if where else acc.regime_share()
        s = acc.summary()
        n = acc.count(where) if where else s["done"]
        counts = (shares * shares.attrs.get("counted", n)).round().astype("int64")
        table = pd.DataFrame({"share": shares, "points": counts})
        if fmt is Format.json:
            _emit_json(
                s
                | {
                    "where": where,
                    "matches": n,
                    "regime_share": {k: float(v) for k, v in shares.items()},
                }
            )
            return
        if fmt is Format.csv:
            _print_df(table, None, fmt)
            return
        m = acc.decl()
        J = f", J = {s['sectors']}" if m is None or m.sectors is None else ""
        console.print(
            f"[bold]{escape(str(cube))}[/]: model {escape(s['model'])}{J}"
            + (f" -- {escape(s['description'])}" if s["description"] else ""),
            highlight=False,
        )
        for d, v in s["dims"].items():
            console.print(
                f"  {d:<10} {v['size']:>6} values  {_cell(v['min'])} .. "
                f"{_cell(v['max'])} ({v['spacing']})",
                highlight=False,
            )
        for d, v in s["sampled"].items():
            console.print(
                f"  {d:<10} sampled {v['distribution']}: {_cell(v['min'])} .. {_cell(v['max'])}",
                highlight=False,
            )
        if s["design"]:
            console.print(f"  design: {json.dumps(s['design'])}", highlight=False)
        if s["fixed"]:
            console.print("  fixed: " + _coords_line(s["fixed"]), highlight=False)
        console.print(
            f"  computed {s['done']:,} of {s['points']:,} points"
            + ("" if s["complete"] else " [yellow](not complete)[/]")
            + f"; knife-edge {s['knife_edge']:,}; multiple stable equilibria "
            f"{s['multiple']:,}",
            highlight=False,
        )
        title = (
            f"regime {shares.name}"
            + (f" where {where}" if where else "")
            + f" ({shares.attrs.get('counted', n):,} points)"
        )
        _print_df(table.assign(share=[f"{v:.2%}" for v in shares]), title, fmt)
    except QueryError as exc:
        _fail(str(exc))


# ----------------------------------------------------------------------- claims


def claims(
    cube: CubeArg,
    examples: Annotated[int, typer.Option(help="counterexamples per failing claim")] = 3,
    fmt: FormatOpt = Format.table,
):
    """Check the paper's claims over a cube: exit 1 if a claim fails at a computed point
    where its assumptions hold."""
    from .query import QueryError

    ds = _open(cube)
    acc = ds.marshall
    try:
        df = acc.claims(examples=examples)
    except QueryError as exc:
        _fail(str(exc))
    failed = df[df["failed"] > 0]
    if fmt is Format.json:
        _emit_json(
            {"cube": str(cube), "ok": failed.empty, "claims": df.reset_index().to_dict("records")}
        )
    elif fmt is Format.csv:
        _print_df(df.assign(examples=[json.dumps(_jsonable(e)) for e in df["examples"]]), None, fmt)
    else:
        t = Table(title=f"claims of the paper over {cube}", title_justify="left")
        for c in ("claim", "statement", "checked", "held", "failed", "result"):
            t.add_column(c, justify="right" if c in ("checked", "held", "failed") else "left")
        for lab, r in df.iterrows():
            if r["checked"] == 0:
                res = "[dim]not applicable[/]"
            elif r["failed"]:
                res = "[bold red]FAILS[/]"
            else:
                res = "[green]holds[/]"
            t.add_row(
                str(lab),
                r["statement"],
                f"{r['checked']:,}",
                f"{r['held']:,}",
                f"{r['failed']:,}",
                res,
            )
        console.print(t)
        for lab, r in failed.iterrows():
            console.print(f"claim {lab} fails at {r['failed']:,} points, e.g.:", highlight=False)
            for ex in r["examples"]:
                console.print("  " + _coords_line(ex), highlight=False)
        if int(df["checked"].sum()) == 0:
            m = acc.decl()
            console.print(
                "no computed point satisfies the claims' assumptions (see "
                f"{m.doc + '-claims' if m else 'docs/models.md'}: e.g. r_j and r_j/theta_j "
                "decreasing, L_S >= max Lbar_j, not knife-edge)",
                highlight=False,
            )
        m = acc.decl()
        if m is not None and m.claims_note:
            console.print(f"note: {m.claims_note}", highlight=False)
        if not ds.attrs.get("complete"):
            console.print("[yellow]the cube is not complete: only computed points were checked[/]")
    if not failed.empty:
        err.print(
            f"[bold red]claims failing where their assumptions hold:[/] "
            f"{', '.join(str(x) for x in failed.index)}",
            highlight=False,
        )
        raise typer.Exit(1)


# ------------------------------------------------------------------------- plot


def _save(obj, output: Path, dpi: int) -> None:
    from . import figures

    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        figures.save(obj, output, dpi=dpi)
    except OSError as exc:
        from .cli import os_error_text

        _fail(os_error_text(exc, str(output)))


def plot(
    cube: CubeArg,
    kind: Annotated[
        str,
        typer.Argument(
            help="phase, welfare, income-gap, paths, or a figure of the cube's model (e.g. ppf)"
        ),
    ],  # fmt: skip
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="image file: .png, .svg or .pdf", callback=cli_path),
    ],
    x: Annotated[
        str | None, typer.Option("--x", help="swept dim on the x axis (default: the first)")
    ] = None,
    y: Annotated[
        str | None, typer.Option("--y", help="swept dim on the y axis (default: the next)")
    ] = None,
    at: AtOpt = None,
    equilibrium: Annotated[
        str | None, typer.Option(help="income-gap: equilibrium label (model's default)")
    ] = None,
    dpi: Annotated[int, typer.Option(help="resolution of png output")] = 150,
):
    """Draw a figure of a cube into an image file (format from the suffix). Swept
    dimensions not on an axis are fixed at their first value (maps) or the middle of
    their axis (paths, ppf) unless given with --at; a note says which value was used."""
    import matplotlib

    matplotlib.use("Agg")
    from . import figures
    from .query import QueryError

    if output.suffix.lower() not in PLOT_SUFFIXES:
        _fail(
            f"output {output}: unknown image format {output.suffix!r}; use "
            f"{', '.join(PLOT_SUFFIXES)}"
        )
    ds = _open(cube)
    params = parse_at(at)
    notes: list[str] = []
    try:
        obj = figures.plot_kind(ds, kind, x=x, y=y, at=params, equilibrium=equilibrium,
                                fill=True, notes=notes)  # fmt: skip
    except QueryError as exc:
        _fail(str(exc))
    for note in notes:
        err.print(f"note: {note} (choose with --at)", highlight=False, markup=False)
    _save(obj, output, dpi)
    console.print(f"wrote {output}", highlight=False, markup=False)


def figures_cmd(
    cube: CubeArg,
    outdir: Annotated[
        Path, typer.Option("--dir", "-d", help="folder for the figures", callback=cli_path)
    ],
    fmt: Annotated[str, typer.Option("--format", help="png, svg or pdf")] = "png",
    dpi: Annotated[int, typer.Option(help="resolution of png output")] = 150,
):
    """Draw every standard figure of a cube (its model's list) into a folder, in one
    process: DIR/<kind>.<format>."""
    import matplotlib

    matplotlib.use("Agg")
    from . import figures
    from .query import QueryError

    if "." + fmt.lower() not in PLOT_SUFFIXES:
        _fail(f"--format {fmt!r}: use one of png, svg, pdf")
    ds = _open(cube)
    kinds = figures.figure_kinds(ds)
    for kind in kinds:
        try:
            obj = figures.plot_kind(ds, kind)
        except QueryError as exc:
            _fail(f"{kind}: {exc}")
        _save(obj, outdir / f"{kind}.{fmt.lower()}", dpi)
    console.print(
        f"wrote {len(kinds)} figures to {outdir}: {', '.join(kinds)}", highlight=False, markup=False
    )


# ------------------------------------------------------------------ analyses


class Method(StrEnum):
    sobol = "sobol"
    delta = "delta"
    pawn = "pawn"


def sensitivity(
    cube: CubeArg,
    output: Annotated[
        str, typer.Option("--output", help="an expression per point, e.g. \"exists['C2']\"")
    ],
    given: Annotated[
        str | None,
        typer.Option("--given", help="only where this holds, e.g. \"regime == 'B1+C1+C2'\""),
    ] = None,
    method: Annotated[Method, typer.Option(help="sobol (Saltelli designs), delta or pawn")] = (
        Method.sobol
    ),
    fmt: FormatOpt = Format.table,
    seed: Annotated[int, typer.Option(help="seed of the bootstrap intervals")] = 0,
    resamples: Annotated[int, typer.Option(help="bootstrap resamples")] = 100,
):
    """Sensitivity indices of an output over the parameters that vary (SALib)."""
    from .query import QueryError

    ds = _open(cube)
    try:
        df = ds.marshall.sensitivity(output, given=given, method=method.value, seed=seed,
                                     num_resamples=resamples)  # fmt: skip
    except QueryError as exc:
        _fail(str(exc))
    for w in df.attrs.get("warnings", []):  # e.g. inputs dependent under --given
        err.print(f"[bold yellow]warning:[/] {escape(w)}", highlight=False)
    if fmt is Format.json:
        _emit_json(
            {
                "output": output,
                "given": given,
                "method": method.value,
                "n": df.attrs.get("n"),
                "warnings": df.attrs.get("warnings", []),
                "indices": df.reset_index().to_dict("records"),
            }
        )
        return  # fmt: skip
    title = f"{method.value} indices of {output}" + (f" where {given}" if given else "")
    title += f" ({df.attrs.get('n', '?'):,} points)" if isinstance(df.attrs.get("n"), int) else ""
    _print_df(df.rename_axis("parameter"), title, fmt)


def discover(
    cube: CubeArg,
    where: Annotated[str, typer.Option("--where", help="the condition, e.g. \"exists['C2']\"")],
    threshold: Annotated[float, typer.Option(help="least density of the chosen box")] = 0.8,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="figure of the peeling trajectory", callback=cli_path),
    ] = None,
    fmt: FormatOpt = Format.table,
):
    """Scenario discovery (PRIM): the boxes of parameter space where a condition holds,
    with coverage and density along the peeling trajectory."""
    from .query import QueryError

    ds = _open(cube)
    try:
        res = ds.marshall.discover(where, threshold=threshold)
    except QueryError as exc:
        _fail(str(exc))
    if fmt is Format.json:
        _emit_json(
            {
                "where": where,
                "chosen": res.chosen,
                "coverage": res.coverage,
                "density": res.density,
                "mass": res.mass,
                "box": res.box.reset_index().to_dict("records"),
                "trajectory": res.trajectory.reset_index().to_dict("records"),
            }
        )
        return  # fmt: skip
    _print_df(res.trajectory, f"PRIM peeling trajectory where {where}", fmt)
    if fmt is Format.table:
        console.print(
            f"chosen box {res.chosen}: coverage {res.coverage:.3f}, density {res.density:.3f}, "
            f"mass {res.mass:.3f}" + ("" if res.meets_threshold else
                                      f" (no box reaches density {threshold})"),
            highlight=False,
        )  # fmt: skip
        _print_df(res.box, "the chosen box", fmt)
    if output is not None:
        import matplotlib

        matplotlib.use("Agg")
        from .analysis import plot_discovery

        log = [d for d in meta_sampled_log(ds)]
        _save(plot_discovery(res, log=log), output, 150)
        console.print(f"wrote {output}", highlight=False, markup=False)


def meta_sampled_log(ds) -> list[str]:
    """Parameters drawn on log scales (loguniform, or logspace axes)."""
    from .query import meta

    names = meta.sampled(ds) or meta.params(ds)
    return [d for d in names if ds[d].attrs.get("spacing") == "log"]


# ----------------------------------------------------------------------- report


def report(
    results: Annotated[
        Path, typer.Argument(help="results directory (with cubes/)", callback=cli_path)
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="markdown file", callback=cli_path)
    ] = Path("results/report.md"),
    figures_dir: Annotated[
        Path | None,
        typer.Option(
            "--figures", help="figures directory (default RESULTS/figures)", callback=cli_path
        ),
    ] = None,
    shares: Annotated[
        str, typer.Option(help="refined cubes: shares of 'area' or 'points'")
    ] = "area",
):
    """Write a markdown report: every cube's grid, regime shares, claims and figures."""
    from .report import build_report, find_cubes

    try:
        build_report(results, output, figures_dir, shares=shares)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    except OSError as exc:
        from .cli import os_error_text

        _fail(os_error_text(exc, str(output)))
    console.print(
        f"wrote {output} ({len(find_cubes(results))} cubes)", highlight=False, markup=False
    )


def register(app: typer.Typer) -> None:
    """Add ``query``, ``claims``, ``plot`` and ``report`` to the ``marshall`` app."""
    app.command("query")(query)
    app.command("claims")(claims)
    app.command("plot")(plot)
    app.command("figures")(figures_cmd)
    app.command("sensitivity")(sensitivity)
    app.command("discover")(discover)
    app.command("report")(report)
    try:
        from .explore.cli import register as _explore
    except ImportError:  # the browser page's libraries are not installed
        return
    _explore(app)
