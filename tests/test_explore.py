"""``marshall explore``: the served page and the ``--html`` file, in a real browser.

Debian's Chromium, headless and kept off the network, driven by Playwright. Against both
pages: no console error and no request leaving loopback (``file:``/``data:``/``about:``
only for the file); a slider move changes the drawn image; hovering a known cell shows
exactly what ``ds.marshall.at`` gives there; other axes redraw with the right symbols;
screenshot pixels at sampled cells map back to the cube's regimes
(:func:`pipeline.colors.regime_color`); a partly computed cube shows grey "not computed".
Screenshots are kept under pytest's base temp dir (``explore-artifacts``).
"""

from __future__ import annotations

import io
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

from pipeline import colors, open_cube, parse_config, run
from pipeline.explore import ExploreError, offline_page, write_html
from pipeline.explore.slices import (
    NOT_COMPUTED,
    NOT_COMPUTED_COLOR,
    Cube,
    RegimeIndex,
    fmt,
    load_slice,
    slice_columns,
    unicode_symbol,
    view_palette,
    view_values,
)
from pipeline.models._spec import regime_name

from .cubes import DYNAMIC, INCREASING, build_cube, coordination, standard

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = next(
    (p for p in ("/usr/bin/chromium", shutil.which("chromium") or "") if p and os.path.exists(p)),
    None,
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
COORD = coordination(16, 12)
#: every wait on the browser or a process: a condition, with a deadline generous enough
#: for a loaded 2-core machine (a wait ends as soon as its condition holds)
WAIT_S = 120
WAIT_MS = WAIT_S * 1000
needs_browser = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium not found (/usr/bin/chromium): apt-get install chromium chromium-driver",
)


# ----------------------------------------------------------------------- cubes


@pytest.fixture(scope="module")
def coord(tmp_path_factory):
    return build_cube(tmp_path_factory, COORD, "coord")


@pytest.fixture(scope="module")
def dyn(tmp_path_factory):
    return build_cube(tmp_path_factory, DYNAMIC, "dyn")


@pytest.fixture(scope="module")
def partial(tmp_path_factory):
    text = COORD.replace("output: x.zarr", "chunks: {r_1: 4, theta_1: 4}\noutput: x.zarr")
    out = tmp_path_factory.mktemp("partial") / "partial.zarr"
    run(parse_config(text, output=out), workers=0, max_blocks=5)
    ds = open_cube(out)
    done = ds["done"].values
    assert 0 < done.sum() < done.size
    return ds, out


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    d = tmp_path_factory.getbasetemp() / "explore-artifacts"
    d.mkdir(exist_ok=True)
    return d


# --------------------------------------------------------------- no browser


def names_of(ds, sub) -> np.ndarray:
    bits = list(ds["regime"].attrs["regime_bits"])
    done = np.asarray(sub["done"].values, bool)
    reg = np.asarray(sub["regime"].values)
    out = np.vectorize(lambda c: regime_name(int(c), bits))(reg).astype(object)
    out[~done] = NOT_COMPUTED
    return out


def test_slice_columns_are_what_at_gives(coord):
    ds, _ = coord
    cube = Cube(ds)
    idx = {"theta_2": 1}
    sub = load_slice(cube, "r_1", "theta_1", idx)
    reg = RegimeIndex(cube.bits)
    cols, _ = slice_columns(cube, sub, "r_1", "theta_1", reg)
    n = ds.sizes["r_1"] * ds.sizes["theta_1"]
    assert all(len(v) == n for v in cols.values())
    rng = np.random.default_rng(0)
    for i in rng.choice(n, 12, replace=False):
        at = {d: float(cols[f"p{n}"][i]) for n, d in enumerate(cube.params)}
        df = ds.marshall.at(**at)
        assert df.attrs["coords"]["theta_2"] == 2.0
        assert reg.names[cols["ci"][i]] == df.attrs["regime"]
        assert bool(cols["knife"][i]) == df.attrs["knife_edge"]
        assert cube.labels[cols["best"][i]] == df.attrs["best"]
        for j, (lab, row) in enumerate(df.iterrows()):
            assert lab == cube.labels[j]
            assert bool(cols[f"ex{j}"][i]) == row.exists
            assert bool(cols[f"st{j}"][i]) == row.stable
            assert cols[f"rk{j}"][i] == row["rank"]
            np.testing.assert_equal(cols[f"w{j}"][i], row.wage)
        cl = ds["claims"].sel({d: at[d] for d in cube.params})
        for j, v in enumerate(cl.values):
            assert cols[f"cl{j}"][i] == v
        # the flat index is the point's place in the cube (C order over the params)
        multi = np.unravel_index(int(cols["pt"][i]), [ds.sizes[d] for d in cube.params])
        assert {d: float(ds[d].values[j]) for d, j in zip(cube.params, multi)} == at


