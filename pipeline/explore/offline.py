r"""``marshall explore CUBE --html FILE``: the page as one self-contained HTML file.

All of BokehJS (and its MathJax bundle, for the axis symbols) is inlined
(``bokeh.resources.INLINE``) and every state of the page is recorded in the document,
so the file works offline, from ``file://``, and makes no network request at all.

What is embedded: every slice of every pair of free dimensions (each at every grid
value of the others), every welfare view of each, and every grid point's
``ds.marshall.at(...)`` call (and, for dynamic cubes, its transitions and paths). The
cells drawn over all of that are ``C(d, 2) x N`` for ``d`` free dimensions of ``N``
points together -- on a refined cube, the points of its dense view, every one of which
is embedded (many more than were computed). A transition table is stored once however
many points show it (a refined cube's filled-in points show their computed point's).

The page's size is estimated before it is built (:func:`estimate`: one slice, its views
and a sample of points, serialized, times their counts, plus BokehJS). Over
:data:`MAX_CELLS` cells (or ``--max-cells``), or over :data:`BYTES_PER_CELL` bytes a cell
of that limit (so 100,000 cells: about 50 MB, whatever each point carries: transitions
and paths make a cell cost more), it is refused, naming the count, the size and the
fix: hold some dimensions at one value with ``--at dim=value`` (each removes a slider
and divides ``N`` by its length), or raise ``--max-cells``. Nothing is written on
refusal.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from .page import POINT_JS, STATE_JS, Page, apply
from .slices import Cube, ExploreError, rows_at, transition_arrays

#: most cells (over all embedded slices) an offline page holds by default
MAX_CELLS = 100_000
#: bytes a cell of the limit may cost: the page may be at most ``max_cells`` times this
#: (with BokehJS on top), so the default limit is a page of about 50 MB
BYTES_PER_CELL = 500
#: points whose click updates are serialized to estimate the rest
SAMPLE_POINTS = 64


def _fix(cube: Cube) -> str:
    longest = sorted(cube.free, key=lambda d: -cube.sizes[d])
    eg = (
        " ".join(f"--at {d}={float(cube.values[d][cube.sizes[d] // 2]):.6g}" for d in longest[2:3])
        or f"--at {longest[0]}={float(cube.values[longest[0]][0]):.6g}"
    )
    return f"hold dimensions at one value with --at, e.g. {eg}, or raise --max-cells"


def check_size(cube: Cube, max_cells: int) -> None:
    """Refuse a page over ``max_cells`` cells, naming the limit and the ``--at`` fix."""
    n = cube.n_cells()
    if n <= max_cells:
        return
    pairs = len(cube.pairs())
    raise ExploreError(
        f"an offline page of this cube would embed {n:,} cells ({pairs} pair(s) of axes x "
        f"{n // pairs:,} points over {', '.join(f'{d} ({cube.sizes[d]})' for d in cube.free)})"
        f", over the limit of {max_cells:,} (--max-cells): {_fix(cube)}"
    )


def check_bytes(cube: Cube, size: PageSize, max_cells: int) -> None:
    """Refuse a page whose estimated data (``size.data``: what its cells and points
    embed) is over ``max_cells * BYTES_PER_CELL``, naming both and the fix."""
    limit = max_cells * BYTES_PER_CELL
    if size.data <= limit:
        return
    n = cube.n_cells()
    raise ExploreError(
        f"an offline page of this cube would be about {mb(size.total)}: {n:,} cells at "
        f"{size.data / n:,.0f} bytes each (with what every point carries: its transitions, "
        f"paths), {mb(size.data)} over all, over the limit of {mb(limit)} ({max_cells:,} "
        f"cells (--max-cells) at {BYTES_PER_CELL} bytes each): {_fix(cube)}"
    )


def mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def _needed(cube: Cube) -> list[str]:
    keep = list(cube.vars) + list(cube.transition_vars)
    if cube.refined:  # the dense view's ``level`` (what marks it refined)
        keep.append("level")
    for v in ("x_path", "wage_path", "a_hat"):
        if v in cube.ds:
            keep.append(v)
    return list(dict.fromkeys(keep))


def offline_page(
    ds: xr.Dataset,
    name: str,
    at: Mapping[str, float] | None = None,
    x: str | None = None,
    y: str | None = None,
    max_cells: int = MAX_CELLS,
    announce: Callable[[int], None] | None = None,
) -> Page:
    """A :class:`Page` with every state recorded in the document (see the module
    docstring); raises :class:`ExploreError` over ``max_cells`` (cells, or their bytes).
    ``announce``: called with the estimated size (bytes) before the page is built."""
    from bokeh.models import CustomJS

    cube = Cube(ds, at)
    check_size(cube, max_cells)
    # only the part of the cube the page shows, in memory (held dims keep length 1)
    held = {d: [i] for d, i in cube.fixed_idx.items() if cube.sizes[d] > 1}
    mem = ds[_needed(cube)].isel(held).load()
    page = Page(mem, name, at=at, x=x, y=y)
    cube = page.cube
    _prime(page, mem)
    page.size_estimate = estimate(page, mem)
    check_bytes(cube, page.size_estimate, max_cells)
    if announce is not None:
        announce(page.size_estimate.total)

    s1: dict[str, list] = {}
    scales: dict[str, dict] = {}
    for a, b in cube.pairs():
        for idx in cube.states(a, b):
            key = cube.key(a, b, idx)
            s1[key], scales[key] = page.slice_updates(a, b, idx)
    s2, s3 = {}, {}
    for a, b in cube.pairs():
        for x_, y_ in ((a, b), (b, a)):
            s2[f"{x_}|{y_}"] = page.axes_updates(x_, y_)
            for idx in cube.states(a, b):
                key = cube.key(a, b, idx)
                for v in cube.views:
                    s3[f"{x_}|{y_}|{key}|{v.key}"] = page.view_updates(
                        x_, y_, idx, v.key, scales[key]
                    )
    s4, t4, tables = _points(page, mem)

    state = CustomJS(
        args=dict(
            xsel=page.xsel,
            ysel=page.ysel,
            wsel=page.wsel,
            sliders=page.sliders,
            free=list(cube.free),
            order=list(cube.params),
            s1=s1,
            s2=s2,
            s3=s3,
            msg=page.msg,
            same="choose two different dimensions for the x and y axes",
        ),
        code=STATE_JS,
    )
    for w in (page.xsel, page.ysel, page.wsel):
        w.js_on_change("value", state)
    for s in page.sliders.values():
        s.js_on_change("value", state)
    table = page.transition_div if cube.has_transition else None
    for src, _ in page._sources.values():
        src.selected.js_on_change(
            "indices",
            CustomJS(args=dict(src=src, s4=s4, t4=t4, tables=tables, table=table), code=POINT_JS),
        )
    # the initial state, as the glue would set it
    a, b = cube.ordered(page.x, page.y)
    idx = {d: page.idx[d] for d in cube.others(a, b)}
    key = cube.key(a, b, idx)
    apply(s1[key])
    apply(s2[f"{page.x}|{page.y}"])
    apply(s3[f"{page.x}|{page.y}|{key}|{page.view}"])
    pt = page.centre()[0]
    apply(s4[pt])
    if table is not None:
        table.text = tables[int(t4[pt])]
    return page


def _prime(page: Page, mem: xr.Dataset) -> None:
    """Index every regime of the (in-memory) cube up front: the offline page's palette
    is fixed, whichever slice is shown first."""
    codes = np.asarray(mem["regime"].values).ravel()
    done = np.asarray(mem["done"].values, bool).ravel() if "done" in mem else None
    page.regimes.index(codes, np.ones(codes.shape, bool) if done is None else done)
    pal = page.regimes.palette
    page.phase_mapper.palette = pal
    page.phase_mapper.high = len(pal) - 0.5
    page.fmt_regime.args = {"names": list(page.regimes.names)}


def _point(page: Page, mem: xr.Dataset, arrays: Mapping, pt: int) -> list:
    """The click updates of grid point ``pt`` (its flat index)."""
    cube = page.cube
    shape = [cube.sizes[d] for d in cube.params]
    multi = np.unravel_index(pt, shape)
    vals = {d: float(cube.values[d][i]) for d, i in zip(cube.params, multi, strict=True)}
    rows = rows_at(cube, arrays, pt) if arrays else None
    paths = None
    if cube.has_paths:
        paths = mem[["x_path", "wage_path", "wage"] + (["a_hat"] if "a_hat" in mem else [])]
        paths = paths.isel(dict(zip(cube.params, map(int, multi), strict=True)))
    return page.point_updates(vals, rows, paths)


def _split_table(page: Page, updates: list) -> tuple[list, str | None]:
    """``(updates but the transition table, the table's HTML or None)``."""
    if not page.cube.has_transition:
        return updates, None
    table = page.transition_div
    rest = [u for u in updates if u[0] is not table]
    html = next((u[2] for u in updates if u[0] is table), None)
    return rest, html


def _points(page: Page, mem: xr.Dataset) -> tuple[list[list], np.ndarray, list[str]]:
    """Every grid point's click updates (a list indexed by its flat index) but the
    transition table; the index of each point's table in the list of distinct tables,
    and that list (a refined cube's filled-in points share their computed point's)."""
    cube = page.cube
    n = int(np.prod([cube.sizes[d] for d in cube.params]))
    arrays = transition_arrays(cube, mem) if cube.has_transition else {}
    out, t4, index = [], np.zeros(n, np.int32), {}
    for pt in range(n):
        ups, html = _split_table(page, _point(page, mem, arrays, pt))
        out.append(ups)
        if html is not None:
            t4[pt] = index.setdefault(html, len(index))
    return out, t4, list(index)


# ------------------------------------------------------------------------- size


def _bytes(obj) -> int:
    """About the bytes ``obj`` takes in the page's JSON (arrays base64-encoded, models
    as references), as Bokeh serializes it."""
    from bokeh.model import Model

    if isinstance(obj, np.ndarray):  # gzip, then base64 (bokeh.core.serialization.Buffer)
        import gzip

        from bokeh import settings

        level = settings.settings.compression_level()
        z = gzip.compress(np.ascontiguousarray(obj).tobytes(), compresslevel=level, mtime=1)
        return 4 * ((len(z) + 2) // 3) + 90
    if isinstance(obj, str):
        return len(obj.encode()) + 2 + obj.count('"') + obj.count("\\")
    if isinstance(obj, Model):
        return 20
    if isinstance(obj, dict):
        return 40 + sum(_bytes(str(k)) + _bytes(v) + 2 for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return 2 + sum(_bytes(v) + 1 for v in obj)
    return 12


@dataclass(frozen=True)
class PageSize:
    """An offline page's estimated size in bytes: ``fixed`` (BokehJS and the models:
    figures, widgets) and ``data`` (the recorded states and points: what grows with the
    cells)."""

    fixed: int
    data: int

    @property
    def total(self) -> int:
        return self.fixed + self.data


def _bundle_bytes(page: Page) -> int:
    """BokehJS as this page inlines it (the bundles its models need)."""
    from bokeh.embed.bundle import bundle_for_objs_and_resources
    from bokeh.resources import INLINE

    figs = [f for figs in page._figs.values() for f in (figs["phase"], figs["welfare"])]
    bundle = bundle_for_objs_and_resources([page.layout, *figs], INLINE)
    return sum(len(s) for s in bundle.js_raw) + sum(len(s) for s in bundle.css_raw)


def estimate(page: Page, mem: xr.Dataset) -> PageSize:
    """The offline page's size in bytes, estimated before it is built: one slice's
    updates and its views' (both orientations), and the click updates of a sample of
    points (``SAMPLE_POINTS``, evenly spread), serialized, times their counts; the
    distinct transition tables (a refined cube: its computed points); BokehJS."""
    cube = page.cube
    for p in cube.pairs():
        for x_, y_ in (p, p[::-1]):
            page.figures(x_, y_)
    slices = 0
    for a, b in cube.pairs():  # a state of each pair (pairs differ in cells a state)
        idx = next(cube.states(a, b))
        s1, scales = page.slice_updates(a, b, idx)
        s3 = [page.view_updates(x_, y_, idx, v.key, scales) for x_, y_ in ((a, b), (b, a))
              for v in cube.views]  # fmt: skip
        states = sum(1 for _ in cube.states(a, b))
        slices += states * (_bytes(s1) + _bytes(s3) + 60 * len(cube.views))
        if (a, b) == cube.ordered(page.x, page.y):
            slices += _bytes(s1)  # the shown state's cells are in their source too
    n = int(np.prod([cube.sizes[d] for d in cube.params]))
    arrays = transition_arrays(cube, mem) if cube.has_transition else {}
    sample = np.unique(np.linspace(0, n - 1, min(n, SAMPLE_POINTS)).astype(int))
    ups, tabs = [], []
    for pt in sample:
        u, html = _split_table(page, _point(page, mem, arrays, int(pt)))
        ups.append(_bytes(u))
        if html is not None:
            tabs.append(_bytes(html))
    points = n * (float(np.mean(ups)) + 12)
    if tabs:
        distinct = n
        if cube.refined and "computed" in mem:
            distinct = min(n, int(np.asarray(mem["computed"].values).sum()))
        points += distinct * float(np.mean(tabs))
    return PageSize(_bundle_bytes(page) + _models_bytes(page), int(slices + points))


def _models_bytes(page: Page) -> int:
    """The page's models themselves (figures, widgets, tools), serialized."""
    import json

    from bokeh.core.serialization import Serializer

    figs = [f for figs in page._figs.values() for f in (figs["phase"], figs["welfare"])]
    enc = Serializer(deferred=False).encode([page.layout, *figs])
    return len(json.dumps(enc, separators=(",", ":")))


def write_html(
    ds: xr.Dataset,
    path: str | os.PathLike,
    name: str,
    at: Mapping[str, float] | None = None,
    x: str | None = None,
    y: str | None = None,
    max_cells: int = MAX_CELLS,
    announce: Callable[[int], None] | None = None,
) -> Path:
    """Write the offline page of ``ds`` to ``path`` (atomically: nothing is written if
    anything fails). ``name``: the cube as the code line names it; ``announce``: called
    with the page's estimated size (bytes) before it is built."""
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    page = offline_page(ds, name, at=at, x=x, y=y, max_cells=max_cells, announce=announce)
    text = file_html(page.layout, INLINE, title=f"marshall explore: {name}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
