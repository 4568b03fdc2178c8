"""``marshall report``: one markdown page over every cube of a results directory.

For each cube (``RESULTS/cubes/*.zarr``, or ``*.zarr`` directly in ``RESULTS``): its
model, description and grid, the share of the swept region in each regime (on a
refined cube the share of the area, i.e. of the finest grid, by default; ``shares=
"points"`` for the share of the computed points, which crowd near boundaries), the
paper's claims (checked / held / failed, with a counterexample where one fails) and
the figures found under ``RESULTS/figures/<cube name>/`` and the explorer page
``RESULTS/explore/<cube name>.html`` (linked relative to the
report). Only reads cubes and lists files; nothing is computed or drawn here.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from collections.abc import Sequence
from pathlib import Path

from . import query as _query  # noqa: F401  (registers ds.marshall)
from .query.meta import is_refined
from .store import open_cube

FIGURE_SUFFIXES = (".png", ".svg", ".pdf")


def find_cubes(results: Path) -> list[Path]:
    """Cube stores under ``results`` (``cubes/*.zarr`` and ``*.zarr``), sorted by name."""
    results = Path(results)
    found = {
        p.resolve(): p
        for pat in ("cubes/*.zarr", "*.zarr")
        for p in results.glob(pat)
        if (p / "zarr.json").is_file()
    }
    return sorted(found.values(), key=lambda p: p.stem)


def md_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table (cells escaped for ``|``)."""

    def cell(v: object) -> str:
        if isinstance(v, float):
            v = "" if math.isnan(v) else f"{v:.4g}"
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(cell(h) for h in header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def _range(d: dict) -> str:
    return f"{d['size']} values, {d['min']:.4g} .. {d['max']:.4g} ({d['spacing']})"


def _example(ex: dict) -> str:
    return ", ".join(
        f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}" for k, v in ex.items()
    )


def cube_section(
    path: Path,
    out_dir: Path,
    figures_dir: Path | None,
    explore_dir: Path | None = None,
    shares: str = "area",
) -> tuple[str, dict]:
    """Markdown section of one cube and a one-line summary for the overview table
    (``shares``: ``area`` or ``points``, see :func:`build_report`)."""
    ds = open_cube(path)
    acc = ds.marshall
    name = path.name.removesuffix(".zarr")
    s = acc.summary()
    lines = [f"## {name}", ""]
    if s["description"]:
        lines += [f"*{s['description']}*", ""]
    m = acc.decl()
    J = f", J = {s['sectors']}" if m is None or m.sectors is None else ""
    lines.append(
        f"- model: `{s['model']}`{J}; store `{os.path.relpath(path, out_dir)}`; "
        f"config hash `{ds.attrs.get('config_hash', '?')[:19]}`; created "
        f"{ds.attrs.get('created', '?')}"
    )
    lines.append("- swept: " + "; ".join(f"`{k}` ({_range(v)})" for k, v in s["dims"].items()))
    if s["fixed"]:
        lines.append(
            "- fixed: "
            + ", ".join(
                f"`{k}` = {v:g}" if isinstance(v, float) else f"`{k}` = {v}"
                for k, v in s["fixed"].items()
            )
        )
    share_mult = s["multiple"] / s["done"] if s["done"] else math.nan
    lines.append(
        f"- computed points: {s['done']:,} of {s['points']:,}"
        + ("" if s["complete"] else " (**not complete**)")
        + f"; knife-edge points: {s['knife_edge']:,}; multiple stable equilibria: "
        f"{s['multiple']:,} ({share_mult:.1%})"
    )
    lines.append("")
    share = acc.regime_share(of=shares)
    counted = share.attrs["counted"]
    refined = is_refined(ds)
    lines += ["### Regimes (sets of stable equilibria)", ""]
    if refined and shares == "area":
        lines += [
            f"*Shares of the area: all {counted:,} points of the finest grid, each computed "
            "or showing its nearest computed point (the refined sweep computed "
            f"{s['done']:,}, crowded near the boundaries; `marshall report --shares points` "
            "gives the shares of those).*",
            "",
        ]
    elif refined:
        lines += [
            f"*Shares of the {counted:,} computed points, which the refined sweep crowds "
            "near the boundaries: not shares of the area (`marshall report` gives those).*",
            "",
        ]
    what = "finest-grid points" if refined and shares == "area" else "points"
    head = share.attrs["caption"] if refined else "share of points"
    lines += [
        md_table(
            ["regime", head, what],
            [(r, f"{v:.2%}", round(v * counted)) for r, v in share.items()],
        ),
        "",
    ]
    claims = acc.claims(examples=1)
    n_failed = int(claims["failed"].sum())
    rows = []
    for lab, r in claims.iterrows():
        if r["checked"] == 0:
            result = "not applicable here"
        elif r["failed"]:
            result = "**FAILS** at " + _example(r["examples"][0]) if r["examples"] else "**FAILS**"
        else:
            result = "holds"
        rows.append((lab, r["statement"], r["checked"], r["held"], r["failed"], result))
    lines += [
        "### Claims of the paper (where their assumptions hold)",
        "",
        md_table(["claim", "statement", "checked", "held", "failed", "result"], rows),
        "",
    ]
    if m is not None and m.claims_note:
        lines += [f"*{m.claims_note}.*", ""]
    figs = []
    if figures_dir is not None and (figures_dir / name).is_dir():
        figs = sorted(p for p in (figures_dir / name).iterdir() if p.suffix in FIGURE_SUFFIXES)
    page = explore_dir / f"{name}.html" if explore_dir is not None else None
    if page is not None and page.is_file():
        lines += [f"Explore it in the browser: [{name}.html]({os.path.relpath(page, out_dir)}) "
                  "(a self-contained page, works offline)", ""]  # fmt: skip
    if figs:
        lines += ["### Figures", ""]
        for f in figs:
            rel = os.path.relpath(f, out_dir)
            lines.append(
                f"![{name}: {f.stem}]({rel})"
                if f.suffix != ".pdf"
                else f"- [{f.stem} (pdf)]({rel})"
            )
        lines.append("")
    top = share.idxmax() if len(share) else ""
    overview = {
        "cube": name,
        "model": s["model"] + J.replace(", ", " "),
        "points": f"{s['done']:,}/{s['points']:,}",
        "regimes": len(share),
        "most common regime": f"{top} ({share.max():.0%})" if top else "",
        "claims": ("FAIL (as expected)" if m is not None and m.claims_note else "FAIL")
        if n_failed
        else ("ok" if claims["checked"].sum() else "n/a"),
        "figures": len(figs),
    }
    return "\n".join(lines), overview


def build_report(
    results: str | Path,
    out: str | Path,
    figures_dir: str | Path | None = None,
    shares: str = "area",
) -> str:
    """Write the markdown report of every cube in ``results`` to ``out``; returns it.

    ``shares``: what a refined cube's regime shares are shares of: ``area`` (default;
    the finest grid, each point showing its nearest computed point) or ``points`` (the
    computed points, crowded near boundaries). Grid and design cubes: the same."""
    from .query.tables import SHARE_OF

    if shares not in SHARE_OF:
        raise ValueError(f"shares must be one of {', '.join(SHARE_OF)}; got {shares!r}")
    results, out = Path(results), Path(out)
    if not results.is_dir():
        raise FileNotFoundError(f"no results directory {results}")
    figures = Path(figures_dir) if figures_dir is not None else results / "figures"
    out.parent.mkdir(parents=True, exist_ok=True)
    out_dir = out.parent.resolve()
    cubes = find_cubes(results)
    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    parts, overview = [], []
    for c in cubes:
        text, row = cube_section(c.resolve(), out_dir, figures.resolve(),
                                 (results / "explore").resolve(), shares)  # fmt: skip
        parts.append(text)
        overview.append(row)
    head = [
        "# marshall report",
        "",
        f"{len(cubes)} cube(s) in `{results}`, generated {now}. Regimes are sets of "
        "stable equilibria; claims are the papers' claims checked by each model, counted at "
        "computed points where their assumptions hold (docs/models.md).",
        "",
    ]
    if overview:
        keys = list(overview[0])
        head += [md_table(keys, [[r[k] for k in keys] for r in overview]), ""]
    else:
        head += ["No cubes found: run `marshall run CONFIG` (or `snakemake`) first.", ""]
    text = "\n".join(head + parts).rstrip() + "\n"
    out.write_text(text)
    return text
