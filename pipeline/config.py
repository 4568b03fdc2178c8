"""Sweep configs: YAML -> validated, frozen :class:`SweepSpec`.

One schema for the CLI, the Snakefile and the tests, driven by the models' parameter
tables (:mod:`pipeline.models`). Structure::

    model: coordination            # a registered model (`marshall models`) or module:ATTR
    sectors: 2                     # J, for the sector models
    params:                        # each: a number (fixed) or an axis (swept)
      r_1: {logspace: [0.25, 4.0, 201]}
      r_2: 1.0
      theta_1: {linspace: [1.05, 4.0, 150]}
      theta_2: [1.5, 2.0, 3.0]     # an explicit, strictly increasing list is an axis too
    chunks: {r_1: 64, theta_1: 64} # optional
    refine:                        # optional: regime-adaptive refinement (pipeline.refine)
      on: [regime, best]           # categorical outputs whose changes mark a boundary
      levels: 8                    # each level halves the spacing along every refined axis
    output: results/coordination.zarr

Everything that can be wrong with a config is found here, before anything is
written, and every problem is reported at once as ``field: what is wrong. fix``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, ValidationError

from .models._spec import num
from .paths import path_problem, user_path
from .refine import MAX_LEVELS, RefineAxis, RefineGrid

MAX_SECTORS = 10  # the regime bitmask (int32) holds 3 J labels
MAX_AXIS = 10_000_000  # points on one axis (80 MB of coordinate)
MAX_CONFIG_BYTES = 1_000_000
#: the point dimension of a sampled (designed) sweep
SAMPLE = "sample"
#: at most this many grid points in one sweep (beyond any disk: ~20 PB of output)
MAX_POINTS = 10**15
#: at most this many blocks (chunks) in one sweep: each is a task, a file per variable
MAX_BLOCKS = 10**6
TOP_FIELDS = ("model", "sectors", "params", "chunks", "output", "save_paths", "name",
              "description", "design", "refine")  # fmt: skip


class ConfigError(ValueError):
    """A config that cannot be run; ``problems`` lists ``(field, message)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]], source: str | None = None):
        self.problems = problems
        self.source = source
        where = f" in {source}" if source else ""
        lines = [f"invalid sweep config{where}:"] + [f"  - {f}: {m}" for f, m in problems]
        super().__init__("\n".join(lines))


# --------------------------------------------------------------------------- schema


class RawConfig(BaseModel):
    """The YAML's top level as written (types only; meaning is checked by :func:`validate`)."""

    model_config = ConfigDict(extra="forbid", strict=False)
    model: str
    sectors: StrictInt = 2
    params: dict[str, Any]
    chunks: dict[str, StrictInt] = {}
    output: str
    save_paths: StrictBool = False
    name: str | None = None
    description: str | None = None
    design: Any = None
    refine: Any = None


# ------------------------------------------------------------------------ the spec