def test_slab_cache_reads_each_chunk_block_once(partial):
    """Slider steps inside one chunk read nothing new once its slab is in, and give the
    slice a direct read of ``ds.marshall.slice2d`` gives (the partial cube: chunks of 4
    along r_1)."""
    import xarray as xr

    from pipeline.explore.slices import SlabCache

    ds, _ = partial
    cube = Cube(ds)
    cache = SlabCache()
    for i in (0, 1, 2, 3, 4, 7, 3):  # r_1 chunks [0, 4), [4, 8)
        got = load_slice(cube, "theta_1", "theta_2", {"r_1": i}, cache)
        want = load_slice(cube, "theta_1", "theta_2", {"r_1": i})
        xr.testing.assert_identical(got, want)
        cache.wait()
    # the first slice of each block is read alone, its slab behind it; then memory only
    assert (cache.slice_reads, cache.slab_reads) == (2, 2)
    one = SlabCache(keep=1, background=False)
    for i in (0, 4, 3):
        load_slice(cube, "theta_1", "theta_2", {"r_1": i}, one)
    assert (one.slice_reads, one.slab_reads) == (3, 3)  # [0, 4) was let go for [4, 8)
    tiny = SlabCache(max_bytes=1)  # a slab too big to keep: each slice read alone
    for i in (0, 1):
        xr.testing.assert_identical(
            load_slice(cube, "theta_1", "theta_2", {"r_1": i}, tiny),
            load_slice(cube, "theta_1", "theta_2", {"r_1": i}),
        )
    assert (tiny.slice_reads, tiny.slab_reads) == (2, 0)


def test_unicode_symbols():
    assert unicode_symbol(r"\theta_{1}", "theta_1") == "θ₁"
    assert unicode_symbol("r_{2}", "r_2") == "r₂"
    assert unicode_symbol(r"\bar L_{2}", "Lbar_2") == "L̄₂"
    assert unicode_symbol(r"\hat a", "a") == "â"
    assert unicode_symbol(r"\frac{1}{2}", "x") == "x"
    assert unicode_symbol("", "g") == "g"


def test_offline_size_limit_names_the_fix(coord, tmp_path):
    ds, path = coord
    out = tmp_path / "big.html"
    with pytest.raises(ExploreError, match=r"1,152 cells.*limit of 1,000.*--at theta_2=2"):
        write_html(ds, out, "c.zarr", max_cells=1000)
    assert not out.exists()
    # holding theta_2 leaves one pair: 192 cells, under the limit
    page = offline_page(ds, "c.zarr", at={"theta_2": 2.0}, max_cells=1000)
    assert page.cube.n_cells() == 192 and "theta_2" not in page.sliders
    r = cli(path, "--html", out, "--max-cells", "1000")
    assert r.returncode == 2 and "--max-cells" in r.stderr and not out.exists()


def test_cli_errors(coord, tmp_path):
    _, path = coord
    r = cli(path, "--html", tmp_path / "a.html", "--x", "theta")
    assert r.returncode == 2 and "--x theta: not a free swept dimension" in r.stderr
    r = cli(path, "--html", tmp_path / "a.html", "--at", "theta_1")
    assert r.returncode == 2 and "expected NAME=VALUE" in r.stderr
    r = cli(path, "--html", tmp_path / "a.html", "--at", "r_1=1", "--at", "theta_1=2")
    assert r.returncode == 2 and "two swept dimensions" in r.stderr
    r = cli(tmp_path / "none.zarr", "--html", tmp_path / "a.html")
    assert r.returncode == 2 and "no marshall cube" in r.stderr
    assert not (tmp_path / "a.html").exists()


def cli(*args, timeout=600) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "pipeline.explore", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


# ------------------------------------------------------------------ browser


class Server:
    """``python -m pipeline.explore CUBE --port 0`` in a subprocess; its printed URL."""

    def __init__(self, path: Path, pythonpath: str = ""):
        import queue
        import threading

        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), pythonpath) if p))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.explore", str(path), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=ROOT,
        )
        # read its output in a thread, so that the deadline holds even if it prints nothing
        lines: queue.Queue = queue.Queue()
        threading.Thread(
            target=lambda: [lines.put(ln) for ln in self.proc.stdout] + [lines.put(None)],
            daemon=True,
        ).start()
        deadline = time.monotonic() + 3 * WAIT_S  # imports, the cube's metadata, a slab
        self.url, seen = None, []
        while self.url is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
            except queue.Empty:
                break
            if line is None:
                break
            seen.append(line)
            m = re.search(r"at (http://\S+)", line)
            if m:
                self.url = m.group(1)
        if self.url is None:
            self.stop()
            raise RuntimeError("server did not start:\n" + "".join(seen))
        assert urlparse(self.url).hostname == "127.0.0.1"  # loopback by default

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("Chromium not found (/usr/bin/chromium): apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="marshall-chromium-") as profile:
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                args=FLAGS,
                headless=True,
                viewport={"width": 1500, "height": 1300},
            )
            yield ctx
            ctx.close()


@pytest.fixture(scope="module")
def urls(coord, dyn, partial, tmp_path_factory):
    """Both pages of each cube: ``{(cube, "served" | "html"): url}``."""
    d = tmp_path_factory.mktemp("html")
    servers, out = [], {}
    try:
        for name, (ds, path) in {"coord": coord, "dyn": dyn, "partial": partial}.items():
            f = d / f"{name}.html"
            write_html(ds, f, str(path))
            out[(name, "html")] = f.as_uri()
            servers.append(Server(path))
            out[(name, "served")] = servers[-1].url
        yield out
    finally:
        for s in servers:
            s.stop()


