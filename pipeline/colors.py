"""One fixed colour per regime name and per equilibrium label, in every figure and page.

A regime is a set of stable equilibria, named by its sorted labels (``"B1+C1+C2"``).
Its colour depends on the name alone, never on which other regimes a cube or a slice
holds, so the same regime has the same colour in every phase diagram, welfare map and
explorer page, for every cube. Names that the shipped configs produce get the
colour-blind-safe palette (Okabe-Ito without black, then Paul Tol's "muted"), assigned
once in :data:`FIXED`; any other name gets a colour derived from the name itself (a hue
from its SHA-256), stable across cubes and machines. This module imports nothing heavy
(no JAX, no matplotlib): the browser page uses it too.
"""

from __future__ import annotations

import colorsys
import hashlib
import re
from functools import cache

OKABE_ITO = ["#e69f00", "#56b4e9", "#009e73", "#f0e442", "#0072b2", "#d55e00", "#cc79a7"]
TOL_MUTED = [
    "#cc6677",
    "#332288",
    "#ddcc77",
    "#117733",
    "#88ccee",
    "#882255",
    "#44aa99",
    "#999933",
    "#aa4499",
]
#: the categorical palette (16 colour-blind-safe colours)
PALETTE = OKABE_ITO + TOL_MUTED
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
    return _hue(name)


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


def regime_colors(names) -> dict[str, str]:
    """``{name: colour}`` for an iterable of regime names."""
    return {n: regime_color(n) for n in names}