@dataclass(frozen=True)
class Axis:
    """A swept parameter: cube dimension ``name`` with coordinate ``values``."""

    name: str
    values: np.ndarray
    spacing: Literal["linear", "log", "list"]

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class RefineSpec:
    """A config's ``refine`` block, validated (:mod:`pipeline.refine` has the rules).

    ``on``: the categorical outputs (integer or boolean codes, possibly over extra
    dims such as ``target``) whose changes between a cell's corners mark it; ``knife``:
    the boolean output that also marks a cell (``knife_edge``, where the model declares
    it); ``axes``: the swept axes as configured (the coarse grid, level 0), in cube
    dimension order; ``neighbours``: ``face`` (default) or ``box``.
    """

    on: tuple[str, ...]
    levels: int
    neighbours: Literal["face", "box"]
    axes: tuple[RefineAxis, ...]
    knife: str | None = None

    @cached_property
    def grid(self) -> RefineGrid:
        """Shapes, coordinates and index maps of the levels."""
        return RefineGrid(self.axes, self.levels)

    def canonical(self) -> dict[str, Any]:
        return {"on": list(self.on), "levels": self.levels, "neighbours": self.neighbours}


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep. Built by :func:`load_config` / :func:`validate`; never mutated.

    ``model`` is the name as configured (a registered name or ``module:ATTR``);
    :attr:`decl` is its declaration. ``canonical`` (hashed) holds the config's
    meaning, not its formatting. ``aliases`` maps a config name to the model's own
    name for it (e.g. ``theta_1 -> theta_1N``); ``notes`` are warnings for the user.
    ``refine``: a refined sweep's levels (:class:`RefineSpec`); its ``axes`` are then
    the finest grid's (the dense equivalent's) and ``chunks`` the chunk shape of every
    level's arrays (capped by the level's shape).
    """

    model: str
    sectors: int
    axes: tuple[Axis, ...]
    fixed: Mapping[str, float]
    chunks: tuple[int, ...]
    output: Path
    save_paths: bool
    name: str
    description: str
    text: str  # the config as given (YAML), for provenance
    canonical: Mapping[str, Any] = field(repr=False)  # normalised form, hashed
    aliases: Mapping[str, str] = field(default_factory=dict, repr=False)
    notes: tuple[str, ...] = ()
    #: a sampling design (:class:`pipeline.designs.DesignSpec`) instead of grid axes
    design: Any = None
    refine: RefineSpec | None = None  # a refined sweep (axes: its finest grid)

    @cached_property
    def decl(self):
        """The model's declaration (:class:`pipeline.models.Model`)."""
        from .models import get

        return get(self.model)

    @property
    def J(self) -> int:
        return self.sectors

    @property
    def dims(self) -> tuple[str, ...]:
        """The cube's point dimensions: the swept parameters, or ``("sample",)``."""
        if self.design is not None:
            return (SAMPLE,)
        return tuple(a.name for a in self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        if self.design is not None:
            return (self.design.size,)
        return tuple(len(a) for a in self.axes)

    @property
    def n_points(self) -> int:
        """Points of the sweep (a Python int: never overflows)."""
        return math.prod(self.shape)

    @property
    def sampled(self) -> tuple[str, ...]:
        """The parameters drawn by the design (sorted), or none."""
        return tuple(self.design.names) if self.design is not None else ()

    @cached_property
    def samples(self) -> dict[str, np.ndarray]:
        """The design's points ``{parameter: float64[n]}`` (generated once per process;
        the same on every machine with the same numpy/scipy/SALib)."""
        return self.design.samples() if self.design is not None else {}

    @property
    def config_hash(self) -> str:
        return config_hash(self.canonical)

    def value(self, name: str) -> float | None:
        """Fixed value of a parameter (``None`` if swept or not given)."""
        return self.fixed.get(name)

    def given(self, name: str) -> bool:
        return name in self.fixed or name in self.dims

    def canonical_name(self, name: str) -> str:
        return self.aliases.get(name, name)

    def __getstate__(self):  # cached declaration and samples are made again where unpickled
        state = dict(self.__dict__)
        state.pop("decl", None)
        state.pop("samples", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)


def config_hash(canonical: Mapping[str, Any]) -> str:
    blob = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()


# ---------------------------------------------------------------------- loading


class _Loader(yaml.SafeLoader):
    """Safe YAML that refuses anchors/aliases (no "billion laughs") and duplicate keys."""

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(
                None, None, "YAML aliases (*name) are not allowed in sweep configs",
                event.start_mark,
            )  # fmt: skip
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                dup = key in seen
            except TypeError:
                dup = False
            if dup:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f"duplicate key {key!r} (first at line {seen[key].line + 1}); "
                    "give each key once", key_node.start_mark,
                )  # fmt: skip
            try:
                seen[key] = key_node.start_mark
            except TypeError:
                pass
        return super().construct_mapping(node, deep=deep)


