"""Colours of regimes and equilibrium labels, and the boundary line styles, shared by
every figure and page.

A regime is a set of stable equilibria, named by its sorted labels (``"B1+C1+C2"``).
The names the shipped configs produce have one fixed colour each (:data:`FIXED`, from
:data:`PALETTE`), the same in every phase diagram, welfare map and explorer page, for
every cube. Every other name is coloured per figure (:func:`regime_colors`, given all
the names one figure shows): from :data:`RESERVE`, starting at a place set by the
name's SHA-256 (:func:`regime_color`, the name alone) and, where another name of the
figure has that one, the next free one: the same set of names gets the same colours on
every machine, and a name keeps its own colour in every figure where no other took it.

**Distinguishable.** Any two colours of :data:`PALETTE` and :data:`RESERVE`, and each
of them against the greys drawn beside regimes (:data:`NONE_COLOR`,
:data:`MISSING_COLOR`), black (boundary lines) and white, differ by at least
:data:`MIN_DELTA_E` in CIEDE2000 (:func:`delta_e`); so do all the colours of one figure
with up to ``len(PALETTE) + len(RESERVE)`` regimes (103), which no 2-D slice of the
models reaches for J <= 10 (a J = 4 cube holds at most 32 regimes). Colours looked up
one name at a time (:func:`regime_color`) can collide; past the reserve, names get a
hue from their hash: neither has the guarantee. This module imports nothing heavy (no
JAX, no matplotlib): the browser page uses it too.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
import re
from collections.abc import Iterable
from functools import cache

OKABE_ITO = ["#e69f00", "#56b4e9", "#009e73", "#f0e442", "#0072b2", "#d55e00", "#cc79a7"]
#: Paul Tol's "muted", less its cyan #88ccee (CIEDE2000 8.0 from Okabe-Ito's sky blue
#: #56b4e9) and its teal #44aa99 (9.6 from bluish green #009e73)
TOL_MUTED = ["#cc6677", "#332288", "#ddcc77", "#117733", "#882255", "#999933", "#aa4499"]
#: the least CIEDE2000 difference between two colours shown side by side as different
#: categories. One unit is about a just-noticeable difference between large patches
#: seen side by side (Sharma et al. 2005); a phase diagram's cells are small and a
#: legend swatch is read against a region across the figure, where the difference
#: needed grows several-fold (Szafir 2017, "Modeling color difference for
#: visualization design"), so 10: the two J = 3 purples this replaced (#b142d7,
#: #8e42d7) differ by 6.7.
MIN_DELTA_E = 10.0
#: the categorical palette: Okabe-Ito without black, Tol's muted, and two colours
#: chosen to differ from all of them (and from the greys, black and white) by
#: MIN_DELTA_E: 16 colours, pairwise >= 10.0
PALETTE = OKABE_ITO + TOL_MUTED + ["#2d8796", "#9687ff"]
#: colours for regime names outside FIXED, pairwise and against PALETTE and the greys,
#: black and white at least MIN_DELTA_E apart, lightness L* in [35, 90] (visible
#: against black lines and white halos), in the order a greedy farthest-point search
#: over the sRGB grid of step 15 found them (most distinct first)
RESERVE = [
    "#00ff69", "#785a00", "#5af0e1", "#2d5a5a", "#b40f1e", "#ffb496", "#ffd2ff",
    "#695a5a", "#782dff", "#ff00ff", "#2db400", "#696996", "#a5d2a5", "#c3d2ff",
    "#ff2d2d", "#96785a", "#78b4b4", "#4b5a00", "#ffa5b4", "#f096ff", "#964b1e",
    "#788769", "#b4a5c3", "#2de1ff", "#004bc3", "#a5d24b", "#d20069", "#f0d2d2",
    "#874b4b", "#5a5a4b", "#b4a587", "#e1e1c3", "#694b69", "#b4780f", "#c38778",
    "#5a8700", "#c3e1e1", "#967887", "#00d287", "#ff0fa5", "#ff870f", "#3c87ff",
    "#4b5a69", "#007869", "#3c5a3c", "#9669c3", "#ff784b", "#f0d2b4", "#7887a5",
    "#ff7878", "#782da5", "#5a69e1", "#b45a4b", "#78a569", "#c300e1", "#877800",
    "#96a596", "#785a3c", "#c3a5a5", "#87a5b4", "#ff005a", "#d22d00", "#ffc378",
    "#d2965a", "#697878", "#00ffc3", "#87a5e1", "#b4e1ff", "#c3a500", "#965a78",
    "#a50f3c", "#1e963c", "#00c3b4", "#699687", "#ff69d2", "#00a5c3", "#e1a5d2",
    "#b4f096", "#005a78", "#b4a5f0", "#69693c", "#5a4b87", "#c378f0", "#9687b4",
    "#ff6996", "#a5b469", "#ffc300",
]  # fmt: skip
#: regime "none" (no stable equilibrium)
NONE_COLOR = "#bbbbbb"
#: equilibrium does not exist (income-gap maps)
ABSENT_COLOR = "#dddddd"
#: point not computed yet (a mid grey, distinct from the regime "none" and from "does not
#: exist")
MISSING_COLOR = "#8c8c8c"

#: regimes of the shipped models, each with its palette colour (order = palette order)
FIXED: dict[str, str] = dict(
    zip(
        [
            "B1+C1+C2",
            "B1+C1",
            "C1",
            "C2",
            "B1+C2",
            "B2+C2",
            "B1",
            "C1+C2",
            "B2+C1+C2",
            "B1+C1+C2+C3",
            "B1+C1+C2+C3+C4",
            "B1+C1+C3",
            "B2",
            "B2+C1",
            "B1+C1+C2+C4",
            "B1+C1+C3+C4",
        ],
        PALETTE,
        strict=True,
    )
)

_LABEL = re.compile(r"^([A-Za-z]+)(\d*)$")


def _label_key(label: str) -> tuple[int, str]:
    """A number for an equilibrium label, the same in every model: ``C1 -> 1``,
    ``B1 -> 2``, ``C2 -> 3``, ... (letter interleaved with sector), ``D`` and others after."""
    m = _LABEL.match(label)
    order = "CBMD"
    if not m:
        return 10_000, label
    letter, j = m.group(1), int(m.group(2) or 0)
    li = order.index(letter) if letter in order else len(order) + (ord(letter[0]) % 26)
    return j * 32 + li, label


@cache
def regime_color(name: str) -> str:
    """Hex colour of a regime name (``"none"``: :data:`NONE_COLOR`)."""
    if name == "none":
        return NONE_COLOR
    if name in FIXED:
        return FIXED[name]
    return RESERVE[_reserve_start(name)]


def label_color(label: str) -> str:
    """Hex colour of an equilibrium label (``C1``, ``B2``, ``D``, ...), the same in every
    model: the palette in the order ``C1, B1, C2, B2, M1, D, C3, ...``."""
    key = _label_key(label)[0]
    j, li = divmod(key, 32)
    idx = (max(j, 1) - 1) * 4 + li if li < 4 else None
    if idx is not None and idx < len(PALETTE):
        return PALETTE[idx]
    return _hue(label)


def _hue(name: str) -> str:
    """A colour for any name: hue from the name's SHA-256, in one of two lightness bands."""
    digest = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
    h = (digest >> 1) / 2.0**63
    light = 0.55 if digest & 1 else 0.40
    r, g, b = colorsys.hls_to_rgb(h, light, 0.65)
    return "#{:02x}{:02x}{:02x}".format(*(round(255 * v) for v in (r, g, b)))


