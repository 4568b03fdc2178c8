r"""The explorer page as Bokeh models, and the one function that says what a state shows.

A page holds, for every ordered pair of axes ``(x, y)``, a phase figure and a welfare
figure (made when first needed), and for every unordered pair one
:class:`~bokeh.models.ColumnDataSource` of per-cell columns
(:func:`pipeline.explore.slices.slice_columns`) that both orientations draw. What a
state shows is a list of *updates* ``(model, property, value)``:

- :meth:`Page.slice_updates` (a pair and the other dims' indices): the cells, the
  analytic boundaries (``ds.marshall.boundaries``), the legend, the sliders' titles;
- :meth:`Page.axes_updates` (an ordered pair): which figures are shown, which sliders;
- :meth:`Page.view_updates` (ordered pair, slice, welfare view): the view's layer, its
  colour bar, the code line (``marshall plot ...`` and ``ds.marshall.slice2d(...)``);
- :meth:`Page.point_updates` (a clicked grid point): the ``ds.marshall.at(...)`` call
  and, for dynamic cubes, ``ds.marshall.transition(...)``'s table and the paths.

The served page (:mod:`pipeline.explore.server`) computes the updates of a state when a
widget asks for it (one 2-D slice read per interaction) and applies them in Python; the
offline page (:func:`offline_document`) computes the updates of every state once and
stores them in the document, where a few lines of :class:`~bokeh.models.CustomJS` glue
look them up by the widgets' values and assign them. Both use the same functions, so
both pages draw the same thing.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from .. import colors
from ..query import QueryError
from .slices import (
    MISSING_INDEX,
    NOT_COMPUTED,
    NOT_COMPUTED_COLOR,
    Cube,
    ExploreError,
    RegimeIndex,
    SlabCache,
    View,
    column_names,
    fmt,
    load_slice,
    ramp_palette,
    slice_columns,
    transition_html,
    view_palette,
    view_ramp,
)

Update = tuple[Any, str, Any]
W, H = 600, 420
#: slices of at most this many cells get outlines (see :meth:`Page.figures`)
OUTLINE_CELLS = 4096
BOUNDARY_N = 257

# glue of the offline page: look up the state's recorded updates and assign them
STATE_JS = """
const x = xsel.value, y = ysel.value
const apply = (u) => { if (u) for (const [m, attr, v] of u) m[attr] = v }
if (x == y) { msg.text = same; return }
msg.text = ""
const [a, b] = order.indexOf(x) < order.indexOf(y) ? [x, y] : [y, x]
const parts = [a, b]
for (const d of free) if (d != a && d != b) parts.push(String(sliders[d].value))
const key = parts.join("|")
apply(s1[key]); apply(s2[x + "|" + y]); apply(s3[x + "|" + y + "|" + key + "|" + wsel.value])
"""
POINT_JS = """
const i = src.selected.indices[0]
if (i == null) return
const pt = src.data.pt[i]
const u = s4[pt]
if (u) for (const [m, attr, v] of u) m[attr] = v
if (table != null) table.text = tables[t4[pt]]
"""
YESNO_JS = "return value == 1 ? 'yes' : (value == 0 ? 'no' : '-')"
EXACT_JS = (
    "return value == 1 ? 'computed' : (value == 0 ? 'filled in from the nearest computed "
    "point' : '-')"
)
#: a cube's text in a hover: ``$index{n}`` shows ``texts[n]``, escaped by Bokeh
TEXT_JS = "return texts[Number(format)] ?? ''"
CLAIM_JS = "return value == 1 ? 'held' : (value == 0 ? 'failed' : 'n/a')"
LABEL_JS = "return value >= 0 && value < labels.length ? labels[value] : '-'"
NAME_JS = "return names[value] ?? '?'"

# ticks of a log axis: 1-2-5 in each decade (1 in each over 2.5 decades, every n-th
# decade over 6), so that a range below 1 (e.g. r_1 in [0.25, 8]) is labelled there too;
# Bokeh's LogTicker falls back to linear steps on ranges under 2 decades (1, 2, ... 8)
LOG_MAJOR_JS = """
const lo = Math.min(cb_data.start, cb_data.end), hi = Math.max(cb_data.start, cb_data.end)
if (!(lo > 0) || !(hi > lo)) return []
const span = Math.log10(hi / lo)
const ms = span <= 2.5 ? [1, 2, 5] : [1]
const step = span <= 6 ? 1 : Math.ceil(span / 6)
const out = []
for (let k = Math.floor(Math.log10(lo)); k <= Math.ceil(Math.log10(hi)); k += step)
  for (const m of ms) {
    const t = Number((m * 10 ** k).toPrecision(12))
    if (t >= lo && t <= hi) out.push(t)
  }
