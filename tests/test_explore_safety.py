"""Data is not code (STYLE.md habit 13): no text of a cube or a model runs in the explorer.

Script is planted in every string a cube or a model can carry: equilibrium labels (and
the regime names made of them), claim names and statements, dimension names, target
labels, a transition variable's name, coordinate attributes (the TeX ``symbol``), the
cube's attributes (model, sectors, description, config), a fixed value, the file name;
and, through an out-of-tree model, its labels, claims, boundary names and symbols. Each
payload would push its number to ``window.__xss`` (or open a dialog) if it ran. Both
pages (served and ``--html``) are loaded in headless Chromium, hovered, clicked and
switched through every view and axis; nothing may run, and the planted text must be
shown as text.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import xarray as xr

from pipeline import open_cube, parse_config, run
from pipeline.explore import offline_page, write_html
from pipeline.explore.page import Page as ExplorePage
from pipeline.explore.slices import transition_html
from pipeline.models._spec import regime_name

from .cubes import DYNAMIC, build_cube
from .test_explore import WAIT_MS, Page, Server, browser, needs_browser  # noqa: F401

#: set before any script of the page runs; a payload that runs pushes to it
INIT = (
    "window.__xss = []; "
    "window.alert = window.confirm = window.prompt = (m) => window.__xss.push('dialog')"
)


def bomb(n: int, slash: bool = True) -> str:
    """Text that runs script (pushes ``n``) wherever it reaches HTML unescaped: out of an
    attribute, as an element, as TeX next to HTML, out of a ``<script>`` block (not in
    names that become paths: no ``/`` there)."""
    s = f"$$x$$'\"><img src=x onerror=__xss.push({n})>"
    if slash:
        s += f"</script><script>__xss.push({n})</script>"
    return s


# ------------------------------------------------------------------------ cubes


def planted(ds: xr.Dataset) -> xr.Dataset:
    """The dynamic test cube rewritten (as anyone can, with zarr) with script in every
    text it holds."""
    ds = ds.load()
    old = [str(x) for x in ds["equilibrium"].values]
    new = {lab: bomb(10 + j) for j, lab in enumerate(old)}
    ds = ds.assign_coords(equilibrium=[new[lab] for lab in old])
    bits = [new[b] for b in ds["regime"].attrs.get("regime_bits", old)]
    ds["regime"].attrs["regime_bits"] = bits
    codes = np.unique(ds["regime"].values[ds["done"].values.astype(bool)])
    ds["regime"].attrs["regime_labels"] = json.dumps(
        {str(int(c)): regime_name(int(c), bits) for c in codes if c >= 0}
    )
    if "claim" in ds.dims:
        claims = [bomb(20 + j) for j in range(ds.sizes["claim"])]
        ds = ds.assign_coords(claim=claims)
        ds["claim"].attrs["statements"] = json.dumps({c: bomb(25) for c in claims})
    ds = ds.assign_coords(target=[bomb(30 + i) for i in range(ds.sizes["target"])])
    ds = ds.rename({"jump": bomb(35, slash=False)})
    ds = ds.rename({"r_1": bomb(40, slash=False), "theta_1": bomb(41, slash=False)})
    for d, n in ((bomb(40, slash=False), 42), (bomb(41, slash=False), 43)):
        ds[d].attrs.update(
            symbol=rf"r$$\href{{javascript:__xss.push({n})}}{{x}}$$" + bomb(n),
            long_name=bomb(n),
            units=bomb(n),
        )
    ds.attrs.update(
        model=bomb(50), sectors=bomb(51), description=bomb(52), config=bomb(53), complete=1
    )
    ds = ds.assign_coords(r_2=bomb(54))
    for v in ds.variables.values():
        v.encoding.clear()
    return ds


@pytest.fixture(scope="module")
def planted_cube(tmp_path_factory):
    ds, _ = build_cube(tmp_path_factory, DYNAMIC, "dyn-src")
    bad = planted(ds)
    path = tmp_path_factory.mktemp("planted") / (bomb(60, slash=False) + ".zarr")
    bad.to_zarr(path, mode="w", consolidated=True)
    return open_cube(path), path


MODEL = """
from pipeline.model import Claim, Margins, Model, Param, claim_code, need

B = {bombs!r}
TEX = r"a$$\\href{{javascript:__xss.push(99)}}{{x}}$$"
LABELS = (B[0], B[1], B[2])


def economy(ops, a, b, w0, **_):
    w_K = ops.barrier(a * (1.0 + b))
    m = Margins(ops)
    m.add(LABELS[0], a, "<=", w0, B[3], B[4])
    m.add(LABELS[1], w0, "<=", w_K, B[5], B[6])
    m.add(LABELS[2], a, "<", w0, boundary=False)
    m.add(LABELS[2], w0, "<", w_K, boundary=False)
    wage = ops.xp.stack([w0 * 1.0, w_K, w0 * 1.0], axis=-1)
    return {{"margins": m, "wage": wage, "aux": {{"w_K": w_K}}}}


