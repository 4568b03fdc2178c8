"""Sweep configs: YAML -> validated, frozen :class:`SweepSpec`.

One schema (pydantic) for the CLI, the Snakefile and the tests. Structure::

    model: coordination            # standard | modes | coordination | dynamic
    sectors: 2                     # J, for the sector models
    params:                        # each: a number (fixed) or an axis (swept)
      r_1: {logspace: [0.25, 4.0, 201]}
      r_2: 1.0
      theta_1: {linspace: [1.05, 4.0, 150]}
      theta_2: [1.5, 2.0, 3.0]     # an explicit, strictly increasing list is an axis too
    chunks: {r_1: 64, theta_1: 64} # optional
    output: results/coordination.zarr

Everything that can be wrong with a config is found here, before anything is
written: every problem is reported at once as ``field: what is wrong. fix``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

MODELS = ("standard", "modes", "coordination", "dynamic")
MAX_SECTORS = 10  # the regime bitmask (int32) holds 3 J labels
MAX_AXIS = 10_000_000  # points on one axis (80 MB of coordinate)
MAX_CONFIG_BYTES = 1_000_000
DEFAULTS = {"rho": 0.05, "T": 400.0, "n_time": 401, "Tc": 0.0, "L_S": math.inf}


class ConfigError(ValueError):
    """A config that cannot be run; ``problems`` lists ``(field, message)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]], source: str | None = None):
        self.problems = problems
        self.source = source
        where = f" in {source}" if source else ""
        lines = [f"invalid sweep config{where}:"] + [f"  - {f}: {m}" for f, m in problems]
        super().__init__("\n".join(lines))


# --------------------------------------------------------------------------- schema


class Linspace(BaseModel):
    model_config = ConfigDict(extra="forbid")
    linspace: tuple[float, float, int]


class Logspace(BaseModel):
    model_config = ConfigDict(extra="forbid")
    logspace: tuple[float, float, int]


class Values(BaseModel):
    model_config = ConfigDict(extra="forbid")
    values: list[float]


ParamValue = float | list[float] | Linspace | Logspace | Values


class RawConfig(BaseModel):
    """The YAML as written (types only; meaning is checked by :func:`validate`)."""

    model_config = ConfigDict(extra="forbid", strict=False)
    model: str
    sectors: int = 2
    params: dict[str, ParamValue]
    chunks: dict[str, int] = {}
    output: str
    save_paths: bool = False
    name: str | None = None
    description: str | None = None


# ------------------------------------------------------------------ parameter names

_INDEXED = re.compile(r"^(r|theta|Lbar|g|eps)_(\d+)$")
_LAM = re.compile(r"^lam_(\d+)([SN])$")

# name -> (meaning, lower bound, bound is open, upper bound or None)
_SCALARS = {
    "theta": ("gain from a full cluster in good 2", 1.0, True, None),
    "alpha": ("strength of the clustering externality", 0.0, True, None),
    "Lbar": ("labour at which the cluster is complete", 0.0, True, None),
    "L_S": ("South's labour force (inf: scale never binds)", 0.0, True, None),
    "beta": ("productivity of the modern technology with no cluster", 0.0, True, 1.0),
    "g": ("learning-by-doing rate (all sectors)", 0.0, True, None),
    "eps": ("strength of international spillovers (all sectors)", 0.0, True, None),
    "rho": ("discount rate", 0.0, True, None),
    "T": ("horizon of the transition, years", 0.0, True, None),
    "n_time": ("number of saved times", 2.0, False, None),
    "Tc": ("years over which coordination ramps up (0: at once)", 0.0, False, None),
}
_INDEXED_INFO = {
    "r": ("relative productivity lam_jS/lam_jN", 0.0, True, None),
    "theta": ("gain from a full cluster in sector j", 1.0, True, None),
    "Lbar": ("labour at which the cluster in sector j is complete", 0.0, True, None),
    "g": ("learning-by-doing rate in sector j", 0.0, True, None),
    "eps": ("international spillovers in sector j", 0.0, True, None),
}
_FIXED_ONLY = {"T", "n_time"}


def _allowed(model: str, J: int) -> dict[str, tuple[str, float, bool, float | None]]:
    """Every parameter name the model accepts, with meaning and bounds."""
    js = range(1, (2 if model == "standard" else J) + 1)
    out: dict[str, tuple[str, float, bool, float | None]] = {}
    for j in js:
        out[f"r_{j}"] = _INDEXED_INFO["r"]
        out[f"lam_{j}S"] = ("South's raw productivity in sector j", 0.0, True, None)
        out[f"lam_{j}N"] = ("North's raw productivity in sector j", 0.0, True, None)
    scal: tuple[str, ...] = ()
    idx: tuple[str, ...] = ()
    if model == "standard":
        scal = ("theta", "alpha", "Lbar", "L_S")
    elif model == "coordination":
        idx = ("theta",)
    elif model == "modes":
        scal, idx = ("beta", "alpha", "L_S"), ("theta", "Lbar")
    elif model == "dynamic":
        scal, idx = ("g", "eps", "rho", "T", "n_time", "Tc"), ("theta", "g", "eps")
    for s in scal:
        out[s] = _SCALARS[s]
    for base in idx:
        for j in js:
            out[f"{base}_{j}"] = _INDEXED_INFO[base]
    return out