if (out.length >= 2) return out
const n = 5  // a narrow range: 5 log-spaced ticks, 2 significant digits
return Array.from({length: n}, (_, i) => Number((lo * (hi / lo) ** ((i + 0.5) / n)).toPrecision(2)))
"""
LOG_MINOR_JS = """
const lo = Math.min(cb_data.start, cb_data.end), hi = Math.max(cb_data.start, cb_data.end)
if (!(lo > 0) || !(hi > lo) || Math.log10(hi / lo) > 6) return []
const out = []
for (let k = Math.floor(Math.log10(lo)); k <= Math.ceil(Math.log10(hi)); k++)
  for (let m = 1; m < 10; m++) {
    const t = Number((m * 10 ** k).toPrecision(12))
    if (t >= lo && t <= hi) out.push(t)
  }
return out
"""
#: a tick's label: its shortest text to 6 significant digits (0.5, 1, 2, 1e-07)
TICK_JS = "return String(Number(tick.toPrecision(6)))"

CSS = """
.mx-tip { font: 12px sans-serif; max-width: 520px; }
.mx-tip table, .mx-transition { border-collapse: collapse; font: 12px sans-serif; }
.mx-tip td, .mx-tip th, .mx-transition td, .mx-transition th {
  padding: 1px 6px; border-bottom: 1px solid #ddd; text-align: right; }
.mx-legend .sw { display: inline-block; width: 14px; height: 14px; margin-right: 6px;
  vertical-align: middle; border: 1px solid #555; }
.mx-code { font: 12px monospace; white-space: pre; background: #f6f6f6; padding: 6px; }
"""


#: width (px) of a boundary line; its dash pattern scales with it, as matplotlib's does
BOUNDARY_WIDTH = 1.6


def boundary_dashes(n: int) -> list[list[int]]:
    """The Bokeh dash patterns of ``n`` boundaries, in order: the PNG figures' table
    (:data:`pipeline.colors.BOUNDARY_DASHES`, cycled as ``draw_boundaries`` does),
    scaled by the line width as matplotlib scales its dashes."""
    return [colors.boundary_dash(i, BOUNDARY_WIDTH) for i in range(n)]


def _num(v: float) -> str:
    """Shortest text of a grid value that reads back as the same float."""
    v = float(v)
    return repr(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


class Page:
    """The explorer of one cube: widgets, figures, sources and the state -> updates
    functions. ``ds`` may be lazy (served page) or in memory (offline page)."""

    def __init__(
        self,
        ds: xr.Dataset,
        name: str,
        at: Mapping[str, float] | None = None,
        x: str | None = None,
        y: str | None = None,
        boundary_n: int = BOUNDARY_N,
        cache: SlabCache | None = None,
    ):
        from bokeh.models import CustomJSHover

        cube = self.cube = Cube(ds, at)
        self.name = name
        self.at_given = dict(at or {})
        self.boundary_n = boundary_n
        self.cache = cache
        self.regimes = RegimeIndex(cube.bits)
        for d, what in ((x, "--x"), (y, "--y")):
            if d is not None and d not in cube.free:
                raise ExploreError(
                    f"{what} {d}: not a free swept dimension; choose one of {', '.join(cube.free)}"
                )
        x = x or next(d for d in cube.free if d != y)
        y = y or next(d for d in cube.free if d != x)
        if x == y:
            raise ExploreError(f"--x and --y are both {x}; choose two different dimensions")
        self.x, self.y = x, y
        self.idx = {d: cube.sizes[d] // 2 for d in cube.free}  # slider positions
        self.view = cube.views[0].key
        self.fmt_yesno = CustomJSHover(code=YESNO_JS)
        self.fmt_claim = CustomJSHover(code=CLAIM_JS)
        self.fmt_label = CustomJSHover(args={"labels": cube.labels}, code=LABEL_JS)
        self.fmt_regime = CustomJSHover(args={"names": list(self.regimes.names)}, code=NAME_JS)
        self.fmt_exact = CustomJSHover(code=EXACT_JS)
        # the hovers' templates are fixed markup; every text of the cube they show is
        # looked up in this table by a ``$index{n}`` placeholder (data, escaped)
        self.texts: list[str] = []
        self._text_index: dict[str, int] = {}
        self._phase_tip = self._tooltip()
        self._view_tips = {v.key: self._view_tooltip(v) for v in cube.views}
        self.fmt_text = CustomJSHover(args={"texts": list(self.texts)}, code=TEXT_JS)
        for _, fm in [self._phase_tip, *self._view_tips.values()]:
            fm["$index"] = self.fmt_text
        self._sources: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._figs: dict[tuple[str, str], dict[str, Any]] = {}
        self._build()

    # ----------------------------------------------------------------- models
    def _build(self) -> None:
        from bokeh.models import (
            Column,
            CustomJSTicker,
            CustomJSTickFormatter,
            Div,
            InlineStyleSheet,
            LinearColorMapper,
            LogColorMapper,
            Row,
            Select,
            Slider,
        )

        cube = self.cube
        opts = [(d, f"{d} ({cube.sym[d]})" if cube.sym[d] != d else d) for d in cube.free]
        self.xsel = Select(title="x axis", options=opts, value=self.x, name="xsel", width=220)
        self.ysel = Select(title="y axis", options=opts, value=self.y, name="ysel", width=220)
        # a slider's title would be HTML (with TeX) if it held "$$": the title is a Div
        # of escaped text next to it instead
        self.slider_titles = {
            d: Div(
                text=self._slider_title(d, self.idx[d]),
                name=f"slider-title:{d}",
                width=220,
                disable_math=True,
                styles={"margin-bottom": "-8px"},
            )
            for d in cube.free
        }
        self.sliders = {
            d: Slider(
                start=0,
                end=max(cube.sizes[d] - 1, 1),
                step=1,
                value=self.idx[d],
                title="",
                show_value=False,
                name=f"slider:{d}",
                width=220,
            )
            for d in cube.free
        }
        self.wsel = Select(
            title="welfare view",
            options=[(v.key, v.title) for v in cube.views],
            value=self.view,
            name="wsel",
            width=220,
        )
        # one index mapper per view (fixed palette), display mappers per ramp
        self.phase_mapper = LinearColorMapper(
            palette=self.regimes.palette, low=-0.5, high=len(self.regimes.palette) - 0.5
        )
        self.view_mappers = {}
        for v in cube.views:
            pal = view_palette(cube, v)
            self.view_mappers[v.key] = LinearColorMapper(palette=pal, low=-0.5, high=len(pal) - 0.5)
        self.display = {}
        for ramp in ("viridis", "cividis", "diverging"):
            pal = ramp_palette(ramp)
            self.display[(ramp, False)] = LinearColorMapper(palette=pal, low=0, high=1)
            self.display[(ramp, True)] = LogColorMapper(palette=pal, low=0.1, high=1)
        self.sheet = InlineStyleSheet(css=CSS)
        self.log_ticker = CustomJSTicker(major_code=LOG_MAJOR_JS, minor_code=LOG_MINOR_JS)
        self.log_formatter = CustomJSTickFormatter(code=TICK_JS)
        sheet = [self.sheet]
        # every Div holds escaped text of the cube: never TeX ("$$" in a label is text)
        self.msg = Div(text="", name="msg", styles={"color": "#b00"}, disable_math=True)
        self.phase_legend = Div(
            text="", name="phase-legend", width=230, stylesheets=sheet, disable_math=True
        )
        self.welfare_legend = Div(
            text="", name="welfare-legend", width=230, stylesheets=sheet, disable_math=True
        )
        self.code = Div(text="", name="code", width=W + 240, stylesheets=sheet, disable_math=True)
        self.point_code = Div(
            text="<div class='mx-code'># click a cell: its ds.marshall.at(...) call</div>",
            name="point-code",
            width=W + 240,
            stylesheets=sheet,
            disable_math=True,
        )
        self.header = Div(text=self._header(), name="header", width=2 * W, disable_math=True)
        self.phase_holder = Column(children=[], name="phase-holder")
        self.welfare_holder = Column(children=[], name="welfare-holder")
        controls = Column(
            children=[
                self.xsel,
                self.ysel,
                *[w for d in self.sliders for w in (self.slider_titles[d], self.sliders[d])],
                self.wsel,
                self.msg,
            ],
            width=240,
        )
        rows = [
            self.header,
            Row(
                children=[
                    controls,
                    Column(
                        children=[
                            Row(children=[self.phase_holder, self.phase_legend]),
                            Row(children=[self.welfare_holder, self.welfare_legend]),
                        ]
                    ),
                ]
            ),
            self.code,
            self.point_code,
        ]
        if cube.has_transition:
            rows.append(self._transition_models())
        if cube.claims:
            items = "".join(
                f"<li><b>{html.escape(c)}</b>: {html.escape(cube.statements.get(c, ''))}</li>"
                for c in cube.claims
            )
            rows.append(
                Div(
                    text=f"<b>claims</b> (hover: held / failed / n/a)<ul>{items}</ul>",
                    disable_math=True,
                )
            )
        self.layout = Column(children=rows, name="explorer")

    def _transition_models(self):
        from bokeh.models import Column, ColumnDataSource, Div, Row
        from bokeh.plotting import figure

        self.transition_head = Div(
            text="<i>click a cell: the transition to each target sector</i>",
            name="transition-head",
            width=520,
            disable_math=True,
        )
        # the table alone: on a refined cube every point filled in from one computed
        # point shows that point's table, which the offline page stores once
        self.transition_div = Div(
            text="", name="transition", width=520, stylesheets=[self.sheet], disable_math=True
        )
        kids = [self.transition_head, self.transition_div]
        self.path_sources = {}
        if self.cube.has_paths:
            figs = []
            for key, title, ylab in (
                ("x", "relative productivity x_k(t)", "x_k = A_kS / A_kN"),
                ("w", "South's wage on the transition", "w (North = 1)"),
            ):
                f = figure(
                    width=420,
                    height=300,
                    title=title,
                    name=f"paths:{key}",
                    x_axis_label="years since coordination",
                    y_axis_label=ylab,
                    tools="pan,wheel_zoom,box_zoom,reset,save",
                )
                main = ColumnDataSource({"xs": [], "ys": [], "color": [], "label": []})
                ref = ColumnDataSource({"xs": [], "ys": [], "color": [], "rlabel": []})
                f.multi_line(
                    "xs", "ys", color="color", source=main, line_width=2, legend_field="label"
                )
                f.multi_line(
                    "xs", "ys", color="color", source=ref, line_dash="dashed", legend_field="rlabel"
                )
                f.legend.location = "bottom_right"
                self.path_sources[key] = (main, ref)
                figs.append(f)
            kids.append(Row(children=figs))
        return Column(children=kids)

    def _header(self) -> str:
        cube = self.cube
        model = cube.model + (f" (J = {cube.J})" if cube.J else "")
        fixed = [
            f"{html.escape(k)} = {html.escape(fmt(v))}"
            for k, v in cube.fixed.items()
            if k not in cube.settings or cube.has_transition
        ]
        pinned = [
            f"{html.escape(d)} = {fmt(cube.values[d][i])}"
            for d, i in cube.fixed_idx.items()
            if d in cube.params
        ]
        return (
            f"<h3 style='margin:4px 0'>marshall explore: {html.escape(self.name)}</h3>"
            f"<div>model <b>{html.escape(model)}</b>; swept: "
            + ", ".join(f"{html.escape(d)} ({cube.sizes[d]})" for d in cube.params)
            + (f"; held at: {', '.join(pinned)}" if pinned else "")
            + (f"<br>fixed: {', '.join(fixed)}" if fixed else "")
            + "</div>"
        )

    def _slider_title(self, d: str, i: int) -> str:
        """The text of a slider's title (escaped: the dim's name and symbol are the
        cube's)."""
        cube = self.cube
        sym = f" ({cube.sym[d]})" if cube.sym[d] != d else ""
        return html.escape(f"{d}{sym} = {fmt(cube.values[d][int(i)])}")

    def _text(self, s: str) -> str:
        """The placeholder that shows the text ``s`` in a hover (``$index{n}``: looked up
        in :attr:`texts` by :data:`TEXT_JS`): a cube's text never enters a template."""
        s = str(s)
        if s not in self._text_index:
            self._text_index[s] = len(self.texts)
            self.texts.append(s)
        return f"$index{{{self._text_index[s]}}}"

    def _tooltip(self) -> tuple[str, dict]:
        """The phase hover: a template of fixed markup whose placeholders name columns
        by index (:func:`~pipeline.explore.slices.column_names`) and the cube's texts
        by :meth:`_text`; every value is escaped by Bokeh (no ``{safe}``)."""
        cube = self.cube
        f: dict[str, Any] = {}
        coords = []
        for i, d in enumerate(cube.params):
            coords.append(f"<span data-dim='{i}'>{self._text(d)} = @{{p{i}}}{{%.6g}}</span>")
            f[f"@{{p{i}}}"] = "printf"
        rows = []
        for j, lab in enumerate(cube.labels):
            rows.append(
                f"<tr data-eq='{j}'><td>{self._text(lab)}</td><td>@{{ex{j}}}{{custom}}</td>"
                f"<td>@{{st{j}}}{{custom}}</td><td>@{{w{j}}}{{%.6g}}</td>"
                f"<td>@{{rk{j}}}</td></tr>"
            )
            f[f"@{{ex{j}}}"] = self.fmt_yesno
            f[f"@{{st{j}}}"] = self.fmt_yesno
            f[f"@{{w{j}}}"] = "printf"
        claims = ""
        if cube.claims:
            parts = []
            for j, c in enumerate(cube.claims):
                parts.append(f"<span data-claim='{j}'>{self._text(c)}: @{{cl{j}}}{{custom}}</span>")
                f[f"@{{cl{j}}}"] = self.fmt_claim
            claims = "<div class='mx-claims'>claims: " + ", ".join(parts) + "</div>"
        f["@{ci}"] = self.fmt_regime
        f["@{knife}"] = self.fmt_yesno
        f["@{best}"] = self.fmt_label
        f["@{worst}"] = self.fmt_label
        exact = ""
        if cube.refined:
            exact = "; point: <span class='mx-exact'>@{exact}{custom}</span>"
            f["@{exact}"] = self.fmt_exact
        text = (
            "<div class='mx-tip'>"
            f"<div class='mx-coords'>{', '.join(coords)}</div>"
            "<div>regime: <b class='mx-regime'>@{ci}{custom}</b>; "
            "knife_edge: <span class='mx-knife'>@{knife}{custom}</span>; "
            "best: <span class='mx-best'>@{best}{custom}</span>, "
            f"worst: <span class='mx-worst'>@{{worst}}{{custom}}</span>{exact}</div>"
            "<table class='mx-eq'><tr><th>equilibrium</th><th>exists</th><th>stable</th>"
            f"<th>wage</th><th>rank</th></tr>{''.join(rows)}</table>{claims}</div>"
        )
        return text, f

    def _view_tooltip(self, v: View) -> tuple[str, dict]:
        """The welfare hover of view ``v`` (built as :meth:`_tooltip` is)."""
        f: dict[str, Any] = {"@{ci}": self.fmt_regime}
        coords = []
        for i, d in enumerate(self.cube.params):
            coords.append(f"{self._text(d)} = @{{p{i}}}{{%.6g}}")
            f[f"@{{p{i}}}"] = "printf"
        if v.categorical:
            val = "best: <b class='mx-value'>@{best}{custom}</b>"
            f["@{best}"] = self.fmt_label
        else:
            val = f"{self._text(v.title)}: <b class='mx-value'>@{{wv_{v.col}}}{{%.6g}}</b>"
            f[f"@{{wv_{v.col}}}"] = "printf"
        exact = ""
        if self.cube.refined:
            exact = "; point: <span class='mx-exact'>@{exact}{custom}</span>"
            f["@{exact}"] = self.fmt_exact
        text = (
            f"<div class='mx-tip'><div>{', '.join(coords)}</div><div>{val}</div>"
            f"<div>regime: @{{ci}}{{custom}}{exact}</div></div>"
        )
        return text, f

    def source(self, a: str, b: str):
        """``(cells, boundaries)`` sources of the unordered pair ``(a, b)``."""
        if (a, b) not in self._sources:
            from bokeh.models import ColumnDataSource

            empty = {c: [] for c in column_names(self.cube)}
            self._sources[(a, b)] = (
                ColumnDataSource(empty, name=f"cells:{a}:{b}"),
                ColumnDataSource(
                    {"a": [], "b": [], "name": [], "dash": []}, name=f"bounds:{a}:{b}"
                ),
            )
        return self._sources[(a, b)]

    def figures(self, x: str, y: str) -> dict[str, Any]:
        """The phase and welfare figures of the ordered pair ``(x, y)`` (made once)."""
        if (x, y) in self._figs:
            return self._figs[(x, y)]
        from bokeh.core.properties import field
        from bokeh.models import ColorBar, HoverTool, PlainText, Range1d, TapTool
        from bokeh.plotting import figure

        cube = self.cube
        a, b = cube.ordered(x, y)
        src, bsrc = self.source(a, b)
        cx, cy = ("a", "b") if x == a else ("b", "a")
        geom = dict(left=f"{cx}0", right=f"{cx}1", bottom=f"{cy}0", top=f"{cy}1", source=src)

        def fig(kind: str, title: str):
            ex, ey = cube.edges[x], cube.edges[y]
            f = figure(
                name=f"{kind}:{x}:{y}",
                width=W,
                height=H,
                title=title,
                x_axis_type="log" if cube.log[x] else "linear",
                y_axis_type="log" if cube.log[y] else "linear",
                x_range=Range1d(float(ex[0]), float(ex[-1])),
                y_range=Range1d(float(ey[0]), float(ey[-1])),
                tools="pan,wheel_zoom,box_zoom,reset,save",
                toolbar_location="right",
                stylesheets=[self.sheet],
            )
            # a dim's name is plain text ("$$" in it is no TeX); its symbol is TeX, drawn
            # on the canvas
            f.xaxis.axis_label = f"$${cube.tex[x]}$$" if cube.tex[x] else PlainText(text=x)
            f.yaxis.axis_label = f"$${cube.tex[y]}$$" if cube.tex[y] else PlainText(text=y)
            f.xaxis.name, f.yaxis.name = f"{kind}:{x}:{y}:xaxis", f"{kind}:{x}:{y}:yaxis"
            for d, ax in ((x, f.xaxis), (y, f.yaxis)):
                if cube.log[d]:
                    ax.ticker, ax.formatter = self.log_ticker, self.log_formatter
            f.grid.visible = False
            return f

        model = cube.model + (f" (J = {cube.J})" if cube.J else "")
        phase = fig("phase", f"{model}: regimes (stable equilibria)")
        keep = dict(
            line_width=0.6,
            selection_fill_alpha=1.0,
            nonselection_fill_alpha=1.0,
            selection_line_color="black",
            selection_line_width=2,
        )
        pc = {"field": "ci", "transform": self.phase_mapper}
        # an outline in the cell's own colour hides the anti-aliasing seams between
        # cells; stroking costs as much as filling, so only on slices of few cells
        outline = cube.sizes[x] * cube.sizes[y] <= OUTLINE_CELLS
        cells = phase.quad(**geom, fill_color=pc, line_color=pc if outline else None, **keep)
        phase.multi_line(cx, cy, source=bsrc, line_color="white", line_width=4)
        # each boundary its own dash, as in the PNG figures (the "dash" column)
        bl = phase.multi_line(
            cx,
            cy,
            source=bsrc,
            line_color="black",
            line_width=BOUNDARY_WIDTH,
            line_dash=field("dash"),
        )
        tip, fmts = self._phase_tip
        phase.add_tools(
            HoverTool(renderers=[cells], tooltips=tip, formatters=fmts, name="hover-phase"),
            HoverTool(renderers=[bl], tooltips=[("boundary", "@name")]),
            TapTool(renderers=[cells]),
        )
        welfare = fig("welfare", "welfare")
        # one layer for every view: a view switch changes its colour field and tooltip
        v0 = cube.views[0]
        wc = {"field": f"wi_{v0.col}", "transform": self.view_mappers[v0.key]}
        layer = welfare.quad(**geom, fill_color=wc, line_color=wc if outline else None, **keep)
        t, fm = self._view_tooltip(v0)
        whover = HoverTool(renderers=[layer], tooltips=t, formatters=fm, name="hover-welfare")
        welfare.add_tools(whover, TapTool(renderers=[layer]))
        cbar = ColorBar(color_mapper=self.display[("viridis", False)], width=12, visible=False)
        welfare.add_layout(cbar, "right")
        self._figs[(x, y)] = {
            "phase": phase,
            "welfare": welfare,
            "layer": layer,
            "hover": whover,
            "cbar": cbar,
        }
        return self._figs[(x, y)]

    # ---------------------------------------------------------------- updates
    def slice_updates(self, a: str, b: str, idx: Mapping[str, int]) -> tuple[list[Update], dict]:
        """The cells, boundaries, legend and slider titles of the slice ``(a, b)`` at
        ``idx`` (one read of the cube), and the scales of its continuous views."""
        cube = self.cube
        sub = load_slice(cube, a, b, idx, self.cache)
        n_names = len(self.regimes.names)
        cols, scales = slice_columns(cube, sub, a, b, self.regimes)
        src, bsrc = self.source(a, b)
        at = cube.at_values(cube.full_index(a, b, idx))
        try:
            bnds = cube.ds.marshall.boundaries(a, b, at=at, n=self.boundary_n)
        except QueryError:  # e.g. the model's declaration cannot be imported here
            bnds = []
        dashes = boundary_dashes(len(bnds))
        bdata = {
            "a": [s[:, 0] for bd in bnds for s in bd.segments],
            "b": [s[:, 1] for bd in bnds for s in bd.segments],
            "name": [bd.name for bd in bnds for _ in bd.segments],
            "dash": [dash for bd, dash in zip(bnds, dashes, strict=True) for _ in bd.segments],
        }
        out: list[Update] = [(src, "data", cols), (bsrc, "data", bdata)]
        out.append((src.selected, "indices", []))
        if len(self.regimes.names) != n_names:  # new regimes: longer palette
            pal = self.regimes.palette
            out += [
                (self.phase_mapper, "palette", pal),
                (self.phase_mapper, "high", len(pal) - 0.5),
                (self.fmt_regime, "args", {"names": list(self.regimes.names)}),
            ]
        present = sorted({int(c) for c in np.unique(cols["ci"])})
        pal_all = self.regimes.palette
        items = [_swatch(pal_all[i], self.regimes.names[i]) for i in present if i]
        if 0 in present:
            items.append(_swatch(NOT_COMPUTED_COLOR, NOT_COMPUTED))
        lines = "".join(
            "<div><svg width='28' height='6' style='margin-right:6px;vertical-align:middle'>"
            "<line x1='0' y1='3' x2='28' y2='3' stroke='#000' stroke-width='2' "
            f"stroke-dasharray='{' '.join(map(str, dash)) or 'none'}'/></svg>"
            f"{html.escape(bd.name)}</div>"
            for bd, dash in zip(bnds, dashes, strict=True)
        )
        legend = (
            "<div class='mx-legend'><b>stable equilibria</b>"
            + "".join(items)
            + (f"<br><b>boundaries (docs/models.md)</b>{lines}" if lines else "")
            + "</div>"
        )
        out.append((self.phase_legend, "text", legend))
        for d, i in idx.items():
            out.append((self.slider_titles[d], "text", self._slider_title(d, i)))
        return out, scales

    def axes_updates(self, x: str, y: str) -> list[Update]:
        """Show the figures of ``(x, y)``, hide the sliders of the plotted dims."""
        figs = self.figures(x, y)
        out: list[Update] = [
            (self.phase_holder, "children", [figs["phase"]]),
            (self.welfare_holder, "children", [figs["welfare"]]),
        ]
        for d, s in self.sliders.items():
            out.append((s, "visible", d not in (x, y)))
            out.append((self.slider_titles[d], "visible", d not in (x, y)))
        return out

    def view_updates(
        self, x: str, y: str, idx: Mapping[str, int], view: str, scales: Mapping
    ) -> list[Update]:
        """The welfare view ``view`` of ``(x, y)`` at ``idx``: its layer, colour bar,
        legend and the code line (``scales``: of the slice, from :meth:`slice_updates`)."""
        cube = self.cube
        v = next(v for v in cube.views if v.key == view)
        scale = scales.get(view)
        figs = self.figures(x, y)
        wc = {"field": f"wi_{v.col}", "transform": self.view_mappers[v.key]}
        tip, fm = self._view_tips[v.key]
        layer = figs["layer"]
        lc = wc if layer.glyph.line_color else None
        out: list[Update] = []
        # a click selects a cell: the layer then draws with its selection and
        # non-selection glyphs, which must show the same view as the glyph
        # (the selected cell keeps its black outline)
        for g in (layer.glyph, layer.nonselection_glyph):
            out += [(g, "fill_color", wc), (g, "line_color", lc)]
        out.append((layer.selection_glyph, "fill_color", wc))
        out += [(figs["hover"], "tooltips", tip), (figs["hover"], "formatters", fm)]
        out.append((figs["welfare"].title, "text", v.title))
        items = []
        if v.categorical:
            out.append((figs["cbar"], "visible", False))
            items.append("<b>best equilibrium</b>")
            for i in scale.present if scale is not None else range(len(cube.labels)):
                items.append(_swatch(colors.label_color(cube.labels[i]), cube.labels[i]))
            if scale is not None and scale.absent:
                items.append(_swatch(colors.ABSENT_COLOR, "no equilibrium"))
            if scale is not None and scale.missing:
                items.append(_swatch(NOT_COMPUTED_COLOR, NOT_COMPUTED))
        elif scale is not None:
            m = self.display[(view_ramp(v), scale.log)]
            out += [
                (m, "low", float(scale.low)),
                (m, "high", float(scale.high)),
                (figs["cbar"], "color_mapper", m),
                (figs["cbar"], "visible", True),
            ]
            if scale.absent:
                items.append(_swatch(colors.ABSENT_COLOR, f"{v.key[4:]} does not exist"))
            if scale.missing:
                items.append(_swatch(NOT_COMPUTED_COLOR, NOT_COMPUTED))
        out.append(
            (self.welfare_legend, "text", "<div class='mx-legend'>" + "".join(items) + "</div>")
        )
        out.append((self.code, "text", self._code_text(x, y, idx, v)))
        return out

    def _code_text(self, x: str, y: str, idx: Mapping[str, int], v: View) -> str:
        cube = self.cube
        a, b = cube.ordered(x, y)
        full = cube.full_index(a, b, idx)
        at = {d: cube.values[d][i] for d, i in full.items() if d in cube.call_dims}
        flag = "".join(f" --at {d}={_num(val)}" for d, val in at.items())
        pyat = ", ".join(f'"{d}": {_num(val)}' for d, val in at.items())
        if v.key.startswith("gap:"):
            kind = f"income-gap --equilibrium {v.key[4:]}"
        else:
            kind = "welfare"
        cmd = f"marshall plot {_shell(self.name)}"
        lines = [
            f"{cmd} phase --x {x} --y {y}{flag} -o phase.png",
            f"{cmd} {kind} --x {x} --y {y}{flag} -o {kind.split()[0]}.png",
            f'ds = pipeline.open_cube("{self.name}"); sub = ds.marshall.slice2d('
            f'"{x}", "{y}", at={{{pyat}}})',
        ]
        return "<div class='mx-code'>" + html.escape("\n".join(lines)) + "</div>"

    def point_updates(
        self,
        vals: Mapping[str, float],
        rows: Mapping[str, list] | None = None,
        paths: xr.Dataset | None = None,
    ) -> list[Update]:
        """The clicked grid point (``vals``: its swept parameters): its
        ``ds.marshall.at(...)`` call and, for dynamic cubes, the transitions (``rows``,
        :func:`~pipeline.explore.slices.transition_rows`) and the paths (``paths``: the
        point's ``x_path``, ``wage_path``, ``a_hat`` and ``wage``)."""
        cube = self.cube
        vals = {d: v for d, v in vals.items() if d in cube.call_dims}
        args = ", ".join(f"{d}={_num(v)}" for d, v in vals.items())
        lines = [f"ds.marshall.at({args})"]
        if cube.has_transition:
            lines.append(f"ds.marshall.transition({args})")
        if cube.has_paths:
            lines.append(
                f"marshall plot {_shell(self.name)} paths"
                + "".join(f" --at {d}={_num(v)}" for d, v in vals.items())
                + " -o paths.png"
            )
        out: list[Update] = [
            (
                self.point_code,
                "text",
                "<div class='mx-code'>" + html.escape("\n".join(lines)) + "</div>",
            )
        ]
        if cube.has_transition and rows is not None:
            coords = html.escape(", ".join(f"{d} = {fmt(v)}" for d, v in vals.items()))
            out.append((self.transition_head, "text", f"<b>transitions at</b> {coords}"))
            out.append((self.transition_div, "text", transition_html(rows)))
        if cube.has_paths and paths is not None:
            out += self._path_updates(paths)
        return out

    def _path_updates(self, point: xr.Dataset) -> list[Update]:
        cube = self.cube
        t = np.asarray(point["time"].values, float)
        xs, ws = point["x_path"].transpose("target", "time"), point["wage_path"]
        ws = ws.transpose("target", "time")
        main_x, ref_x = self.path_sources["x"]
        main_w, ref_w = self.path_sources["w"]
        cols = [colors.label_color(f"C{k}") for k in cube.targets]
        px = {
            "xs": [t] * len(cube.targets),
            "ys": [np.asarray(xs.values[i], float) for i in range(len(cube.targets))],
            "color": cols,
            "label": [f"x_{k}(t), cluster in {k}" for k in cube.targets],
        }
        pw = dict(px, ys=[np.asarray(ws.values[i], float) for i in range(len(cube.targets))])
        pw["label"] = [f"w(t), cluster in {k}" for k in cube.targets]
        rx = {"xs": [], "ys": [], "color": [], "rlabel": []}
        if "a_hat" in point and "sector" in point["a_hat"].dims:
            secs = [int(s) for s in point["sector"].values]
            for k, c in zip(cube.targets, cols, strict=True):
                if k in secs:
                    ah = float(point["a_hat"].values[secs.index(k)])
                    rx["xs"].append(t[[0, -1]])
                    rx["ys"].append(np.array([ah, ah]))
                    rx["color"].append(c)
                    rx["rlabel"].append(f"a_hat_{k}")
        rw = {"xs": [], "ys": [], "color": [], "rlabel": []}
        if "B1" in cube.labels:
            wB = float(point["wage"].values[cube.labels.index("B1")])
            if np.isfinite(wB):
                rw = {
                    "xs": [t[[0, -1]]],
                    "ys": [np.array([wB, wB])],
                    "color": ["#000000"],
                    "rlabel": ["w_B (stay in B1)"],
                }
        return [
            (main_x, "data", px),
            (ref_x, "data", rx),
            (main_w, "data", pw),
            (ref_w, "data", rw),
        ]

    def centre(self) -> tuple[int, dict[str, float]]:
        """The grid point at the sliders' initial positions: ``(flat index, values)``,
        shown in the transition panel until a cell is clicked."""
        cube = self.cube
        multi = [cube.fixed_idx.get(d, self.idx.get(d, 0)) for d in cube.params]
        pt = int(np.ravel_multi_index(multi, [cube.sizes[d] for d in cube.params]))
        return pt, {d: float(cube.values[d][i]) for d, i in zip(cube.params, multi, strict=True)}

    # ------------------------------------------------------------------ state
    def state_updates(self) -> list[Update]:
        """Everything the current state (``x, y, idx, view``) shows."""
        a, b = self.cube.ordered(self.x, self.y)
        idx = {d: self.idx[d] for d in self.cube.others(a, b)}
        out, scales = self.slice_updates(a, b, idx)
        out += self.axes_updates(self.x, self.y)
        out += self.view_updates(self.x, self.y, idx, self.view, scales)
        return out


def apply(updates: list[Update]) -> None:
    """Assign updates in Python (the served page)."""
    for m, attr, v in updates:
        setattr(m, attr, v)


def _swatch(color: str, label: str) -> str:
    return f"<div><span class='sw' style='background:{color}'></span>{html.escape(label)}</div>"


def _shell(s: str) -> str:
    import shlex

    return shlex.quote(s)


__all__ = ["Page", "apply", "ExploreError", "MISSING_INDEX"]