def claims(ops, inp, out, aux):
    ok = ~out["knife_edge"]
    multiple = (inp["a"] < inp["w0"]) & (inp["w0"] < aux["w_K"])
    return ops.xp.stack([claim_code(ops, (out["n_stable"] == 2) == multiple, ok)])


MODEL = Model(
    name=B[7],
    title=B[8],
    source="tests/test_explore_safety.py",
    anchor="adding-a-model",
    sectors=2,
    params=(
        Param("a", B[9], TEX + B[9], lo=0.0, example=1.0),
        Param("b", B[10], B[10], lo=0.0, example=1.0),
        Param("w0", B[11], "w_0", lo=0.0, example=1.5),
    ),
    labels=lambda J=2: list(LABELS),
    claims_list=(Claim(B[12], B[13]),),
    inputs=lambda p, J: {{"a": p["a"], "b": p["b"], "w0": p["w0"]}},
    requires=lambda given, J: [need(n, "give it") for n in ("a", "b", "w0") if n not in given],
    economy=economy,
    claims=claims,
    stable_capable=lambda lab: lab in LABELS[:2],
    income_gap=LABELS[1],
    expects="a, b and w0",
)
"""

MODEL_CONFIG = """
model: xss_model:MODEL
description: {desc}
params:
  a: {{linspace: [0.2, 2.0, 9]}}
  b: {{logspace: [0.1, 4.0, 7]}}
  w0: [0.8, 1.0, 1.2]
output: x.zarr
"""


@pytest.fixture(scope="module")
def model_cube(tmp_path_factory):
    """A cube of an out-of-tree model whose every text is script."""
    d = tmp_path_factory.mktemp("xss-model")
    (d / "xss_model.py").write_text(MODEL.format(bombs=[bomb(70 + i) for i in range(14)]))
    sys.path.insert(0, str(d))
    try:
        out = d / (bomb(90, slash=False) + ".zarr")
        run(parse_config(MODEL_CONFIG.format(desc=json.dumps(bomb(91))), output=out), workers=0)
        ds = open_cube(out)
        ExplorePage(ds, "x")  # the model's declaration is importable here
        yield ds, out, str(d)
    finally:
        sys.path.remove(str(d))
        sys.modules.pop("xss_model", None)


# -------------------------------------------------------------- no browser


def test_transition_table_escapes_names_and_values():
    rows = {"target": [bomb(1)], bomb(2): [bomb(3)], "jump": [0.5]}
    out = transition_html(rows)
    assert "<img" not in out and "<script" not in out and "'\"" not in out
    assert out.count("&lt;img") == 5  # 1 and 2 twice (an attribute and a cell), 3 once


def _html_texts(obj, out: list[str]) -> list[str]:
    """Every Div text and hover template in a page's models and recorded updates."""
    from bokeh.model import Model
    from bokeh.models import Div, HoverTool

    if isinstance(obj, (list, tuple)):
        if len(obj) == 3 and isinstance(obj[0], Model) and isinstance(obj[1], str):
            m, attr, v = obj
            if (isinstance(m, Div) and attr == "text") or (
                isinstance(m, HoverTool) and attr == "tooltips"
            ):
                out.append(v)
                return out
        for x in obj:
            _html_texts(x, out)
    elif isinstance(obj, dict):
        for x in obj.values():
            _html_texts(x, out)
    return out


def test_no_cube_text_in_markup(planted_cube):
    """Every HTML string the offline page holds (Div texts, hover templates, the
    recorded updates of every state and point) holds the planted text escaped only."""
    from bokeh.models import CustomJS, Div, HoverTool

    ds, path = planted_cube
    page = offline_page(ds, str(path))
    texts: list[str] = []
    for m in page.layout.references():
        if isinstance(m, Div):
            assert m.disable_math, m.name  # "$$" in a cube's text is no TeX
            texts.append(m.text)
        elif isinstance(m, HoverTool) and isinstance(m.tooltips, str):
            texts.append(m.tooltips)
        elif isinstance(m, CustomJS):
            _html_texts(dict(m.args), texts)
            texts += m.args.get("tables", [])  # the transition tables, stored once
    assert len(texts) > 50
    for t in texts:
        assert "<img" not in t and "<script" not in t, t
    # the planted text is there, escaped, where the page shows it
    assert any("&lt;img src=x onerror=__xss.push(35)&gt;" in t for t in texts)  # variable
    assert any("&lt;img src=x onerror=__xss.push(50)&gt;" in t for t in texts)  # model
    # the hovers show the cube's text from data (escaped by Bokeh), not from the template
    assert bomb(10) in page.texts and bomb(40, slash=False) in page.texts