def regime_colors(names: Iterable[str]) -> dict[str, str]:
    """``{name: colour}`` for ALL the regime names one figure (or page) shows: a name
    of :data:`FIXED` its fixed colour, ``"none"`` :data:`NONE_COLOR`, every other name
    (in sorted order) the first colour of :data:`RESERVE` from its hashed start that
    no other name here has. Up to ``len(PALETTE) + len(RESERVE)`` names, any two differ
    by at least :data:`MIN_DELTA_E` (CIEDE2000); past that, hashed hues."""
    names = list(dict.fromkeys(names))
    out = {n: regime_color(n) for n in names if n == "none" or n in FIXED}
    used = set(out.values())
    for n in sorted(n for n in names if n not in out):
        start = _reserve_start(n)
        for k in range(len(RESERVE)):
            c = RESERVE[(start + k) % len(RESERVE)]
            if c not in used:
                break
        else:
            c = _hue(n)
        out[n] = c
        used.add(c)
    return {n: out[n] for n in names}


def _reserve_start(name: str) -> int:
    """Where a name's colour is looked for in :data:`RESERVE` (from its SHA-256)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % len(RESERVE)


# ----------------------------------------------------------------- colour difference


def _linear(c: float) -> float:
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def cielab(color: str) -> tuple[float, float, float]:
    """CIELAB ``(L*, a*, b*)`` of a ``#rrggbb`` sRGB colour (D65 white)."""
    h = color.lstrip("#")
    r, g, b = (_linear(int(h[i : i + 2], 16) / 255.0) for i in (0, 2, 4))
    x = (0.4124564 * r + 0.3575761 * g + 0.1804375 * b) / 0.95047
    y = 0.2126729 * r + 0.7151522 * g + 0.0721750 * b
    z = (0.0193339 * r + 0.1191920 * g + 0.9503041 * b) / 1.08883
    d = 6.0 / 29.0

    def f(t: float) -> float:
        return t ** (1.0 / 3.0) if t > d**3 else t / (3.0 * d * d) + 4.0 / 29.0

    fx, fy, fz = f(x), f(y), f(z)
    return 116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)