class Page:
    """A loaded explorer page: console, requests, and helpers that read the Bokeh views."""

    def __init__(self, ctx, url: str, init_script: str | None = None):
        self.page = ctx.new_page()
        self.page.set_default_timeout(WAIT_MS)
        if init_script:
            self.page.add_init_script(init_script)
        self.console, self.requests = [], []
        self.page.on("console", lambda m: self.console.append((m.type, m.text)))
        self.page.on("pageerror", lambda e: self.console.append(("error", str(e))))
        self.page.on("request", lambda r: self.requests.append(r.url))
        t0 = time.perf_counter()
        self.page.goto(url)
        self.page.wait_for_function(
            "() => window.Bokeh && Bokeh.documents.length > 0 && "
            "Bokeh.documents[0].get_model_by_name('phase-holder') != null && "
            "Bokeh.index.find_one(Bokeh.documents[0].get_model_by_name("
            "'phase-holder').children[0]) != null",
            timeout=WAIT_MS,
        )
        self.wait_idle()
        self.ready_s = time.perf_counter() - t0

    def wait(self, js: str, arg=None):
        """Until the JS predicate ``js`` (of ``arg``) holds (no fixed sleep)."""
        self.page.wait_for_function(js, arg=arg, timeout=WAIT_MS)

    def wait_idle(self):
        """Until every view is idle and two animation frames have passed (painted)."""
        self.wait("() => [...Bokeh.index].every(v => v.is_idle ?? true)")
        self.js("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        self.wait("() => [...Bokeh.index].every(v => v.is_idle ?? true)")

    def js(self, code: str, arg=None):
        return self.page.evaluate(code, arg)

    def model(self, name: str, prop: str):
        return self.js(
            "([n, p]) => { const m = Bokeh.documents[0].get_model_by_name(n); "
            "const v = m[p]; return v?.text ?? v }",
            [name, prop],
        )

    def shown(self, kind: str = "phase") -> str:
        """Name of the figure shown in a holder (``phase:x:y``)."""
        return self.js(
            "(k) => Bokeh.documents[0].get_model_by_name(k + '-holder').children[0].name", kind
        )

    def pixel_xy(self, kind: str, x: float, y: float) -> tuple[float, float]:
        """Page coordinates of the data point ``(x, y)`` in the shown figure."""
        return tuple(
            self.js(
                "([k, x, y]) => { const f = Bokeh.documents[0].get_model_by_name("
                "k + '-holder').children[0]; const v = Bokeh.index.find_one(f); "
                "const r = v.canvas_view.el.getBoundingClientRect(); "
                "return [r.left + v.frame.x_scale.compute(x), "
                "r.top + v.frame.y_scale.compute(y)] }",
                [kind, x, y],
            )
        )

    def boundary_pixels(self, kind: str = "phase") -> np.ndarray:
        """Page coordinates of every point of the boundary lines drawn in the figure."""
        pts = self.js(
            "(k) => { const f = Bokeh.documents[0].get_model_by_name("
            "k + '-holder').children[0]; const v = Bokeh.index.find_one(f); "
            "const r = v.canvas_view.el.getBoundingClientRect(); const out = []; "
            "for (const rv of v.renderer_views.values()) { const g = rv.model.glyph; "
            "if (g?.type != 'MultiLine') continue; const d = rv.model.data_source.data; "
            "const xs = d[g.xs.field], ys = d[g.ys.field]; "
            "for (let i = 0; i < xs.length; i++) for (let j = 0; j < xs[i].length; j++) "
            "out.push([r.left + v.frame.x_scale.compute(xs[i][j]), "
            "r.top + v.frame.y_scale.compute(ys[i][j])]) } return out }",
            kind,
        )
        return np.asarray(pts, float).reshape(-1, 2)

    def screenshot(self, path: Path | None = None):
        from PIL import Image

        self.page.mouse.move(1, 1)  # no tooltip over the figures
        self.page.locator(".mx-tip:visible").first.wait_for(state="detached", timeout=WAIT_MS)
        self.wait_idle()
        png = self.page.screenshot(full_page=False)
        if path is not None:
            path.write_bytes(png)
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))

    def colour_at(self, img, kind, x, y) -> str:
        px, py = self.pixel_xy(kind, x, y)
        r, g, b = img[int(round(py)), int(round(px))]
        return f"#{r:02x}{g:02x}{b:02x}"

    def hover(self, kind, x, y) -> str:
        px, py = self.pixel_xy(kind, x, y)
        self.page.mouse.move(px - 3, py - 3)
        self.page.mouse.move(px, py)
        loc = self.page.locator(".mx-tip:visible").first
        loc.wait_for(state="visible", timeout=WAIT_MS)
        return loc

    def slider_step(self, dim: str, key: str, value: float):
        """Move a slider one step; wait until its title shows ``value`` and the shown
        phase figure's cells are of the new slice (the updates come in that order)."""
        handle = self.page.evaluate_handle(
            "(n) => { const m = Bokeh.documents[0].get_model_by_name('slider:' + n); "
            "return Bokeh.index.find_one(m).shadow_el.querySelector('.noUi-handle') }",
            dim,
        )
        handle.as_element().focus()
        self.page.keyboard.press(key)
        self.wait(
            "([d, t]) => Bokeh.documents[0].get_model_by_name('slider-title:' + d)"
            ".text.endsWith(t)",
            [dim, f"= {value:.6g}"],
        )
        self.wait_idle()

    def wait_shown(self, name: str, kind: str = "phase"):
        """Until the figure ``name`` is shown in its holder, then painted."""
        self.wait(
            "([k, n]) => Bokeh.documents[0].get_model_by_name(k + '-holder')"
            ".children[0]?.name == n",
            [kind, name],
        )
        self.wait_idle()

    def wait_welfare(self, title: str):
        """Until the welfare figure shown is titled ``title`` and its code line is the
        view's (the last update of a view), then painted."""
        self.wait(
            "(t) => Bokeh.documents[0].get_model_by_name('welfare-holder')"
            ".children[0]?.title.text == t",
            title,
        )
        self.wait_idle()

    def select(self, name: str, value: str):
        """Choose ``value`` in a Select; the caller waits for what it should change."""
        handle = self.page.evaluate_handle(
            "(n) => { const m = Bokeh.documents[0].get_model_by_name(n); "
            "return Bokeh.index.find_one(m).shadow_el.querySelector('select') }",
            name,
        )
        label = self.js(
            "([n, v]) => { const o = Bokeh.documents[0].get_model_by_name(n).options"
            ".find(o => (Array.isArray(o) ? o[0] : o) == v); return Array.isArray(o) ? o[1] : o }",
            [name, value],
        )
        handle.as_element().select_option(label=label)

    def errors(self):
        return [t for k, t in self.console if k == "error"]

    def close(self):
        self.page.close()


