r"""``marshall explore CUBE --html FILE``: the page as one self-contained HTML file.

All of BokehJS (and its MathJax bundle, for the axis symbols) is inlined
(``bokeh.resources.INLINE``) and every state of the page is recorded in the document,
so the file works offline, from ``file://``, and makes no network request at all.

What is embedded: every slice of every pair of free dimensions (each at every grid
value of the others), every welfare view of each, and every grid point's
``ds.marshall.at(...)`` call (and, for dynamic cubes, its transitions and paths). The
cells drawn over all of that are ``C(d, 2) x N`` for ``d`` free dimensions of ``N``
points together. Above :data:`MAX_CELLS` (or ``--max-cells``) the page would be tens of
megabytes, so it is refused, naming the count and the fix: hold some dimensions at
one value with ``--at dim=value`` (each removes a slider and divides ``N`` by its
length), or raise ``--max-cells``. Nothing is written on refusal.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from .page import POINT_JS, STATE_JS, Page, apply
from .slices import Cube, ExploreError, rows_at, transition_arrays

#: most cells (over all embedded slices) an offline page holds by default (~500 B each)
MAX_CELLS = 100_000


def check_size(cube: Cube, max_cells: int) -> None:
    """Refuse a page over ``max_cells`` cells, naming the limit and the ``--at`` fix."""
    n = cube.n_cells()
    if n <= max_cells:
        return
    pairs = len(cube.pairs())
    longest = sorted(cube.free, key=lambda d: -cube.sizes[d])
    eg = (
        " ".join(f"--at {d}={float(cube.values[d][cube.sizes[d] // 2]):.6g}" for d in longest[2:3])
        or f"--at {longest[0]}={float(cube.values[longest[0]][0]):.6g}"
    )
    raise ExploreError(
        f"an offline page of this cube would embed {n:,} cells ({pairs} pair(s) of axes x "
        f"{n // pairs:,} points over {', '.join(f'{d} ({cube.sizes[d]})' for d in cube.free)})"
        f", over the limit of {max_cells:,} (--max-cells): hold dimensions at one value "
        f"with --at, e.g. {eg}, or raise --max-cells"
    )


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
) -> Page:
    """A :class:`Page` with every state recorded in the document (see the module
    docstring); raises :class:`ExploreError` over ``max_cells``."""
    from bokeh.models import CustomJS

    cube = Cube(ds, at)
    check_size(cube, max_cells)
    # only the part of the cube the page shows, in memory (held dims keep length 1)
    held = {d: [i] for d, i in cube.fixed_idx.items() if cube.sizes[d] > 1}
    mem = ds[_needed(cube)].isel(held).load()
    page = Page(mem, name, at=at, x=x, y=y)
    cube = page.cube
    _prime(page, mem)

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
    s4 = _points(page, mem)

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
    for src, _ in page._sources.values():
        src.selected.js_on_change("indices", CustomJS(args=dict(src=src, s4=s4), code=POINT_JS))
    # the initial state, as the glue would set it
    a, b = cube.ordered(page.x, page.y)
    idx = {d: page.idx[d] for d in cube.others(a, b)}
    key = cube.key(a, b, idx)
    apply(s1[key])
    apply(s2[f"{page.x}|{page.y}"])
    apply(s3[f"{page.x}|{page.y}|{key}|{page.view}"])
    apply(s4[str(page.centre()[0])])
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


def _points(page: Page, mem: xr.Dataset) -> dict[str, list]:
    """Every grid point's click updates, keyed by its flat index."""
    cube = page.cube
    shape = [cube.sizes[d] for d in cube.params]
    arrays = transition_arrays(cube, mem) if cube.has_transition else {}
    out = {}
    for pt in range(int(np.prod(shape))):
        multi = np.unravel_index(pt, shape)
        vals = {d: float(cube.values[d][i]) for d, i in zip(cube.params, multi, strict=True)}
        rows = rows_at(cube, arrays, pt) if arrays else None
        paths = None
        if cube.has_paths:
            paths = mem[["x_path", "wage_path", "wage"] + (["a_hat"] if "a_hat" in mem else [])]
            paths = paths.isel(dict(zip(cube.params, map(int, multi), strict=True)))
        out[str(pt)] = page.point_updates(vals, rows, paths)
    return out


def write_html(
    ds: xr.Dataset,
    path: str | os.PathLike,
    name: str,
    at: Mapping[str, float] | None = None,
    x: str | None = None,
    y: str | None = None,
    max_cells: int = MAX_CELLS,
) -> Path:
    """Write the offline page of ``ds`` to ``path`` (atomically: nothing is written if
    anything fails). ``name``: the cube as the code line names it."""
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    page = offline_page(ds, name, at=at, x=x, y=y, max_cells=max_cells)
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
