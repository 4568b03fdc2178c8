r"""``marshall explore CUBE``: the page served by a Bokeh server on loopback.

The cube is opened once, lazily (``pipeline.open_cube``); each browser session gets its
own :class:`~pipeline.explore.page.Page`. A widget change computes that state's updates
(:meth:`Page.slice_updates` reads one 2-D slice through ``ds.marshall.slice2d``, never
the whole cube) and assigns them; a click reads one grid point
(``ds.marshall.at``/``transition``/``point``). Sliders act on release
(``value_throttled``), so dragging across many values reads one slice, not each.

The server binds to ``127.0.0.1`` unless told otherwise and accepts websocket
connections only from the page it serves (its own host and port).
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import xarray as xr

from .page import Page, apply
from .slices import SlabCache, transition_rows

DEFAULT_PORT = 5006


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def session(ds: xr.Dataset, name: str, page_kw: Mapping[str, Any]) -> Callable:
    """The Bokeh ``modify_doc`` of one browser session."""

    def modify_doc(doc) -> None:
        page = Page(ds, name, **page_kw)
        _prime_complete(page, ds)
        apply(page.state_updates())
        if page.cube.has_transition:
            show_point(page, ds, page.centre()[1])
        cube = page.cube
        state = {"scales": {}}

        def redraw(axes: bool) -> None:
            a, b = cube.ordered(page.x, page.y)
            idx = {d: page.idx[d] for d in cube.others(a, b)}
            up, state["scales"] = page.slice_updates(a, b, idx)
            if axes:
                up += page.axes_updates(page.x, page.y)
            up += page.view_updates(page.x, page.y, idx, page.view, state["scales"])
            apply(up)
            _watch_taps(page, ds, name)

        def on_axes(attr, old, new) -> None:
            x, y = page.xsel.value, page.ysel.value
            if x == y:
                page.msg.text = "choose two different dimensions for the x and y axes"
                return
            page.msg.text = ""
            page.x, page.y = x, y
            redraw(axes=True)

        def on_slider(d: str):
            def cb(attr, old, new) -> None:
                if new is None or int(new) == page.idx[d]:
                    return
                page.idx[d] = int(new)
                if d not in (page.x, page.y):
                    redraw(axes=False)

            return cb

        def on_view(attr, old, new) -> None:
            page.view = new
            a, b = cube.ordered(page.x, page.y)
            idx = {d: page.idx[d] for d in cube.others(a, b)}
            apply(page.view_updates(page.x, page.y, idx, new, state["scales"]))

        page.xsel.on_change("value", on_axes)
        page.ysel.on_change("value", on_axes)
        page.wsel.on_change("value", on_view)
        for d, s in page.sliders.items():
            s.on_change("value_throttled", on_slider(d))
        a, b = cube.ordered(page.x, page.y)
        idx = {d: page.idx[d] for d in cube.others(a, b)}
        state["scales"] = page.slice_updates(a, b, idx)[1]
        _watch_taps(page, ds, name)
        doc.title = f"marshall explore: {name}"
        doc.add_root(page.layout)

    return modify_doc


def _prime_complete(page: Page, ds: xr.Dataset) -> None:
    """A finished cube names its regimes in its attributes: index them all up front."""
    if not ds.attrs.get("complete"):
        return
    names = ds.marshall.regime_names()  # from the stored labels: no data read
    codes = np.array(sorted(names), dtype=np.int64)
    page.regimes.index(codes, np.ones(codes.shape, bool))
    pal = page.regimes.palette
    page.phase_mapper.palette = pal
    page.phase_mapper.high = len(pal) - 0.5
    page.fmt_regime.args = {"names": list(page.regimes.names)}


def _watch_taps(page: Page, ds: xr.Dataset, name: str) -> None:
    """A click on a cell: that grid point's code line (and transitions, paths)."""
    cube = page.cube
    watched = page.__dict__.setdefault("_watched", set())
    shape = [cube.sizes[d] for d in cube.params]
    for key, (src, _) in page._sources.items():
        if key in watched:
            continue
        watched.add(key)

        def on_tap(attr, old, new, src=src) -> None:
            if not new:
                return
            pt = int(src.data["pt"][new[0]])
            multi = np.unravel_index(pt, shape)
            vals = {d: float(cube.values[d][i]) for d, i in zip(cube.params, multi, strict=True)}
            show_point(page, ds, vals)

        src.selected.on_change("indices", on_tap)


def show_point(page: Page, ds: xr.Dataset, vals: Mapping[str, float]) -> None:
    """Assign a grid point's updates, read through ``ds.marshall.transition``/``point``."""
    cube = page.cube
    call = {d: v for d, v in vals.items() if d in cube.call_dims}
    rows = transition_rows(ds.marshall.transition(**call)) if cube.has_transition else None
    paths = None
    if cube.has_paths:
        keep = ["x_path", "wage_path", "wage"] + (["a_hat"] if "a_hat" in ds else [])
        paths = ds.marshall.point(**call)[keep].compute()
    apply(page.point_updates(vals, rows, paths))


def serve(
    ds: xr.Dataset,
    name: str,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    announce: Callable[[str], None] | None = None,
    **page_kw: Any,
) -> None:
    """Serve the page of ``ds`` at ``http://host:port/`` until interrupted; ``port=0``
    picks a free one. The address is announced (printed) once the server listens."""
    from bokeh.application import Application
    from bokeh.application.handlers.function import FunctionHandler
    from bokeh.server.server import Server

    # fail before serving (unknown dims, too few, bad --at), and warm up: imports, the
    # store's metadata and the first slab, so the first page is drawn from memory
    page_kw = dict(page_kw, cache=SlabCache())
    warm = Page(ds, name, **page_kw)
    warm.state_updates()
    page_kw["cache"].wait()
    port = port or _free_port(host)
    origins = [f"{host}:{port}"] + ([f"localhost:{port}"] if host in ("127.0.0.1", "::1") else [])
    server = Server(
        {"/": Application(FunctionHandler(session(ds, name, page_kw)))},
        address=host,
        port=port,
        allow_websocket_origin=origins,
        num_procs=1,
    )
    server.start()
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{server.port}/"
    (announce or (lambda s: print(s, flush=True)))(
        f"marshall explore: serving {name} at {url} (Ctrl-C stops)"
    )
    try:
        server.io_loop.start()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.stop()