def off_loopback(url: str, requests: list[str]) -> list[str]:
    """Requests that leave loopback (the file page: anything but file/data/about)."""
    bad = []
    for r in requests:
        u = urlparse(r)
        if url.startswith("file:"):
            if u.scheme not in ("file", "data", "about", "blob"):
                bad.append(r)
        elif u.scheme in ("data", "about", "blob"):
            continue
        elif u.hostname not in ("127.0.0.1", "localhost", "::1"):
            bad.append(r)
    return bad


@pytest.fixture
def open_page(browser, urls):
    pages = []

    def _open(cube: str, mode: str) -> Page:
        p = Page(browser, urls[(cube, mode)])
        pages.append(p)
        return p

    yield _open
    for p in pages:
        p.close()


MODES = pytest.mark.parametrize("mode", ["served", "html"])


def cell_values(ds, x, y, at):
    """Grid values and regime names of the slice ``(x, y)`` at ``at`` (rows: y)."""
    sub = ds.marshall.slice2d(x, y, at=at).transpose(y, x, ...).compute()
    return sub[x].values, sub[y].values, names_of(ds, sub)


def check_pixels(pg: Page, img, ds, x, y, at, min_share=0.5) -> int:
    """Every cell's pixel colour (at its centre) is its regime's colour, except cells
    within 6 px of a drawn boundary line."""
    xs, ys, names = cell_values(ds, x, y, at)
    back = {colors.regime_color(n): n for n in set(names.ravel()) if n != NOT_COMPUTED}
    back[NOT_COMPUTED_COLOR] = NOT_COMPUTED
    lines = pg.boundary_pixels()
    n = 0
    for i, yv in enumerate(ys):
        for j, xv in enumerate(xs):
            px, py = pg.pixel_xy("phase", float(xv), float(yv))
            if lines.size and np.min(np.hypot(lines[:, 0] - px, lines[:, 1] - py)) < 6:
                continue
            got = pg.colour_at(img, "phase", float(xv), float(yv))
            assert back.get(got) == names[i, j], (x, xv, y, yv, got, names[i, j])
            n += 1
    assert n >= min_share * names.size, (n, names.size)
    return n


@needs_browser
@MODES
def test_page_loads_offline_and_clean(open_page, mode):
    pg = open_page("coord", mode)
    assert pg.errors() == []
    assert off_loopback(pg.page.url, pg.requests) == []
    if mode == "html":  # no request at all but the file itself (and inline data)
        assert {urlparse(r).scheme for r in pg.requests} <= {"file", "data", "about", "blob"}
    assert pg.shown() == "phase:r_1:theta_1" and pg.shown("welfare") == "welfare:r_1:theta_1"
    assert pg.model("phase:r_1:theta_1:xaxis", "axis_label") == "$$r_{1}$$"
    assert pg.model("phase:r_1:theta_1:yaxis", "axis_label") == r"$$\theta_{1}$$"
    assert (
        pg.js("() => Bokeh.documents[0].get_model_by_name('phase:r_1:theta_1').x_scale.type")
        == "LogScale"
    )


@needs_browser
@MODES
def test_slider_redraws_and_pixels_are_regimes(open_page, coord, artifacts, mode):
    ds, _ = coord
    pg = open_page("coord", mode)
    # slider starts at theta_2's middle (index 1 = 2.0)
    before = pg.screenshot(artifacts / f"coord-{mode}-theta_2=2.png")
    check_pixels(pg, before, ds, "r_1", "theta_1", {"theta_2": 2.0})
    pg.slider_step("theta_2", "ArrowLeft", 1.5)
    assert pg.model("slider-title:theta_2", "text").endswith("= 1.5")
    after = pg.screenshot(artifacts / f"coord-{mode}-theta_2=1.5.png")
    box = pg.js(
        "() => { const f = Bokeh.documents[0].get_model_by_name('phase-holder').children[0];"
        " const r = Bokeh.index.find_one(f).canvas_view.el.getBoundingClientRect();"
        " return [r.left, r.top, r.width, r.height].map(Math.round) }"
    )
    x0, y0, w, h = box
    assert not np.array_equal(before[y0 : y0 + h, x0 : x0 + w], after[y0 : y0 + h, x0 : x0 + w])
    check_pixels(pg, after, ds, "r_1", "theta_1", {"theta_2": 1.5})
    assert "--at theta_2=1.5" in pg.model("code", "text")
    assert pg.errors() == []


