"""Paths given by a user (a config's ``output``, a command's arguments): ``~`` expanded
here, once, so that every path marshall checks, locks, writes and renames is the one
the libraries under it (xarray, zarr, matplotlib) would use. Without this, marshall
checked and locked a literal ``./~/x.zarr`` while xarray expanded ``~`` and wrote the
template into ``$HOME``."""

from __future__ import annotations

import os
from pathlib import Path

#: bytes in one component of a path (a file or directory name) on Linux and macOS
NAME_MAX = 255


def user_path(text: str | os.PathLike) -> Path:
    """``text`` as a path, a leading ``~`` or ``~user`` expanded; ``ValueError`` when it
    cannot be (``HOME`` not set, no such user)."""
    s = os.fspath(text)
    if s.startswith("~"):
        expanded = os.path.expanduser(s)
        if expanded.startswith("~"):
            user = s[1:].split("/", 1)[0]
            why = f"there is no user {user!r}" if user else "HOME is not set"
            raise ValueError(f"{s!r} starts with ~, which cannot be expanded ({why}); give the "
                             "path without ~ (absolute, or relative to where you run)")  # fmt: skip
        return Path(expanded)
    return Path(s)


def path_problem(path: Path) -> str | None:
    """What makes ``path`` unusable as a name on disk (a control character, a component
    over :data:`NAME_MAX` bytes), or None."""
    s = str(path)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in s):
        return f"{s!r} holds a control character; give a plain path"
    for part in path.parts:
        n = len(part.encode("utf-8", "surrogateescape"))
        if n > NAME_MAX:
            return (f"the name {part[:40]!r}... is {n} bytes; a file system allows at most "
                    f"{NAME_MAX} per name: shorten it")  # fmt: skip
    return None


def cli_path(value: Path | None) -> Path | None:
    """A typer callback for path arguments and options: :func:`user_path`, or a usage
    error (exit 2) naming the fix."""
    if value is None:
        return None
    try:
        return user_path(value)
    except ValueError as exc:
        import typer

        raise typer.BadParameter(str(exc)) from None