# ------------------------------------------------------------------ browser


def exercise(pg: Page) -> list[str]:
    """Hover both figures, every view, click a cell, switch the axes; the tooltip texts."""
    tips = []

    def hover_all():
        for kind in ("phase", "welfare"):
            x0, x1, y0, y1 = pg.js(
                "(k) => { const f = Bokeh.documents[0].get_model_by_name(k + '-holder')"
                ".children[0]; return [f.x_range.start, f.x_range.end, f.y_range.start, "
                "f.y_range.end] }",
                kind,
            )
            for fx, fy in ((0.5, 0.5), (0.1, 0.9), (0.9, 0.1)):
                log = pg.js(
                    "(k) => Bokeh.documents[0].get_model_by_name(k + '-holder').children[0]"
                    ".x_scale.type == 'LogScale'",
                    kind,
                )
                x = x0 * (x1 / x0) ** fx if log else x0 + fx * (x1 - x0)
                tips.append(pg.hover(kind, x, y0 + fy * (y1 - y0)).inner_text())

    hover_all()
    views = pg.js("() => Bokeh.documents[0].get_model_by_name('wsel').options")
    for key, title in views:
        pg.select("wsel", key)
        pg.wait_welfare(title)
        hover_all()
    before = pg.model("point-code", "text")
    x0, x1, y0, y1 = pg.js(
        "() => { const f = Bokeh.documents[0].get_model_by_name('phase-holder').children[0];"
        " return [f.x_range.start, f.x_range.end, f.y_range.start, f.y_range.end] }"
    )
    px, py = pg.pixel_xy("phase", (x0 * x1) ** 0.5 if x0 > 0 else x0, y0 + 0.3 * (y1 - y0))
    pg.page.mouse.click(px, py)
    pg.wait(
        "(t) => Bokeh.documents[0].get_model_by_name('point-code').text != t",
        before,
    )
    pg.wait_idle()
    x, y = pg.shown().split(":")[1:]
    pg.select("ysel", x)
    pg.wait("() => Bokeh.documents[0].get_model_by_name('msg').text != ''")
    pg.select("xsel", y)
    pg.wait_shown(f"phase:{y}:{x}")
    hover_all()
    return tips


def check_nothing_ran(pg: Page, tips: list[str], shown: list[str]):
    assert pg.js("() => window.__xss") == []
    assert pg.errors() == []
    text = "\n".join(tips) + pg.js(
        "() => { let t = ''; const walk = (root) => { for (const e of root.querySelectorAll('*'))"
        " { if (e.shadowRoot) { t += e.shadowRoot.textContent; walk(e.shadowRoot) } } };"
        " t += document.body.textContent; walk(document); return t }"
    )
    for s in shown:  # the planted text arrived, as text
        assert s in text, s
    # no element made of cube text anywhere (light and shadow DOM)
    n = pg.js(
        "() => { let n = 0; const walk = (root) => { for (const e of root.querySelectorAll('*'))"
        " { if (e.tagName == 'IMG' && e.getAttribute('src') == 'x') n++;"
        " if (e.shadowRoot) walk(e.shadowRoot) } }; walk(document); return n }"
    )
    assert n == 0


MODES = pytest.mark.parametrize("mode", ["served", "html"])


@needs_browser
@MODES
def test_planted_cube_runs_nothing(browser, planted_cube, tmp_path, mode):  # noqa: F811
    ds, path = planted_cube
    server = None
    if mode == "html":
        f = tmp_path / "planted.html"
        write_html(ds, f, str(path))
        url = f.as_uri()
    else:
        server = Server(path)
        url = server.url
    try:
        pg = Page(browser, url, init_script=INIT)
        try:
            tips = exercise(pg)
            check_nothing_ran(pg, tips, [bomb(10), bomb(40, slash=False), bomb(50)])
        finally:
            pg.close()
    finally:
        if server is not None:
            server.stop()


@needs_browser
@MODES
def test_out_of_tree_model_runs_nothing(browser, model_cube, tmp_path, mode):  # noqa: F811
    ds, path, pythonpath = model_cube
    server = None
    if mode == "html":
        f = tmp_path / "model.html"
        write_html(ds, f, str(path))
        url = f.as_uri()
    else:
        server = Server(path, pythonpath=pythonpath)
        url = server.url
    try:
        pg = Page(browser, url, init_script=INIT)
        try:
            tips = exercise(pg)
            check_nothing_ran(pg, tips, [bomb(70), bomb(82)])
        finally:
            pg.close()
    finally:
        if server is not None:
            server.stop()