def tooltip_table(loc) -> dict:
    text = loc.inner_text()
    rows = {}
    for tr in loc.locator("tr[data-eq]").all():
        cells = [c.inner_text().strip() for c in tr.locator("td").all()]
        rows[cells[0]] = cells[1:]
    claims = dict(s.inner_text().rsplit(": ", 1) for s in loc.locator("span[data-claim]").all())
    return {
        "text": text,
        "rows": rows,
        "claims": claims,
        "regime": loc.locator(".mx-regime").inner_text(),
        "knife": loc.locator(".mx-knife").inner_text(),
        "best": loc.locator(".mx-best").inner_text(),
        "worst": loc.locator(".mx-worst").inner_text(),
    }


def assert_tooltip_is_at(tip: dict, ds, point: dict):
    df = ds.marshall.at(**point)
    yesno = {True: "yes", False: "no"}
    for d, v in point.items():
        assert re.search(rf"{d} = {float(v):.6g}(,|$|\s)", tip["text"]), (d, tip["text"])
    assert tip["regime"] == (df.attrs["regime"] if df.attrs["done"] else NOT_COMPUTED)
    assert tip["knife"] == yesno[df.attrs["knife_edge"]]
    assert tip["best"] == (df.attrs["best"] or "-")
    assert tip["worst"] == (df.attrs["worst"] or "-")
    assert list(tip["rows"]) == list(df.index)
    for lab, row in df.iterrows():
        ex, st, w, rk = tip["rows"][lab]
        assert ex == yesno[bool(row.exists)] and st == yesno[bool(row.stable)], lab
        if math.isnan(row.wage):
            assert w == "NaN"
        else:
            assert float(w) == pytest.approx(row.wage, rel=1e-5), lab
        assert int(rk) == row["rank"]
    cl = ds["claims"].sel(point)
    status = {1: "held", 0: "failed", -1: "n/a"}
    for c, v in zip(ds["claim"].values, cl.values, strict=True):
        assert tip["claims"][str(c)] == status[int(v)]


@needs_browser
@MODES
def test_hover_shows_what_at_gives(open_page, coord, mode):
    ds, _ = coord
    pg = open_page("coord", mode)
    r1, t1 = ds["r_1"].values, ds["theta_1"].values
    for i, j in ((3, 2), (12, 9)):
        point = {"r_1": float(r1[i]), "theta_1": float(t1[j]), "theta_2": 2.0}
        tip = tooltip_table(pg.hover("phase", point["r_1"], point["theta_1"]))
        assert_tooltip_is_at(tip, ds, point)
    assert pg.errors() == []


