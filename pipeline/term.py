"""Text for the terminal: whatever came from a config, a cube or a command line reaches
it inert (STYLE habit 13, "data is not code").

Every console of the command line is :func:`console`: emoji codes (``:b:``) are not
substituted, and every string it renders has its control characters (ESC, the C1
controls, bidirectional overrides, ...) shown as escapes (``\\x1b``), so a config key
holding an escape sequence cannot retitle the terminal or move the cursor. Rich markup
stays for marshall's own words; user text inside them goes through :func:`quote`
(control characters escaped and markup escaped), or is printed with ``markup=False``.
"""

from __future__ import annotations

import re

from rich.console import Console
from rich.markup import escape

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional overrides
# and isolates (text that reads in another order than it is stored)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape_char(m: re.Match) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def clean(text: object) -> str:
    """``text`` with its control characters shown as escapes (``\\x1b``); tab and
    newline are kept."""
    return _CONTROL.sub(_escape_char, str(text))


def quote(text: object) -> str:
    """User text for a message with rich markup: control characters and markup escaped."""
    return escape(clean(text))


class SafeConsole(Console):
    """A rich console that renders every string with its control characters escaped
    and without emoji codes (tables, titles and ``print`` alike)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("emoji", False)
        super().__init__(*args, **kwargs)

    def render_str(self, text: str, *args, **kwargs):  # type: ignore[override]
        kwargs["emoji"] = False
        return super().render_str(clean(text), *args, **kwargs)


def console(stderr: bool = False, **kwargs) -> SafeConsole:
    """The console every command prints with (stdout, or ``stderr=True``)."""
    return SafeConsole(stderr=stderr, **kwargs)