# YAML 1.1 (PyYAML) reads a float only with a dot and a signed exponent, so ``2e-2`` and
# ``1.1e6`` were strings; YAML 1.2's core schema (and every economist) reads them as
# numbers. Added after the YAML 1.1 resolvers: integers (``10``) stay integers.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_config(path: str | Path, output: str | Path | None = None) -> SweepSpec:
    """Read and validate a YAML config. Raises :class:`ConfigError` naming every problem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError([("config", f"no such file {str(path)!r}")])
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(
            [("config", f"file is over {MAX_CONFIG_BYTES} bytes; not a sweep config")]
        )
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([("config", f"cannot read {str(path)!r}: {exc}")]) from None
    return parse_config(text, source=str(path), output=output)


def parse_config(
    text: str, source: str | None = None, output: str | Path | None = None
) -> SweepSpec:
    """Validate a config given as YAML text (``output`` overrides the config's)."""
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - safe loader subclass
    except yaml.YAMLError as exc:
        raise ConfigError([("yaml", f"malformed YAML: {exc}")], source) from None
    except RecursionError:
        raise ConfigError([("yaml", "the YAML is nested too deeply to be a sweep config")],
                          source) from None  # fmt: skip
    if not isinstance(data, dict):
        raise ConfigError([("config", "must be a YAML mapping with model, params, output")], source)
    if output is not None:
        data["output"] = str(output)
    if "name" not in data and source:
        data["name"] = Path(source).stem
    return validate(data, text=text, source=source)


def _pydantic_problems(exc: ValidationError) -> list[tuple[str, str]]:
    out = []
    for err in exc.errors():
        loc = [str(x) for x in err["loc"]]
        key = ".".join(loc)
        if err["type"] == "extra_forbidden" and len(loc) == 1:
            msg = f"unknown field; allowed: {', '.join(TOP_FIELDS)}"
        elif err["type"] == "missing":
            msg = "required field is missing"
        else:
            msg = f"{err['msg']}; got {err.get('input')!r}"
        out.append((key, msg))
    return out


# ---------------------------------------------------------------- parameter values

_AXIS_FORMS = (
    "a number, a strictly increasing list, {linspace: [start, stop, n]}, "
    "{logspace: [start, stop, n]} or {values: [...]}"
)


def _number(v: Any) -> float | None:
    """A YAML number as float (bools and strings are not numbers)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def _axis_values(name: str, v: Any, problems: list) -> tuple[np.ndarray | None, str]:
    """A parameter's value as ``(values, spacing)``: spacing ``fixed`` for one number,
    ``linear``/``log``/``list`` for an axis; values None after a problem."""
    f = f"params.{name}"
    num = _number(v)
    if num is not None:
        return np.array([num]), "fixed"
    if isinstance(v, dict) and len(v) == 1 and next(iter(v)) in ("linspace", "logspace"):
        kind, spec = next(iter(v.items()))
        if not (isinstance(spec, list) and len(spec) == 3):
            problems.append((f, f"{kind} takes [start, stop, n]; got {spec!r}"))
            return None, kind
        start, stop = _number(spec[0]), _number(spec[1])
        n = spec[2]
        if start is None or stop is None or isinstance(n, bool) or not isinstance(n, int):
            problems.append((f, f"{kind} takes [start, stop, n] with numbers and a whole n; "
                             f"got {spec!r}"))  # fmt: skip
            return None, kind
        if n < 1:
            problems.append((f, f"{kind} needs n >= 1 points; got {n}"))
            return None, kind
        if n > MAX_AXIS:
            problems.append((f, f"{kind} asks for {n:,} points; at most {MAX_AXIS:,} per axis"))
            return None, kind
        if not (math.isfinite(start) and math.isfinite(stop)):
            problems.append((f, f"{kind} bounds must be finite numbers; got [{start}, {stop}]"))
            return None, kind
        if n > 1 and not start < stop:
            problems.append((f, f"{kind} must go up: start < stop; got [{start}, {stop}]"))
            return None, kind
        if kind == "logspace":
            if start <= 0:
                problems.append((f, f"logspace needs start > 0; got {start}"))
                return None, kind
            vals = np.geomspace(start, stop, n) if n > 1 else np.array([start])
            return vals.astype(np.float64), "log"
        return np.linspace(start, stop, n, dtype=np.float64), "linear"
    if isinstance(v, dict) and set(v) == {"values"}:
        v = v["values"]
        if not isinstance(v, list):
            problems.append((f, f"values takes a list of numbers; got {v!r}"))
            return None, "list"
    if isinstance(v, list):
        nums = [_number(x) for x in v]
        if any(x is None for x in nums):
            problems.append((f, f"axis values must be numbers; got {v!r}"))
            return None, "list"
        vals = np.asarray(nums, dtype=np.float64)
        if vals.size == 0:
            problems.append((f, "empty axis: give at least one value"))
            return None, "list"
        if not np.all(np.isfinite(vals)):
            problems.append((f, f"values must be finite numbers; got {vals.tolist()}"))
            return None, "list"
        if vals.size > 1 and not np.all(np.diff(vals) > 0):
            problems.append((f, f"axis values must be strictly increasing; got {vals.tolist()}"))
            return None, "list"
        return vals, "list"
    problems.append((f, f"must be {_AXIS_FORMS}; got {v!r}"))
    return None, "fixed"


def _check_bounds(param, name: str, vals: np.ndarray, sector: int | None, problems: list) -> None:
    meaning = param.meaning.replace("{j}", str(sector)) if sector else param.meaning
    f = f"params.{name}"
    bad = ~np.isfinite(vals)
    if param.allow_inf:
        bad &= ~np.isposinf(vals)
    if np.any(bad):
        problems.append((f, f"{meaning} must be a finite number"))
        return
    if param.lo is not None:
        low = vals <= param.lo if param.lo_open else vals < param.lo
        if np.any(low):
            op = ">" if param.lo_open else ">="
            problems.append(
                (f, f"{meaning} must be {op} {num(param.lo)}{param.hint}; got {num(vals[low][0])}")
            )
    if param.hi is not None:
        high = vals >= param.hi if param.hi_open else vals > param.hi
        if np.any(high):
            op = "<" if param.hi_open else "<="
            problems.append((f, f"{meaning} must be {op} {num(param.hi)}; got "
                             f"{num(vals[high][0])}"))  # fmt: skip
    if param.integer and np.any(vals != np.round(vals)):
        problems.append((f, f"must be a whole number; got {num(vals[vals != np.round(vals)][0])}"))


def validate(data: Mapping[str, Any], text: str = "", source: str | None = None) -> SweepSpec:
    """Validate a parsed config mapping and build the :class:`SweepSpec`."""
    from .models import ModelNotFound, get, names

    problems: list[tuple[str, str]] = []
    try:
        raw = RawConfig.model_validate(dict(data))
    except ValidationError as exc:
        problems += _pydantic_problems(exc)
        raw = None
    if raw is None:
        raise ConfigError(problems, source)
    output = Path(raw.output)
    path_notes: list[str] = []
    if not raw.output.strip():
        problems.append(("output", "must name the cube's path, e.g. results/cubes/sweep.zarr"))
    else:  # ~ expanded here, once: the path checked is the path written
        try:
            output = user_path(raw.output)
        except ValueError as exc:
            problems.append(("output", str(exc)))
        else:
            if str(output) != raw.output:
                path_notes.append(f"output: {raw.output} is {output} (~ expanded)")
            bad = path_problem(output)
            if bad:
                problems.append(("output", bad))
    try:
        model = get(raw.model)
    except ModelNotFound as exc:
        msg = str(exc)
        if ":" not in raw.model:
            msg = f"unknown model {raw.model!r}; choose one of {', '.join(names())}"
        raise ConfigError([("model", msg)] + problems, source) from None
    J = model.sectors or raw.sectors
    if model.sectors is not None and "sectors" in data and raw.sectors != model.sectors:
        problems.append(("sectors", f"the {model.name} model has exactly {model.sectors} goods; "
                         "drop 'sectors'"))  # fmt: skip
    elif not 2 <= J <= MAX_SECTORS:
        raise ConfigError([("sectors", f"J must be between 2 and {MAX_SECTORS}; got {J}")], source)

    from .designs import check_design, is_distribution

    design = check_design(raw.design, raw.params, problems)
    axes: list[Axis] = []
    fixed: dict[str, float] = {}
    aliases: dict[str, str] = {}
    notes: list[str] = list(path_notes)
    canonical_of: dict[str, str] = {}
    sampled: list[str] = []
    invalid: list[str] = []
    for name, v in raw.params.items():
        name = str(name)
        hit = model.param(name, J)
        if hit is None:
            hint = ""
            anyj = model.param_any_sector(name)
            if anyj is not None and anyj[1] is not None and anyj[1] > J:
                hint = f" (sector {anyj[1]} > sectors: {J})"
            problems.append((f"params.{name}", f"unknown parameter for model {raw.model!r}{hint}; "
                             f"expected {model.expected(J)}"))  # fmt: skip
            _axis_values(name, v, [])  # nothing more to say about it
            continue
        param, canon, sector = hit
        if canon in canonical_of:
            problems.append((f"params.{name}", f"give {canonical_of[canon]} or {name} (the same "
                             "parameter), not both"))  # fmt: skip
            continue
        canonical_of[canon] = name
        if canon != name:
            aliases[name] = canon
        if is_distribution(v) or (raw.design not in (None, "grid") and _number(v) is None):
            if design is not None and name in design.dists:  # its support within range
                lo, hi = design.dists[name].support
                _check_bounds(param, name, np.array([lo, hi]), sector, problems)
                if not param.sweep:
                    problems.append((f"params.{name}", "cannot be sampled (it shapes the "
                                     "cube); give one number"))  # fmt: skip
                sampled.append(name)
            continue
        vals, spacing = _axis_values(name, v, problems)
        if vals is None:
            invalid.append(name)  # given, though wrongly: not "missing" as well
            continue
        _check_bounds(param, name, vals, sector, problems)
        if spacing == "fixed":
            fixed[name] = float(vals[0])
        elif not param.sweep:
            problems.append((f"params.{name}", "cannot be swept (it shapes the cube); give one "
                             "number"))  # fmt: skip
        else:
            if len(vals) == 1:
                notes.append(
                    f"params.{name}: an axis of one value ({vals[0]:g}); the cube gets "
                    f"a dimension of size 1 (give a plain number to fix it instead)"
                )
            axes.append(Axis(name, vals, spacing))

    refine = None
    if raw.refine is not None:
        if design is not None:
            problems.append(("refine", "a refined sweep refines grid axes; it cannot sample a "
                             "design: drop design or refine"))  # fmt: skip
        else:
            refine, axes = _refine(raw.refine, raw.params, axes, model, raw.save_paths, problems)

    given = {aliases.get(n, n) for n in [*fixed, *(a.name for a in axes), *sampled, *invalid]}
    problems += model.requires(given, J)
    if raw.save_paths and not model.has_paths:
        problems.append(("save_paths", f"model {model.name!r} has no transition paths to save; "
                         "drop save_paths"))  # fmt: skip
    dims = [a.name for a in axes] if design is None else [SAMPLE]
    for cname, size in raw.chunks.items():
        if cname not in dims:
            problems.append((f"chunks.{cname}", f"not a swept parameter; swept: {dims or 'none'}"))
        elif size < 1:
            problems.append((f"chunks.{cname}", f"chunk size must be >= 1; got {size}"))
    n_points = math.prod(len(a) for a in axes) if design is None else design.size
    if n_points > MAX_POINTS:
        problems.append(("params", f"the grid has {n_points:.3g} points; at most {MAX_POINTS:.0e}"
                         " per sweep: shrink the axes or split the sweep"))  # fmt: skip
    if not problems and model.check is not None:
        ranges = {n: design.dists[n].support for n in sampled} if design is not None else {}
        problems += model.check(
            lambda names: _corner_values(axes, fixed, aliases, names, ranges), given, J
        )
    if problems:
        raise ConfigError(problems, source)

    for p in model.params:  # defaults, e.g. the dynamic model's rho, T, n_time, Tc
        if p.default is not None and not p.per_sector and p.name not in given:
            fixed[p.name] = float(p.default)

    spec = SweepSpec(
        model=raw.model,
        sectors=J,
        axes=tuple(axes),
        fixed=dict(fixed),
        chunks=(),
        output=output,
        save_paths=raw.save_paths,
        name=raw.name or output.stem,
        description=raw.description or "",
        text=text,
        canonical={},
        aliases=aliases,
        notes=tuple(notes),
        design=design,
        refine=refine,
    )
    from .grid import (  # grid depends on config, not the reverse
        MAX_BLOCK_MEMORY,
        block_memory,
        default_chunks,
        refine_chunks,
    )

    requested = [min(raw.chunks.get(d, 0) or 0, n) or 0 for d, n in zip(spec.dims, spec.shape)]
    if refine is not None:  # blocks are the chunks holding points, level by level
        chunks = refine_chunks(spec, requested)
    else:
        chunks = default_chunks(spec, requested)
        n_blocks = math.prod(-(-n // c) for n, c in zip(spec.shape, chunks))
        if n_blocks > MAX_BLOCKS:
            raise ConfigError(
                [("chunks", f"the sweep would be cut into {n_blocks:,} blocks; at most "
                  f"{MAX_BLOCKS:,}: give larger chunks (or drop chunks: the default makes "
                  "blocks of ~32 MB)")], source)  # fmt: skip
    need = block_memory(spec, chunks)
    if need > MAX_BLOCK_MEMORY:
        per = need // math.prod(chunks)
        shape = " x ".join(f"{c:,}" for c in chunks)
        raise ConfigError(
            [("chunks", f"one block ({shape} = {math.prod(chunks):,} points) would hold "
              f"~{need / 1e9:.3g} GB in memory while it is computed, {need / MAX_BLOCK_MEMORY:.3g}"
              f" times the most a block may ({MAX_BLOCK_MEMORY / 1e9:.3g} GB, "
              f"{MAX_BLOCK_MEMORY // per:,} points of this sweep): give smaller chunks, or drop "
              "chunks (the default makes blocks of ~32 MB of output)")], source)  # fmt: skip
    canonical = {
        "model": raw.model,
        "sectors": J,
        "params": {a.name: _canonical_axis(raw.params[a.name], a) for a in axes}
        | {k: v for k, v in sorted(fixed.items())},
        "chunks": dict(zip(dims, chunks)),
        "save_paths": raw.save_paths,
    }
    if design is not None:  # grids hash as before
        dc = design.canonical()
        canonical["design"] = dc["design"]
        canonical["params"] |= dc["params"]
    if refine is not None:  # only when given: dense configs keep their hashes
        canonical["refine"] = refine.canonical()
    return replace(spec, chunks=tuple(chunks), canonical=canonical)


def _canonical_axis(v: Any, axis: Axis) -> dict:
    """An axis as hashed and stored: its generator (``linspace``/``logspace`` with float
    bounds and int count) or, for an explicit list, its values; never a huge list."""
    if isinstance(v, dict) and ("linspace" in v or "logspace" in v):
        kind = "linspace" if "linspace" in v else "logspace"
        a, b, n = v[kind]
        return {kind: [float(a), float(b), int(n)]}
    return {"values": axis.values.tolist()}


def _corner_values(axes, fixed, aliases, names: list[str], ranges=None) -> dict[str, np.ndarray]:
    """Cartesian product of each named parameter's extremes (model names; for checks of
    derived quantities monotone in every input, whose extremes sit at these corners):
    an axis' ends, a distribution's support (``ranges``), or the fixed value."""
    back = {v: k for k, v in aliases.items()}
    ranges = ranges or {}
    lists = []
    for n in names:
        cfg = back.get(n, n)
        ax = next((a for a in axes if a.name == cfg), None)
        if cfg in ranges:
            lists.append(list(ranges[cfg]))
        else:
            lists.append([ax.values[0], ax.values[-1]] if ax is not None else [fixed[cfg]])
    grids = np.meshgrid(*[np.asarray(v) for v in lists], indexing="ij")
    return {n: g.ravel() for n, g in zip(names, grids)}


# ------------------------------------------------------------------- refine block

REFINE_FIELDS = ("on", "levels", "neighbours")


def _categorical(o) -> bool:
    return np.dtype(o.dtype).kind in "biu"


def _refine(
    v: Any, params: Mapping[str, Any], axes: list[Axis], model, save_paths: bool, problems: list
) -> tuple[RefineSpec | None, list[Axis]]:
    """Validate a ``refine`` block; returns the :class:`RefineSpec` and the finest grid's
    axes (``(None, axes)`` after a problem). ``on`` names must be categorical outputs
    of the model (from its declared ``outputs``: integer or boolean dtype)."""
    outs = {o.name: o for o in model.outputs_for(save_paths)}
    cat = [n for n, o in outs.items() if _categorical(o)]
    cats = ", ".join(cat) or "none"
    if not isinstance(v, dict):
        problems.append(
            (
                "refine",
                f"must be a mapping such as {{on: [{', '.join(cat[:2])}], levels: 6}}; got {v!r}",
            )
        )
        return None, axes
    # YAML 1.1 reads a bare ``on`` as true: the issue's ``refine: {on: [...]}`` means "on"
    v = {("on" if k is True else k): x for k, x in v.items()}
    n0 = len(problems)
    for k in v:
        if k not in REFINE_FIELDS:
            problems.append((f"refine.{k}", f"unknown field; allowed: {', '.join(REFINE_FIELDS)}"))
    on = v.get("on")
    if isinstance(on, str):
        on = [on]
    if on is None:
        problems.append(
            (
                "refine.on",
                "required: the categorical outputs whose changes mark a "
                f"boundary; those of model {model.name!r}: {cats}",
            )
        )
    elif not (isinstance(on, list) and on and all(isinstance(x, str) for x in on)):
        problems.append(
            ("refine.on", f"give a list of output names, e.g. [{', '.join(cat[:2])}]; got {on!r}")
        )
    else:
        for name in on:
            if name not in outs:
                problems.append(
                    (
                        "refine.on",
                        f"{name!r} is not an output of model "
                        f"{model.name!r}; its categorical outputs: {cats}",
                    )
                )
            elif not _categorical(outs[name]):
                problems.append(
                    (
                        "refine.on",
                        f"{name!r} holds {outs[name].dtype} values, not "
                        f"categorical codes (integer or boolean); choose among {cats}",
                    )
                )
        if len(set(on)) != len(on):
            problems.append(("refine.on", f"names an output twice: {on}"))
    levels = v.get("levels")
    if levels is None:
        problems.append(
            ("refine.levels", f"required: how many times to halve the spacing (0..{MAX_LEVELS})")
        )
    elif isinstance(levels, bool) or not isinstance(levels, int) or not 0 <= levels <= MAX_LEVELS:
        problems.append(
            ("refine.levels", f"must be a whole number 0..{MAX_LEVELS}; got {levels!r}")
        )
    neighbours = v.get("neighbours", "face")
    if neighbours not in ("face", "box"):
        problems.append(
            (
                "refine.neighbours",
                f"must be face (default: cells sharing a face "
                f"with a marked cell) or box (also edges and corners); got "
                f"{neighbours!r}",
            )
        )
    raxes = []
    for a in axes:
        raw = params[a.name]
        if a.spacing in ("linear", "log"):
            kind = "linspace" if a.spacing == "linear" else "logspace"
            start, stop, n = raw[kind]
            raxes.append(RefineAxis(a.name, kind, float(start), float(stop), int(n)))
        else:
            raxes.append(RefineAxis(a.name, "values", values=tuple(a.values.tolist())))
    if not any(r.refinable for r in raxes):
        problems.append(
            (
                "refine",
                "no swept axis can be refined: refinement halves the "
                "spacing of {linspace: [a, b, n]} and {logspace: [a, b, n]} axes "
                "with n >= 2 (explicit lists and one-value axes keep their values); "
                f"swept: {', '.join(a.name for a in axes) or 'none'}",
            )
        )
    if len(problems) > n0:
        return None, axes
    for r in raxes:
        if r.refinable and (r.n - 1) * 2**levels + 1 > MAX_AXIS:
            problems.append(
                (
                    f"params.{r.name}",
                    f"refined {levels} levels, its {r.n} points "
                    f"become {(r.n - 1) * 2**levels + 1:,} on the finest grid; at most "
                    f"{MAX_AXIS:,} per axis: lower refine.levels or n",
                )
            )
    if len(problems) > n0:
        return None, axes
    knife = outs.get("knife_edge")
    spec = RefineSpec(
        tuple(on),
        levels,
        neighbours,
        tuple(raxes),
        "knife_edge" if knife is not None and knife.dtype == "bool" else None,
    )
    finest = [Axis(a.name, spec.grid.finest_coords[a.name], a.spacing) for a in axes]
    return spec, finest