@needs_browser
@MODES
def test_other_axes_redraw_with_their_symbols(open_page, coord, mode):
    ds, _ = coord
    pg = open_page("coord", mode)
    pg.select("xsel", "theta_2")  # x = theta_2, y = theta_1; r_1 gets its slider
    pg.wait_shown("phase:theta_2:theta_1")
    pg.wait("() => Bokeh.documents[0].get_model_by_name('slider:r_1').visible")
    assert pg.model("phase:theta_2:theta_1:xaxis", "axis_label") == r"$$\theta_{2}$$"
    assert pg.model("phase:theta_2:theta_1:yaxis", "axis_label") == r"$$\theta_{1}$$"
    assert pg.js("() => Bokeh.documents[0].get_model_by_name('slider:r_1').visible")
    assert not pg.js("() => Bokeh.documents[0].get_model_by_name('slider:theta_2').visible")
    r1 = float(ds["r_1"].values[ds.sizes["r_1"] // 2])
    check_pixels(pg, pg.screenshot(), ds, "theta_2", "theta_1", {"r_1": r1})
    ys = ds["theta_1"].values
    tip = tooltip_table(pg.hover("phase", 1.5, float(ys[4])))
    assert_tooltip_is_at(tip, ds, {"r_1": r1, "theta_1": float(ys[4]), "theta_2": 1.5})
    pg.select("ysel", "theta_2")  # x == y: refused, the drawing stays
    pg.wait("() => Bokeh.documents[0].get_model_by_name('msg').text.includes('two different')")
    assert pg.shown() == "phase:theta_2:theta_1"
    pg.select("ysel", "r_1")
    pg.wait_shown("phase:theta_2:r_1")
    pg.wait("() => Bokeh.documents[0].get_model_by_name('msg').text == ''")
    assert pg.errors() == []


@needs_browser
@MODES
def test_welfare_views(open_page, coord, mode):
    ds, _ = coord
    pg = open_page("coord", mode)
    img = pg.screenshot()
    sub = ds.sel(theta_2=2.0)
    i, j = 2, 3
    best = ds.marshall.labels[int(sub["best"].values[i, j])]
    r1, t1 = float(sub.r_1[i]), float(sub.theta_1[j])
    assert pg.colour_at(img, "welfare", r1, t1) == colors.label_color(best)
    pg.select("wsel", "gap:C2")
    pg.wait_welfare("income gap 1/w in C2")
    pg.wait("() => Bokeh.documents[0].get_model_by_name('code').text.includes('income-gap')")
    assert "income-gap --equilibrium C2" in pg.model("code", "text")
    img = pg.screenshot()
    ex = sub["exists"].sel(equilibrium="C2").values
    ii, jj = np.argwhere(~ex)[0]
    assert (
        pg.colour_at(img, "welfare", float(sub.r_1[ii]), float(sub.theta_1[jj]))
        == colors.ABSENT_COLOR
    )
    loc = pg.hover("welfare", r1, t1)
    w = float(sub["wage"].sel(equilibrium="C2").values[i, j])
    shown = loc.locator(".mx-value").inner_text()
    if ex[i, j]:
        assert float(shown) == pytest.approx(1 / w, rel=1e-5)
    pg.select("wsel", "ratio")
    pg.wait("() => Bokeh.documents[0].get_model_by_name('code').text.includes('welfare --x r_1')")
    assert pg.errors() == []


@needs_browser
@MODES
def test_dynamic_click_shows_transitions_and_paths(open_page, dyn, mode):
    ds, _ = dyn
    pg = open_page("dyn", mode)
    assert [v for v in ["pv_gain:1", "pv_gain:2"]] == [
        o[0]
        for o in pg.js("() => Bokeh.documents[0].get_model_by_name('wsel').options")
        if o[0].startswith("pv_gain")
    ]
    r1, t1 = float(ds.r_1.values[1]), float(ds.theta_1.values[2])
    px, py = pg.pixel_xy("phase", r1, t1)
    pg.page.mouse.click(px, py)
    pg.page.wait_for_function(
        "(v) => Bokeh.documents[0].get_model_by_name('point-code').text.includes(v)",
        arg=f"r_1={r1!r}",
        timeout=WAIT_MS,
    )
    assert f"ds.marshall.at(r_1={r1!r}, theta_1={t1!r})" in pg.model("point-code", "text")
    # then the heading, the table and the paths (separate updates: wait for each)
    pg.wait(
        "(v) => Bokeh.documents[0].get_model_by_name('transition-head').text.includes(v)",
        f"r_1 = {r1:.6g}, theta_1 = {t1:.6g}",
    )
    df = ds.marshall.transition(r_1=r1, theta_1=t1)
    pg.wait(
        "(v) => Bokeh.documents[0].get_model_by_name('transition').text.includes(v)",
        f">{fmt(float(df['jump'].iloc[0]))}<",
    )
    want = ds["x_path"].sel(r_1=r1, theta_1=t1).transpose("target", "time").values
    pg.wait(
        "(v) => { const s = Bokeh.documents[0].get_model_by_name('paths:x').renderers[0]"
        ".data_source; return s.data.ys.length > 0 && s.data.ys[0][5] == v }",
        float(want[0][5]),
    )
    pg.wait_idle()
    table = pg.page.locator(".mx-transition")
    for k, row in df.iterrows():
        cells = {
            td.get_attribute("data-col"): td.inner_text()
            for td in table.locator(f"tr[data-target='{k}'] td[data-col]").all()
        }
        for col in ("jump", "half_life", "t99", "pv_gain", "breakeven_kappa"):
            assert float(cells[col]) == pytest.approx(float(row[col]), rel=1e-5), col
        assert cells["path_feasible"] == ("yes" if row.path_feasible else "no")
    ys = pg.js(
        "() => { const f = Bokeh.documents[0].get_model_by_name('paths:x');"
        " const s = f.renderers[0].data_source; return s.data.ys.map(a => Array.from(a)) }"
    )
    np.testing.assert_allclose(np.array(ys), want, rtol=1e-12)
    pg.select("wsel", "pv_gain:2")
    pg.wait_welfare("pv_gain: coordinate in sector 2")
    assert pg.errors() == []


@needs_browser
@MODES
@pytest.mark.parametrize("cube, view", [("coord", "ratio"), ("dyn", "pv_gain:1")])
def test_click_keeps_the_welfare_view(open_page, coord, dyn, cube, view, mode):
    """A click selects a cell; the welfare panel must go on drawing the chosen view (its
    selection and non-selection glyphs too), every cell in that view's colour."""
    ds, _ = {"coord": coord, "dyn": dyn}[cube]
    c = Cube(ds)
    v = next(v for v in c.views if v.key == view)
    pg = open_page(cube, mode)
    pg.select("wsel", view)
    pg.wait_welfare(v.title)
    x, y = pg.shown().split(":")[1:]
    a, b = c.ordered(x, y)
    sub = load_slice(c, a, b, {d: c.sizes[d] // 2 for d in c.others(a, b)})  # dims (b, a)
    ci = view_values(c, sub, v)[0].reshape(sub.sizes[b], sub.sizes[a])
    pal = [p.lower() for p in view_palette(c, v)]
    xs, ys = c.values[x], c.values[y]
    before = pg.model("point-code", "text")
    pg.page.mouse.click(*pg.pixel_xy("phase", float(xs[1]), float(ys[1])))
    pg.wait("(t) => Bokeh.documents[0].get_model_by_name('point-code').text != t", before)
    pg.wait(
        "() => Bokeh.documents[0].get_model_by_name('welfare-holder').children[0]"
        ".renderers[0].data_source.selected.indices.length == 1"
    )
    fields = pg.js(
        "() => { const r = Bokeh.documents[0].get_model_by_name('welfare-holder').children[0]"
        ".renderers[0]; return [r.glyph, r.selection_glyph, r.nonselection_glyph]"
        ".map(g => g.fill_color.field) }"
    )
    assert fields == [f"wi_{v.col}"] * 3
    assert (
        pg.js("() => Bokeh.documents[0].get_model_by_name('welfare-holder').children[0].title.text")
        == v.title
    )
    img = pg.screenshot()
    n = 0
    for i, xv in enumerate(xs):
        for j, yv in enumerate(ys):
            if (i, j) == (1, 1):
                continue  # the selected cell: outlined
            want = pal[ci[j, i] if x == a else ci[i, j]]
            assert pg.colour_at(img, "welfare", float(xv), float(yv)) == want, (xv, yv)
            n += 1
    assert n == len(xs) * len(ys) - 1
    assert pg.errors() == []


@needs_browser
@MODES
def test_partial_cube_shows_not_computed(open_page, partial, artifacts, mode):
    ds, _ = partial
    pg = open_page("partial", mode)
    img = pg.screenshot(artifacts / f"partial-{mode}.png")
    sub = ds.sel(theta_2=2.0)
    done = sub["done"].values
    assert "not computed" in pg.model("phase-legend", "text")
    i, j = np.argwhere(~done)[len(np.argwhere(~done)) // 2]
    r1, t1 = float(sub.r_1[i]), float(sub.theta_1[j])
    assert pg.colour_at(img, "phase", r1, t1) == NOT_COMPUTED_COLOR
    assert pg.colour_at(img, "welfare", r1, t1) == NOT_COMPUTED_COLOR
    assert NOT_COMPUTED_COLOR not in {
        colors.regime_color(n) for n in ds.marshall.regime_names().values()
    }
    tip = tooltip_table(pg.hover("phase", r1, t1))
    assert tip["regime"] == NOT_COMPUTED
    check_pixels(pg, img, ds, "r_1", "theta_1", {"theta_2": 2.0})
    assert pg.errors() == []


@needs_browser
def test_html_for_every_small_cube(tmp_path_factory, browser, dyn, coord):
    """``--html`` (the CLI) on each small cube of tests/cubes.py, seconds each; each
    page loads clean, offline, and draws its regimes."""
    cubes = {
        "coordination": coord,
        "dynamic": dyn,
        "standard": build_cube(tmp_path_factory, standard(20, 15), "std"),
        "increasing": build_cube(tmp_path_factory, INCREASING, "inc"),
    }
    d = tmp_path_factory.mktemp("every")
    for name, (ds, path) in cubes.items():
        f = d / f"{name}.html"
        r = cli(path, "--html", f)
        assert r.returncode == 0, r.stderr
        text = f.read_text()
        # everything inline: no script or stylesheet loaded from anywhere
        assert not re.search(r"<(script|link)\b[^>]*\b(src|href)=", text)
        pg = Page(browser, f.as_uri())
        try:
            assert pg.errors() == [] and off_loopback(pg.page.url, pg.requests) == []
            x, y = pg.shown().split(":")[1:]
            cube = Cube(ds)
            at = {d_: float(ds[d_].values[ds.sizes[d_] // 2]) for d_ in cube.others(x, y)}
            check_pixels(pg, pg.screenshot(), ds, x, y, at, min_share=0.3)
        finally:
            pg.close()


# ------------------------------------------------- boundaries, log axes, refined


REFINED = """
model: coordination
sectors: 2
params:
  r_1: {logspace: [0.25, 8.0, 5]}
  r_2: 1.0
  theta_1: {linspace: [1.05, 6.0, 5]}
  theta_2: 2.0
refine:
  on: [regime]
  levels: 2
output: x.zarr
"""


@pytest.fixture(scope="module")
def refined(tmp_path_factory):
    ds, path = build_cube(tmp_path_factory, REFINED, "refined")
    assert 0 < int(ds["computed"].sum()) < ds["computed"].size
    return ds, path


def test_boundaries_dashed_as_the_png_figures(coord):
    """Each boundary has its own dash, the PNG figures' (``pipeline.figures``' table in
    the same order), in the lines and in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pipeline.colors import BOUNDARY_DASHES, boundary_dash
    from pipeline.explore.page import BOUNDARY_WIDTH
    from pipeline.explore.page import Page as ExplorePage
    from pipeline.figures import draw_boundaries

    ds, _ = coord
    page = ExplorePage(ds, "c.zarr")
    out, _ = page.slice_updates("r_1", "theta_1", {"theta_2": 1})
    bsrc = page.source("r_1", "theta_1")[1]
    bdata = next(v for m, attr, v in out if m is bsrc and attr == "data")
    fig, ax = plt.subplots()
    try:
        bnds, handles = draw_boundaries(ax, ds, "r_1", "theta_1", at={"theta_2": 2.0})
        # the drawn line's own dash sequence (matplotlib reports any custom one as "--")
        png = {h.get_gid().removeprefix("boundary:"): h._unscaled_dash_pattern[1] for h in handles}
    finally:
        plt.close(fig)
    assert len(bnds) >= 3
    got = dict(zip(bdata["name"], bdata["dash"], strict=True))
    for i, bd in enumerate(bnds):
        want = BOUNDARY_DASHES[i % len(BOUNDARY_DASHES)]
        assert (None if png[bd.name] is None else tuple(png[bd.name])) == want
        assert got[bd.name] == boundary_dash(i, BOUNDARY_WIDTH)
    assert len({tuple(d) for d in got.values()}) == len(bnds)  # one dash each
    legend = next(v for m, attr, v in out if m is page.phase_legend)
    for bd in bnds:
        dash = " ".join(map(str, got[bd.name])) or "none"
        assert f"stroke-dasharray='{dash}'" in legend
    lines = [
        r.glyph
        for r in page.figures("r_1", "theta_1")["phase"].renderers
        if type(r.glyph).__name__ == "MultiLine" and r.glyph.line_color == "black"
    ]
    assert len(lines) == 1 and lines[0].line_dash.field == "dash"


def test_refined_columns_say_computed(refined):
    ds, _ = refined
    cube = Cube(ds)
    assert cube.refined
    sub = load_slice(cube, "r_1", "theta_1", {})
    cols, _ = slice_columns(cube, sub, "r_1", "theta_1", RegimeIndex(cube.bits))
    want = ds["computed"].transpose("theta_1", "r_1").values.ravel().astype(np.int8)
    np.testing.assert_array_equal(cols["exact"], want)


@needs_browser
@MODES
def test_log_axes_label_ticks_below_one(open_page, mode):
    """r_1 spans [0.25, 8] (log): labelled ticks below 1 as above (1-2-5 a decade)."""
    pg = open_page("coord", mode)
    ticks, labels = pg.js(
        "() => { const f = Bokeh.documents[0].get_model_by_name('phase-holder').children[0];"
        " const v = Bokeh.index.find_one(f); for (const av of v.renderer_views.values()) {"
        " if (av.model.name != f.name + ':xaxis') continue;"
        " const t = Array.from(av.tick_coords.major[av.dimension]);"
        " return [t, av.model.formatter.doFormat(t, av)] } }"
    )
    assert ticks == [0.5, 1, 2, 5]
    assert labels == ["0.5", "1", "2", "5"]


@needs_browser
@MODES
def test_refined_hover_says_computed_or_filled(browser, refined, tmp_path, mode):
    ds, path = refined
    server = None
    if mode == "html":
        f = tmp_path / "refined.html"
        write_html(ds, f, str(path))
        url = f.as_uri()
    else:
        server = Server(path)
        url = server.url
    try:
        pg = Page(browser, url)
        try:
            comp = ds["computed"].values
            for want, text in ((True, "computed"), (False, "filled in")):
                i, j = np.argwhere(comp == want)[0]
                point = {"r_1": float(ds.r_1[i]), "theta_1": float(ds.theta_1[j])}
                for kind in ("phase", "welfare"):
                    loc = pg.hover(kind, point["r_1"], point["theta_1"])
                    assert loc.locator(".mx-exact").inner_text().startswith(text), (kind, point)
                    assert re.search(rf"r_1 = {point['r_1']:.6g}(,|$|\s)", loc.inner_text())
            assert pg.errors() == []
        finally:
            pg.close()
    finally:
        if server is not None:
            server.stop()


# ------------------------------------------------------------- offline page size

#: JDE sec. 4 refined as configs/dynamic_refined.yaml is, on a 5 x 5 coarse grid
DYN_REFINED = """
model: dynamic
sectors: 2
params:
  r_1: 1.5
  r_2: 1.0
  theta_1: 1.5
  theta_2: 3.0
  g: {linspace: [0.01, 0.10, 5]}
  eps_1: {linspace: [0.02, 0.30, 5]}
  eps_2: 0.15
  T: 200.0
  n_time: 101
refine:
  on: [regime, path_feasible]
  levels: 2
output: x.zarr
"""


@pytest.fixture(scope="module")
def dyn_refined(tmp_path_factory):
    return build_cube(tmp_path_factory, DYN_REFINED, "dynref")


def test_offline_size_of_a_refined_cube(dyn_refined, tmp_path):
    """A refined cube's page embeds every point of its dense view (many more than were
    computed) and what each carries: within --max-cells as cells, but over its bytes,
    it is refused; its size is estimated and said before it is written, near what is
    written; a transition table is stored once for every point that shows it."""
    from bokeh.models import CustomJS

    ds, path = dyn_refined
    n = Cube(ds).n_cells()
    computed = int(ds["computed"].sum())
    assert n == 17 * 17 and computed < n
    with pytest.raises(ExploreError, match=rf"about [\d.]+ MB: {n} cells at [\d,]+ bytes each"):
        write_html(ds, tmp_path / "r.html", str(path), max_cells=n)
    assert not (tmp_path / "r.html").exists()
    said = []
    f = write_html(ds, tmp_path / "r.html", str(path), announce=said.append)
    assert len(said) == 1 and 0.8 <= f.stat().st_size / said[0] <= 1.25, (f.stat(), said)
    page = offline_page(ds, str(path))
    tables = next(
        m.args["tables"]
        for m in page.layout.references()
        if isinstance(m, CustomJS) and "tables" in m.args
    )
    assert 0 < len(tables) <= computed
    # the command line says the estimate before it writes, and the size written
    r = cli(path, "--html", tmp_path / "c.html")
    assert r.returncode == 0, r.stderr
    assert re.search(r"writing \S*c\.html: about [\d.]+ MB \(estimated\)", r.stderr), r.stderr
    assert re.search(r"wrote \S*c\.html \([\d.]+ MB\)", r.stdout), r.stdout


def test_offline_size_counts_what_each_point_carries(dyn):
    """Cells within --max-cells, but what their points carry (paths, transitions) over
    max_cells * BYTES_PER_CELL bytes: refused, naming the size; nothing over the default."""
    ds, _ = dyn
    n = Cube(ds).n_cells()
    with pytest.raises(ExploreError, match=rf"about [\d.]+ MB: {n} cells at [\d,]+ bytes each"):
        offline_page(ds, "d.zarr", max_cells=n)
    offline_page(ds, "d.zarr")