def ciede2000(lab1: tuple[float, float, float], lab2: tuple[float, float, float]) -> float:
    """The CIEDE2000 colour difference of two CIELAB colours (Sharma, Wu & Dalal 2005,
    with ``k_L = k_C = k_H = 1``)."""
    L1, a1, b1 = lab1
    L2, a2, b2 = lab2
    Cb = (math.hypot(a1, b1) + math.hypot(a2, b2)) / 2.0
    G = 0.5 * (1.0 - math.sqrt(Cb**7 / (Cb**7 + 25.0**7)))
    a1p, a2p = (1.0 + G) * a1, (1.0 + G) * a2
    C1p, C2p = math.hypot(a1p, b1), math.hypot(a2p, b2)
    h1p = math.degrees(math.atan2(b1, a1p)) % 360.0 if C1p else 0.0
    h2p = math.degrees(math.atan2(b2, a2p)) % 360.0 if C2p else 0.0
    dLp, dCp = L2 - L1, C2p - C1p
    dhp = 0.0
    if C1p * C2p:
        dhp = h2p - h1p
        dhp = dhp - 360.0 if dhp > 180.0 else dhp + 360.0 if dhp < -180.0 else dhp
    dHp = 2.0 * math.sqrt(C1p * C2p) * math.sin(math.radians(dhp) / 2.0)
    Lbp, Cbp = (L1 + L2) / 2.0, (C1p + C2p) / 2.0
    if not C1p * C2p:
        hbp = h1p + h2p
    elif abs(h1p - h2p) <= 180.0:
        hbp = (h1p + h2p) / 2.0
    else:
        hbp = (h1p + h2p + (360.0 if h1p + h2p < 360.0 else -360.0)) / 2.0
    T = (
        1.0
        - 0.17 * math.cos(math.radians(hbp - 30.0))
        + 0.24 * math.cos(math.radians(2.0 * hbp))
        + 0.32 * math.cos(math.radians(3.0 * hbp + 6.0))
        - 0.20 * math.cos(math.radians(4.0 * hbp - 63.0))
    )
    dth = 30.0 * math.exp(-(((hbp - 275.0) / 25.0) ** 2))
    Rc = 2.0 * math.sqrt(Cbp**7 / (Cbp**7 + 25.0**7))
    Sl = 1.0 + 0.015 * (Lbp - 50.0) ** 2 / math.sqrt(20.0 + (Lbp - 50.0) ** 2)
    Sc, Sh = 1.0 + 0.045 * Cbp, 1.0 + 0.015 * Cbp * T
    Rt = -math.sin(math.radians(2.0 * dth)) * Rc
    return math.sqrt(
        (dLp / Sl) ** 2 + (dCp / Sc) ** 2 + (dHp / Sh) ** 2 + Rt * (dCp / Sc) * (dHp / Sh)
    )


def delta_e(c1: str, c2: str) -> float:
    """CIEDE2000 difference of two ``#rrggbb`` colours."""
    return ciede2000(cielab(c1), cielab(c2))


# ------------------------------------------------------------ boundary line styles

#: dash patterns of the boundaries drawn over a phase diagram, one per boundary in
#: order (cycled): ``None`` a solid line, else on/off lengths in units of the line
#: width (matplotlib's convention; Bokeh's ``line_dash`` takes pixels: multiply by the
#: width, :func:`boundary_dash`). Public, so the explorer draws the same lines.
BOUNDARY_DASHES: tuple[tuple[float, ...] | None, ...] = (
    None,
    (3.7, 1.6),
    (1.0, 1.65),
    (6.4, 1.6, 1.0, 1.6),
    (5.0, 1.0, 1.0, 1.0),
    (1.0, 3.0),
    (8.0, 2.0),
    (3.0, 1.0, 1.0, 1.0, 1.0, 1.0),
)


def boundary_linestyle(i: int):
    """Matplotlib ``linestyle`` of the ``i``-th boundary (``"-"`` or ``(0, dashes)``)."""
    d = BOUNDARY_DASHES[i % len(BOUNDARY_DASHES)]
    return "-" if d is None else (0, d)


def boundary_dash(i: int, width: float = 1.0) -> list[int]:
    """Bokeh ``line_dash`` of the ``i``-th boundary for a line ``width`` pixels wide
    (``[]``: solid)."""
    d = BOUNDARY_DASHES[i % len(BOUNDARY_DASHES)]
    return [] if d is None else [max(1, round(v * width)) for v in d]
