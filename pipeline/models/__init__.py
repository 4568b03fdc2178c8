"""The model registry: every model the pipeline can run, looked up by name.

A model is one file holding one :class:`~pipeline.models._spec.Model` declaration
(its parameters, labels, claims, outputs, margins and kernel). Three ways in:

- built in: the table below (one line per model, imported when first asked for);
- out of tree: ``model: package.module:ATTR`` in a config names any importable
  module and the attribute that holds its ``Model`` (e.g. ``custom_model:MODEL``
  with ``custom_model.py`` on ``PYTHONPATH``). **Such a config runs code**: naming
  ``module:ATTR`` imports that module, with whatever it does when imported, exactly
  like ``import module`` in Python. The name's syntax (dotted identifiers, a colon,
  an identifier) is checked before anything is imported; a module that fails to
  import (any exception: a syntax error, a missing dependency) or an attribute that
  is not a ``Model`` is a :class:`ModelNotFound` naming the fix. Whatever the module
  prints while it is imported goes to stderr, never into a command's output;
- installed packages: an entry point in the group ``marshall.models`` whose name is
  the model's name and whose value is ``module:ATTR``.

Nothing here imports JAX: a declaration is plain data and pure functions; the
kernels import JAX when they run.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from functools import cache

from ._spec import Model

#: name -> "module:attribute" of the built-in models
BUILTIN = {
    "standard": "pipeline.models.standard:MODEL",
    "modes": "pipeline.models.sectors:MODES",
    "coordination": "pipeline.models.sectors:COORDINATION",
    "asymmetric": "pipeline.models.asymmetric:MODEL",
    "dynamic": "pipeline.models.dynamic:MODEL",
}
ENTRY_POINTS = "marshall.models"
#: what a config's ``module:ATTR`` does, said by ``marshall models`` and the README
RUNS_CODE = (
    "A config whose model is 'module:ATTR' imports (runs) that Python module, like "
    "`import module`: use it only with code you trust. Installed packages register "
    f"models as entry points ({ENTRY_POINTS}), the trusted route."
)


class ModelNotFound(LookupError):
    """A model name that is not registered and cannot be imported."""


def valid_target(target: str) -> bool:
    """``module:ATTR`` with ``module`` dotted identifiers and ``ATTR`` an identifier
    (checked before anything is imported: no relative or odd names)."""
    mod_name, sep, attr = target.partition(":")
    return (
        bool(sep)
        and attr.isidentifier()
        and all(part.isidentifier() for part in mod_name.split("."))
    )


def _load(target: str, name: str) -> Model:
    if not valid_target(target):
        raise ModelNotFound(
            f"model {name!r}: expected a registered name ({', '.join(names())}) or "
            "'module:ATTRIBUTE' (dotted Python identifiers, a colon, an identifier, e.g. "
            "custom_model:MODEL) naming an importable Model"
        )
    mod_name, _, attr = target.partition(":")
    try:
        # import-time output goes to stderr: never into a command's own output (--json)
        with contextlib.redirect_stdout(sys.stderr):
            mod = importlib.import_module(mod_name)
    except ModuleNotFoundError as exc:
        raise ModelNotFound(
            f"model {name!r}: cannot import module {mod_name!r} ({exc}); put its folder "
            "on PYTHONPATH or install it"
        ) from None
    except (Exception, SystemExit) as exc:  # the module's own code failed
        where = ""
        if isinstance(exc, SyntaxError) and exc.filename:
            where = f" at {exc.filename}, line {exc.lineno}"
        raise ModelNotFound(
            f"model {name!r}: importing module {mod_name!r} failed{where}: "
            f"{type(exc).__name__}: {exc}; fix that module (or name another model)"
        ) from None
    obj = getattr(mod, attr, None)
    if not isinstance(obj, Model):
        raise ModelNotFound(
            f"model {name!r}: {mod_name}.{attr} is "
            + ("missing" if obj is None else f"a {type(obj).__name__}, not a pipeline.Model")
            + f"; name the attribute that holds the module's Model (e.g. {mod_name}:MODEL)"
        )
    return obj


def _entry_points() -> dict[str, str]:
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINTS)}


@cache
def get(name: str) -> Model:
    """The declaration of a model: a built-in name, an installed entry point, or
    ``module:ATTR``. Raises :class:`ModelNotFound` with what to do."""
    if name in BUILTIN:
        return _load(BUILTIN[name], name)
    eps = _entry_points()
    if name in eps:
        return _load(eps[name], name)
    if ":" in name:
        model = _load(name, name)
        return model
    raise ModelNotFound(
        f"unknown model {name!r}; choose one of {', '.join(names())}, or name an "
        "out-of-tree model as 'module:ATTRIBUTE'"
    )


def names() -> list[str]:
    """Registered model names: the built-in ones, then installed entry points."""
    return list(BUILTIN) + [n for n in _entry_points() if n not in BUILTIN]


def all_models() -> list[Model]:
    return [get(n) for n in names()]