def _expected(model: str, J: int) -> str:
    js = range(1, (2 if model == "standard" else J) + 1)
    rs = ", ".join(f"r_{j}" for j in js)
    th = ", ".join(f"theta_{j}" for j in js)
    return {
        "standard": "r_1, r_2 and theta (or alpha and Lbar); optional L_S",
        "coordination": f"{rs} and {th}",
        "modes": f"{rs}, beta, alpha and {th} (or Lbar_j); optional L_S",
        "dynamic": f"{rs}, {th}, g and eps (or g_j, eps_j); optional rho, T, n_time, Tc",
    }[model]


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
class SweepSpec:
    """A validated sweep. Built by :func:`load_config` / :func:`validate`; never mutated."""

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

    @property
    def J(self) -> int:
        return 2 if self.model == "standard" else self.sectors

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(a) for a in self.axes)

    @property
    def n_points(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.axes else 1

    @property
    def config_hash(self) -> str:
        return config_hash(self.canonical)

    def value(self, name: str) -> float | None:
        """Fixed value of a parameter (``None`` if swept or not given)."""
        return self.fixed.get(name)

    def given(self, name: str) -> bool:
        return name in self.fixed or name in self.dims


def config_hash(canonical: Mapping[str, Any]) -> str:
    blob = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()


# ---------------------------------------------------------------------- loading


class _NoAliasLoader(yaml.SafeLoader):
    """Safe YAML that refuses anchors/aliases (no "billion laughs")."""

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(
                None,
                None,
                "YAML aliases (*name) are not allowed in sweep configs",
                event.start_mark,
            )
        return super().compose_node(parent, index)


def load_config(path: str | Path, output: str | Path | None = None) -> SweepSpec:
    """Read and validate a YAML config. Raises :class:`ConfigError` naming every problem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError([("config", f"no such file {str(path)!r}")])
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(
            [("config", f"file is over {MAX_CONFIG_BYTES} bytes; not a sweep config")]
        )
    return parse_config(path.read_text(), source=str(path), output=output)


def parse_config(
    text: str, source: str | None = None, output: str | Path | None = None
) -> SweepSpec:
    """Validate a config given as YAML text (``output`` overrides the config's)."""
    try:
        data = yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - safe loader subclass
    except yaml.YAMLError as exc:
        raise ConfigError([("yaml", f"malformed YAML: {exc}")], source) from None
    if not isinstance(data, dict):
        raise ConfigError([("config", "must be a YAML mapping with model, params, output")], source)
    if output is not None:
        data["output"] = str(output)
    if "name" not in data and source:
        data["name"] = Path(source).stem
    return validate(data, text=text, source=source)


def _pydantic_problems(exc: ValidationError) -> list[tuple[str, str]]:
    out = []
    seen = set()
    for err in exc.errors():
        loc = [str(x) for x in err["loc"]]
        # unions report one error per branch; keep the field once
        key = ".".join(
            x for x in loc if x not in ("float", "list[float]", "Linspace", "Logspace", "Values")
        )
        if key in seen:
            continue
        seen.add(key)
        if err["type"] == "extra_forbidden" and len(loc) == 1:
            msg = (
                "unknown field; allowed: model, sectors, params, chunks, output, "
                "save_paths, name, description"
            )
        elif key.startswith("params."):
            msg = (
                f"must be a number, a strictly increasing list, {{linspace: [start, stop, n]}}"
                f", {{logspace: [start, stop, n]}} or {{values: [...]}}; got {err.get('input')!r}"
            )
        elif err["type"] == "missing":
            msg = "required field is missing"
        else:
            msg = f"{err['msg']}; got {err.get('input')!r}"
        out.append((key, msg))
    return out


def _axis_values(name: str, v: Any, problems: list) -> tuple[np.ndarray | None, str]:
    """Turn a parameter value into (values, spacing); values is None if fixed."""
    f = f"params.{name}"
    if isinstance(v, (Linspace, Logspace)):
        kind = "linspace" if isinstance(v, Linspace) else "logspace"
        start, stop, n = getattr(v, kind)
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
    if isinstance(v, (list, Values)):
        vals = np.asarray(v.values if isinstance(v, Values) else v, dtype=np.float64)
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
    return None, "fixed"


def _check_bounds(
    name: str, vals: np.ndarray, info, problems: list, derived_from: str = ""
) -> None:
    meaning, lo, open_lo, hi = info
    where = f" ({derived_from})" if derived_from else ""
    bad_nan = ~np.isfinite(vals) & ~(np.isposinf(vals) & (name == "L_S"))
    if np.any(bad_nan):
        problems.append((f"params.{name}", f"{meaning} must be a finite number{where}"))
        return
    low_bad = vals <= lo if open_lo else vals < lo
    if np.any(low_bad):
        op = ">" if open_lo else ">="
        fix = {"theta": " (theta <= 1 means clustering loses productivity)"}.get(
            name.split("_")[0], ""
        )
        problems.append(
            (
                f"params.{name}",
                f"{meaning} must be {op} {lo:g}{fix}{where}; got {float(vals[low_bad][0]):g}",
            )
        )
    if hi is not None and np.any(vals >= hi):
        problems.append(
            (
                f"params.{name}",
                f"{meaning} must be < {hi:g}{where}; got {float(vals[vals >= hi][0]):g}",
            )
        )


def validate(data: Mapping[str, Any], text: str = "", source: str | None = None) -> SweepSpec:
    """Validate a parsed config mapping and build the :class:`SweepSpec`."""
    try:
        raw = RawConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(_pydantic_problems(exc), source) from None
    problems: list[tuple[str, str]] = []
    if raw.model not in MODELS:
        raise ConfigError(
            [("model", f"unknown model {raw.model!r}; choose one of {', '.join(MODELS)}")], source
        )
    J = 2 if raw.model == "standard" else raw.sectors
    if not 2 <= J <= MAX_SECTORS:
        raise ConfigError([("sectors", f"J must be between 2 and {MAX_SECTORS}; got {J}")], source)
    if raw.model == "standard" and raw.sectors != 2:
        problems.append(("sectors", "the standard model has exactly 2 goods; drop 'sectors'"))
    allowed = _allowed(raw.model, J)

    axes: list[Axis] = []
    fixed: dict[str, float] = {}
    for name, v in raw.params.items():
        if name not in allowed:
            hint = ""
            m = _INDEXED.match(name)
            j = (
                int(m.group(2))
                if m
                else (int(_LAM.match(name).group(1)) if _LAM.match(name) else 0)
            )
            if j > J:
                hint = f" (sector {j} > sectors: {J})"
            problems.append(
                (
                    f"params.{name}",
                    f"unknown parameter for model {raw.model!r}{hint};"
                    f" expected {_expected(raw.model, J)}",
                )
            )
            continue
        vals, spacing = _axis_values(name, v, problems)
        if spacing == "fixed":
            vals = np.array([float(v)])
        if vals is None:
            continue
        _check_bounds(name, vals, allowed[name], problems)
        if spacing == "fixed":
            fixed[name] = float(vals[0])
        elif name in _FIXED_ONLY:
            problems.append(
                (f"params.{name}", "cannot be swept (it shapes the time axis); give one number")
            )
        else:
            axes.append(Axis(name, vals, spacing))
    if "n_time" in fixed and fixed["n_time"] != int(fixed["n_time"]):
        problems.append(("params.n_time", f"must be a whole number; got {fixed['n_time']}"))

    given = set(fixed) | {a.name for a in axes}
    problems += _check_required(raw.model, J, given)
    if raw.save_paths and raw.model != "dynamic":
        problems.append(("save_paths", "paths exist only for model 'dynamic'"))

    dims = [a.name for a in axes]
    chunks: list[int] = []
    for cname, size in raw.chunks.items():
        if cname not in dims:
            problems.append((f"chunks.{cname}", f"not a swept parameter; swept: {dims or 'none'}"))
        elif size < 1:
            problems.append((f"chunks.{cname}", f"chunk size must be >= 1; got {size}"))
    if problems:
        raise ConfigError(problems, source)

    problems += _check_derived(raw.model, J, axes, fixed)
    if problems:
        raise ConfigError(problems, source)

    for a in axes:
        chunks.append(min(raw.chunks.get(a.name, 0) or 0, len(a)) or 0)
    from .grid import default_chunks  # grid depends on config, not the reverse at import

    chunks = list(
        default_chunks(
            raw.model,
            J,
            [len(a) for a in axes],
            chunks,
            raw.save_paths,
            int(fixed.get("n_time", DEFAULTS["n_time"])),
        )
    )
    if raw.model == "dynamic":
        for d in ("rho", "T", "n_time", "Tc"):
            fixed.setdefault(d, float(DEFAULTS[d])) if d not in given else None

    canonical = {
        "model": raw.model,
        "sectors": J,
        "params": {a.name: _canonical_axis(raw.params[a.name], a) for a in axes}
        | {k: v for k, v in sorted(fixed.items())},
        "chunks": dict(zip(dims, chunks)),
        "save_paths": raw.save_paths,
    }
    return SweepSpec(
        model=raw.model,
        sectors=J,
        axes=tuple(axes),
        fixed=dict(fixed),
        chunks=tuple(chunks),
        output=Path(raw.output),
        save_paths=raw.save_paths,
        name=raw.name or Path(raw.output).stem,
        description=raw.description or "",
        text=text,
        canonical=canonical,
    )


def _canonical_axis(v: Any, axis: Axis) -> dict:
    """An axis as hashed and stored: its generator (``linspace``/``logspace`` with float
    bounds and int count) or, for an explicit list, its values; never a huge list."""
    if isinstance(v, Linspace):
        a, b, n = v.linspace
        return {"linspace": [float(a), float(b), int(n)]}
    if isinstance(v, Logspace):
        a, b, n = v.logspace
        return {"logspace": [float(a), float(b), int(n)]}
    return {"values": axis.values.tolist()}


def _check_required(model: str, J: int, given: set[str]) -> list[tuple[str, str]]:
    out = []
    js = range(1, J + 1)
    for j in js:
        lam = {f"lam_{j}S", f"lam_{j}N"} & given
        if f"r_{j}" in given and lam:
            out.append((f"params.r_{j}", f"give r_{j} or lam_{j}S and lam_{j}N, not both"))
        elif f"r_{j}" not in given and len(lam) < 2:
            out.append(
                (
                    f"params.r_{j}",
                    f"missing: give r_{j} (= lam_{j}S / lam_{j}N) or both lam_{j}S and lam_{j}N",
                )
            )

    def need(name: str, alternatives: str) -> None:
        out.append((f"params.{name}", f"missing: {alternatives}"))

    if model == "standard":
        t, a, lb = "theta" in given, "alpha" in given, "Lbar" in given
        if t and a and lb:
            out.append(
                (
                    "params.theta",
                    "over-determined: give theta or alpha and Lbar (theta = "
                    "1 + alpha Lbar), not all three",
                )
            )
        elif not t and not (a and lb):
            need("theta", "give theta > 1, or alpha and Lbar")
        if "L_S" in given and not lb and not (t and a):
            out.append(("params.L_S", "L_S needs the cluster size: give Lbar (or alpha)"))
    elif model in ("coordination", "dynamic"):
        for j in js:
            if f"theta_{j}" not in given:
                need(f"theta_{j}", f"give theta_{j} > 1 (gain from a cluster in sector {j})")
    elif model == "modes":
        for s in ("beta", "alpha"):
            if s not in given:
                need(s, f"give {s} ({_SCALARS[s][0]})")
        for j in js:
            t, lb = f"theta_{j}" in given, f"Lbar_{j}" in given
            if t and lb:
                out.append((f"params.theta_{j}", f"give theta_{j} or Lbar_{j}, not both"))
            elif not (t or lb):
                need(
                    f"theta_{j}", f"give theta_{j} > 1 or Lbar_{j} (theta_j = beta + alpha Lbar_j)"
                )
    if model == "dynamic":
        for base in ("g", "eps"):
            per = {f"{base}_{j}" for j in js} & given
            if base in given and per:
                out.append((f"params.{base}", f"give {base} or {base}_j per sector, not both"))
            elif base not in given and len(per) < J:
                missing = sorted({f"{base}_{j}" for j in js} - per)
                need(base, f"give {base} (all sectors) or every {base}_j; missing {missing}")
    return out


def _corner_values(axes: list[Axis], fixed: Mapping[str, float], names: list[str]):
    """Cartesian product of each parameter's extremes: derived quantities here are monotone
    in every input, so their extremes over the grid sit at these corners."""
    lists = []
    for n in names:
        ax = next((a for a in axes if a.name == n), None)
        lists.append([ax.values[0], ax.values[-1]] if ax is not None else [fixed[n]])
    grids = np.meshgrid(*[np.asarray(v) for v in lists], indexing="ij")
    return {n: g.ravel() for n, g in zip(names, grids)}


def _check_derived(model: str, J: int, axes: list[Axis], fixed: Mapping[str, float]):
    out: list[tuple[str, str]] = []
    given = set(fixed) | {a.name for a in axes}
    if model == "modes":
        for j in range(1, J + 1):
            if f"Lbar_{j}" in given:
                v = _corner_values(axes, fixed, ["beta", "alpha", f"Lbar_{j}"])
                theta = v["beta"] + v["alpha"] * v[f"Lbar_{j}"]
                if np.any(theta <= 1):
                    out.append(
                        (
                            f"params.Lbar_{j}",
                            f"theta_{j} = beta + alpha Lbar_{j} must be > 1"
                            f"; it is {theta.min():g} at the grid's corner. Raise alpha or "
                            f"Lbar_{j}",
                        )
                    )
    return out
