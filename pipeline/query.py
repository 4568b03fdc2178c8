r"""Query a cube: the ``ds.marshall`` accessor (regimes, shares, points, claims, boundaries).

Importing this module registers the accessor on every :class:`xarray.Dataset`::

    import pipeline.query  # noqa: F401  (registers ds.marshall)
    ds = pipeline.open_cube("results/cubes/coordination_j2.zarr")
    ds.marshall.regime_share()                       # share of computed points per regime
    ds.marshall.regime_share(by="theta_2")           # ... per value of another dimension
    ds.marshall.at(r_1=2.0, theta_1=3.0, theta_2=2)  # equilibria at the nearest grid point
    mask = ds.marshall.where("theta_1 > 2 and exists['C2']")
    ds.marshall.points(mask, limit=10)               # the coordinates of matching points
    ds.marshall.claims()                             # the paper's claims: checked/held/failed
    ds.marshall.boundaries("r_1", "theta_1", at={"theta_2": 2.0})

Everything here reads the cube; nothing computes equilibria. Masks are restricted to
computed points (``done``). The analytic boundaries of :meth:`MarshallAccessor.boundaries`
are the closed-form conditions of MODEL.md sections 2-5, evaluated on the slice's
parameter values (the mapping of config parameters to ``r_j``, ``theta_j``,
``theta_jS`` is :func:`pipeline.kernels.resolve_inputs`, the one the kernels use).

Expressions (:meth:`MarshallAccessor.where`) are parsed with :mod:`ast` and evaluated
by a small interpreter, never by ``eval``. Allowed:

- names: swept and fixed parameters (``r_1``, ``theta_1``, ...), data variables
  (``exists``, ``wage``, ``regime``, ``n_stable``, ...), ``c`` (= ``r_2/r_1``, model
  ``standard``), constants ``True``, ``False``, ``inf``, ``nan``, ``pi``;
- numbers and strings; ``+ - * / // % **``, comparisons (chained too),
  ``and or not`` (element-wise), ``& | ~``;
- ``var['C2']`` (selects along the variable's one non-swept dimension, e.g.
  ``equilibrium``, ``claim``, ``target``), the methods ``sel isel any all sum mean
  max min isnull notnull`` with constant arguments, and the functions ``abs log
  log10 exp sqrt isnan minimum maximum``;
- ``regime == 'B1+C1'`` (a regime name, labels in any order) and ``best == 'C1'``.
"""

from __future__ import annotations

import ast
import json
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .models._common import regime_name

#: dimensions that are not swept parameters
NON_PARAM_DIMS = ("equilibrium", "claim", "sector", "target", "time")
#: scalar coordinates that are settings, not economic parameters
SETTINGS = ("T", "n_time")
#: variables over ``target`` written by the dynamic model
TRANSITION_VARS = (
    "jump",
    "half_life",
    "t99",
    "pv_gain",
    "breakeven_kappa",
    "path_feasible",
    "status",
)
MAX_EXPR = 2000


# ----------------------------------------------------------------------- helpers


def _log_axis(coord: xr.DataArray) -> bool:
    return coord.attrs.get("spacing") == "log"


def nearest_index(coord: xr.DataArray, value: float) -> int:
    """Index of the grid value nearest ``value`` (in log distance on log axes)."""
    vals = np.asarray(coord.values, dtype=float)
    v = float(value)
    if _log_axis(coord) and v > 0 and np.all(vals > 0):
        return int(np.argmin(np.abs(np.log(vals) - math.log(v))))
    return int(np.argmin(np.abs(vals - v)))


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}"
    return str(v)


def _plain(v: Any) -> Any:
    """numpy scalar -> python scalar (for tables and JSON)."""
    if isinstance(v, np.generic):
        return v.item()
    return v


@dataclass(frozen=True)
class Boundary:
    """An analytic boundary of MODEL.md in the plane of a 2-D slice.

    ``name`` is plain text (e.g. ``"C2: r_1/r_2 = theta_1"``), ``label`` the same in
    mathtext, ``equilibrium`` the label(s) whose existence changes across it, and
    ``segments`` the curve as ``(n, 2)`` arrays of ``(x, y)`` points (empty when the
    condition does not hold with equality anywhere in the slice).
    """

    name: str
    label: str
    equilibrium: str
    x: str
    y: str
    segments: tuple[np.ndarray, ...] = field(default=(), repr=False)

    def __bool__(self) -> bool:
        return bool(self.segments)


# ---------------------------------------------------------------- safe evaluator


class ExpressionError(ValueError):
    """An expression that :meth:`MarshallAccessor.where` cannot or will not evaluate."""


_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_,
}
_CMPOPS = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_METHODS = {"sel", "isel", "any", "all", "sum", "mean", "max", "min", "isnull", "notnull"}
_FUNCS = {
    "abs": np.abs,
    "log": np.log,
    "log10": np.log10,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "isnan": np.isnan,
    "minimum": np.minimum,
    "maximum": np.maximum,
}
_CONSTS = {"True": True, "False": False, "inf": math.inf, "nan": math.nan, "pi": math.pi}


class _Evaluator:
    """Interpret a parsed expression over a cube's variables (see the module docstring)."""

    def __init__(self, acc: MarshallAccessor):
        self.acc = acc
        self.ds = acc._ds

    def names(self) -> list[str]:
        out = list(self.acc.params) + list(self.acc.fixed) + list(self.ds.data_vars)
        if self.acc.model == "standard" and "c" not in out:
            out.append("c")
        return out

    def lookup(self, name: str) -> Any:
        ds = self.ds
        if name in _CONSTS:
            return _CONSTS[name]
        if name in ds.data_vars or name in ds.coords:
            if name in NON_PARAM_DIMS:
                raise ExpressionError(
                    f"{name!r} is a label dimension; select along it instead, "
                    f"e.g. exists.sel({name}=...)"
                )
            return ds[name]
        if name == "c" and self.acc.model == "standard":
            return self.acc._param("r_2") / self.acc._param("r_1")
        raise ExpressionError(f"unknown name {name!r}; known: {', '.join(self.names())}")

    def const(self, node: ast.AST) -> Any:
        """A constant argument (of sel/isel/subscripts): number, string, or a list of them."""
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool)):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            v = self.const(node.operand)
            if isinstance(v, (int, float)):
                return -v
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.const(e) for e in node.elts]
        raise ExpressionError(
            "arguments of sel/isel/methods and subscripts must be constants "
            f"(numbers or strings); got {ast.unparse(node)!r}"
        )

    def eval(self, node: ast.AST) -> Any:
        meth = getattr(self, "_" + type(node).__name__, None)
        if meth is None:
            raise ExpressionError(
                f"{type(node).__name__} is not allowed in a query expression: {ast.unparse(node)!r}"
            )
        return meth(node)

    # nodes
    def _Expression(self, node):
        return self.eval(node.body)

    def _Constant(self, node):
        v = node.value
        if isinstance(v, bool) or isinstance(v, str):
            return v
        if isinstance(v, (int, float)):
            return float(v)  # float arithmetic: no huge-integer powers
        raise ExpressionError(f"constant {v!r} is not allowed")

    def _Name(self, node):
        return self.lookup(node.id)

    def _BoolOp(self, node):
        vals = [self._truth(self.eval(v)) for v in node.values]
        out = vals[0]
        for v in vals[1:]:
            out = (out & v) if isinstance(node.op, ast.And) else (out | v)
        return out

    def _UnaryOp(self, node):
        v = self.eval(node.operand)
        if isinstance(node.op, ast.Not):
            v = self._truth(v)
            return (not v) if isinstance(v, bool) else ~v
        if isinstance(node.op, ast.Invert):
            return (not v) if isinstance(v, bool) else ~v
        if isinstance(node.op, ast.USub):
            return -v
        if isinstance(node.op, ast.UAdd):
            return +v
        raise ExpressionError(f"operator {type(node.op).__name__} is not allowed")

    def _BinOp(self, node):
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise ExpressionError(f"operator {type(node.op).__name__} is not allowed")
        a, b = self.eval(node.left), self.eval(node.right)
        if isinstance(a, str) or isinstance(b, str):
            raise ExpressionError(
                f"strings cannot be combined with arithmetic: {ast.unparse(node)!r}"
            )
        if op is operator.pow and isinstance(a, float) and isinstance(b, float):
            try:
                return math.pow(a, b)
            except (OverflowError, ValueError):
                return math.inf
        if op in (operator.and_, operator.or_):
            a, b = self._truth(a), self._truth(b)
        return op(a, b)

    def _Compare(self, node):
        left = self.eval(node.left)
        out = None
        for op_node, right_node in zip(node.ops, node.comparators, strict=True):
            op = _CMPOPS.get(type(op_node))
            if op is None:
                raise ExpressionError(
                    f"comparison {type(op_node).__name__} is not allowed (use ==, !=, <, <=, >, >=)"
                )
            right = self.eval(right_node)
            lhs, rhs = self._labels_to_codes(left, right), self._labels_to_codes(right, left)
            res = op(lhs, rhs)
            out = res if out is None else (out & res)
            left = right
        return out

    def _labels_to_codes(self, v, other):
        """``regime == 'B1+C2'`` and ``best == 'C1'``: names -> the stored integer codes."""
        if not isinstance(v, str):
            return v
        if isinstance(other, xr.DataArray) and other.name == "regime":
            return self.acc.regime_code(v)
        if isinstance(other, xr.DataArray) and other.name in ("best", "worst"):
            labs = self.acc.labels
            if v not in labs:
                raise ExpressionError(f"unknown equilibrium {v!r}; labels: {', '.join(labs)}")
            return labs.index(v)
        if isinstance(other, str):
            return v
        raise ExpressionError(
            f"a string ({v!r}) can only be compared with regime, best or "
            "worst; select labels with var['C2'] or var.sel(...)"
        )

    def _Subscript(self, node):
        v = self.eval(node.value)
        if not isinstance(v, xr.DataArray):
            raise ExpressionError(f"only variables can be subscripted: {ast.unparse(node)!r}")
        key = self.const(node.slice)
        extra = [d for d in v.dims if d not in self.acc.params]
        if len(extra) != 1:
            raise ExpressionError(
                f"{v.name}[...] needs exactly one label dimension to select along; "
                f"{v.name} has {extra or 'none'}: use .sel(dim=value)"
            )
        dim = extra[0]
        return self._sel(v, {dim: key})

    def _sel(self, v: xr.DataArray, idx: dict) -> xr.DataArray:
        try:
            return v.sel(idx)
        except (KeyError, ValueError, TypeError) as exc:
            opts = {d: [_plain(x) for x in v[d].values] for d in idx if d in v.coords}
            raise ExpressionError(
                f"cannot select {idx} from {v.name}: {exc}; values: {opts}"
            ) from None

    def _Call(self, node):
        if node.keywords and any(k.arg is None for k in node.keywords):
            raise ExpressionError("**kwargs is not allowed")
        if isinstance(node.func, ast.Name):
            fn = _FUNCS.get(node.func.id)
            if fn is None:
                raise ExpressionError(
                    f"unknown function {node.func.id!r}; allowed: {', '.join(sorted(_FUNCS))}"
                )
            if node.keywords:
                raise ExpressionError(f"{node.func.id}() takes no keyword arguments")
            return fn(*[self.eval(a) for a in node.args])
        if isinstance(node.func, ast.Attribute):
            name = node.func.attr
            if name not in _METHODS:
                raise ExpressionError(
                    f"method {name!r} is not allowed; allowed: {', '.join(sorted(_METHODS))}"
                )
            obj = self.eval(node.func.value)
            if not isinstance(obj, xr.DataArray):
                raise ExpressionError(f".{name}() applies to cube variables only")
            args = [self.const(a) for a in node.args]
            kwargs = {k.arg: self.const(k.value) for k in node.keywords}
            if name == "sel":
                if args:
                    raise ExpressionError(
                        "sel() takes keyword arguments, e.g. sel(equilibrium='C2')"
                    )
                return self._sel(obj, kwargs)
            try:
                return getattr(obj, name)(*args, **kwargs)
            except (KeyError, ValueError, TypeError, IndexError) as exc:
                raise ExpressionError(f"{ast.unparse(node)}: {exc}") from None
        raise ExpressionError(f"call not allowed: {ast.unparse(node)!r}")

    def _Attribute(self, node):
        raise ExpressionError(
            f"attribute access is not allowed ({ast.unparse(node)!r}); only "
            f"the methods {', '.join(sorted(_METHODS))} can be called"
        )

    def _truth(self, v):
        if isinstance(v, xr.DataArray):
            if v.dtype != bool:
                raise ExpressionError(
                    f"{v.name or 'a value'} is not a condition (dtype "
                    f"{v.dtype}); compare it, e.g. {v.name or 'x'} > 0"
                )
            return v
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        raise ExpressionError(f"{v!r} is not a condition")


# --------------------------------------------------------------------- accessor


@xr.register_dataset_accessor("marshall")
class MarshallAccessor:
    """Queries over a marshall cube (``ds.marshall``); see the module docstring."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    # ---------------------------------------------------------------- structure
    @property
    def model(self) -> str:
        return str(self._ds.attrs.get("model", ""))

    @property
    def J(self) -> int:
        return int(self._ds.attrs.get("sectors", 2))

    @property
    def params(self) -> tuple[str, ...]:
        """The swept parameters (cube dimensions in config order)."""
        if "done" in self._ds:
            return tuple(d for d in self._ds["done"].dims)
        return tuple(d for d in self._ds.dims if d not in NON_PARAM_DIMS)

    @property
    def fixed(self) -> dict[str, float]:
        """Fixed parameters (scalar coordinates) and their values."""
        out = {}
        for name, c in self._ds.coords.items():
            if c.ndim == 0 and name not in NON_PARAM_DIMS:
                out[str(name)] = _plain(c.values[()])
        return out

    @property
    def labels(self) -> list[str]:
        """Equilibrium labels in cube order."""
        return [str(x) for x in self._ds["equilibrium"].values]

    @property
    def done(self) -> xr.DataArray:
        ds = self._ds
        if "done" in ds:
            return ds["done"].astype(bool)
        return xr.ones_like(ds["regime"], dtype=bool)

    def _param(self, name: str) -> xr.DataArray:
        return self._ds[name]

    def summary(self) -> dict:
        """Model, dimensions (size, range, spacing), fixed values, point and regime counts."""
        ds = self._ds
        done = self.done
        n_done, n_knife, n_mult = (
            int(x)
            for x in _compute(done.sum(), (ds["knife_edge"] & done).sum(), self.multiple().sum())
        )
        dims = {}
        for d in self.params:
            v = ds[d].values
            dims[d] = {
                "size": int(v.size),
                "min": _plain(v.min()),
                "max": _plain(v.max()),
                "spacing": ds[d].attrs.get("spacing", ""),
            }
        return {
            "model": self.model,
            "sectors": self.J,
            "description": ds.attrs.get("description", ""),
            "dims": dims,
            "fixed": self.fixed,
            "points": int(np.prod([ds.sizes[d] for d in self.params], dtype=np.int64)),
            "done": n_done,
            "complete": bool(ds.attrs.get("complete", 0)),
            "knife_edge": n_knife,
            "multiple": n_mult,
            "equilibria": self.labels,
            "regimes": {str(k): v for k, v in self.regime_names().items()},
        }

    # ------------------------------------------------------------------ regimes
    def _bits(self) -> list[str]:
        bits = self._ds["regime"].attrs.get("regime_bits")
        return [str(b) for b in bits] if bits is not None else self.labels

    def regime_names(self) -> dict[int, str]:
        """``{code: name}`` of the regimes at computed points (``"B1+C1+C2"``; ``"none"``:
        no stable equilibrium), sorted by code."""
        attrs = self._ds["regime"].attrs
        stored = attrs.get("regime_labels")
        if stored and self._ds.attrs.get("complete"):
            if isinstance(stored, str):
                stored = json.loads(stored)
            return {int(k): str(v) for k, v in sorted(stored.items(), key=lambda kv: int(kv[0]))}
        reg = np.asarray(self._ds["regime"].values)
        codes = np.unique(reg[np.asarray(self.done.values) & (reg >= 0)])
        bits = self._bits()
        return {int(c): regime_name(int(c), bits) for c in codes}

    def regime_code(self, name: str) -> int:
        """Integer code of a regime name (labels in any order, ``"none"`` for no stable one)."""
        bits = self._bits()
        parts = [p.strip() for p in str(name).split("+") if p.strip()]
        if parts == ["none"]:
            return 0
        unknown = [p for p in parts if p not in bits]
        if unknown or not parts:
            raise ExpressionError(
                f"unknown regime {name!r}: {unknown or 'empty'} not among the "
                f"equilibria {', '.join(bits)}; regimes in this cube: "
                f"{', '.join(self.regime_names().values())}"
            )
        return int(sum(1 << bits.index(p) for p in set(parts)))

    def regime(self) -> xr.DataArray:
        """Regime names as a string DataArray over the swept dims ("" where not computed)."""
        names = self.regime_names()
        reg = self._ds["regime"]
        codes = np.asarray(reg.values)
        out = np.full(codes.shape, "", dtype=object)
        done = np.asarray(self.done.values)
        for c, n in names.items():
            out[(codes == c) & done] = n
        return xr.DataArray(out, dims=reg.dims, coords=reg.coords, name="regime_name")

    def regime_share(
        self, by: str | Sequence[str] | None = None, where: str | xr.DataArray | None = None
    ) -> pd.Series | pd.DataFrame:
        """Share of computed points in each regime.

        ``by=None``: a Series indexed by regime name (sums to 1). ``by="theta_2"`` (or a
        list of dims): a DataFrame, one row per value of ``by``, one column per regime.
        ``where`` (an expression or mask) restricts the points counted.
        """
        ds = self._ds
        mask = self.done if where is None else self._mask(where)
        by_dims: list[str] = [] if by is None else ([by] if isinstance(by, str) else list(by))
        for d in by_dims:
            self._check_dim(d)
        names = self.regime_names()
        red = [d for d in self.params if d not in by_dims]
        reg = ds["regime"]
        counts = _compute(*[((reg == c) & mask).sum(red) for c in names])
        total = _compute(mask.sum(red))[0]
        if not by_dims:
            n = float(total)
            vals = [float(c) / n if n else math.nan for c in counts]
            return pd.Series(
                vals, index=pd.Index(list(names.values()), name="regime"), name="share"
            )
        tot = np.asarray(total.transpose(*by_dims).values, dtype=float)
        cols = {}
        for (_, nm), cnt in zip(names.items(), counts, strict=True):
            with np.errstate(invalid="ignore", divide="ignore"):
                cols[nm] = (np.asarray(cnt.transpose(*by_dims).values, float) / tot).ravel()
        index = (
            pd.MultiIndex.from_product([ds[d].values for d in by_dims], names=by_dims)
            if len(by_dims) > 1
            else pd.Index(ds[by_dims[0]].values, name=by_dims[0])
        )
        df = pd.DataFrame(cols, index=index)
        df.columns.name = "regime"
        return df

    def multiple(self) -> xr.DataArray:
        """Mask of computed points with more than one stable equilibrium."""
        return ((self._ds["n_stable"] > 1) & self.done).rename("multiple")

    # ----------------------------------------------------------------- points
    def _check_dim(self, name: str) -> None:
        if name not in self.params:
            if name in self.fixed:
                raise ValueError(
                    f"{name!r} is fixed at {_fmt(self.fixed[name])} in this cube, "
                    f"not swept; swept dimensions: {', '.join(self.params)}"
                )
            raise ValueError(
                f"unknown dimension {name!r}; the cube's swept dimensions are "
                f"{', '.join(self.params) or 'none'}"
                + (f" (fixed: {', '.join(self.fixed)})" if self.fixed else "")
            )

    def indexers(
        self, params: Mapping[str, Any] | None, require_all: bool = False, free: Sequence[str] = ()
    ) -> dict[str, int]:
        """Nearest-grid-point integer indexers for ``params`` (log distance on log axes).

        Fixed parameters may be named with their own value. With ``require_all`` every
        swept dimension not in ``free`` and longer than 1 must be given.
        """
        params = dict(params or {})
        idx: dict[str, int] = {}
        for k, v in params.items():
            if k in free:
                raise ValueError(f"{k!r} is a plotted axis; it cannot also be fixed with at")
            if k in self.params:
                try:
                    idx[k] = nearest_index(self._ds[k], float(v))
                except (TypeError, ValueError):
                    raise ValueError(f"{k}={v!r}: not a number") from None
            elif k in self.fixed:
                fv = float(self.fixed[k])
                if not math.isclose(float(v), fv, rel_tol=1e-9, abs_tol=1e-12):
                    raise ValueError(
                        f"{k!r} is fixed at {_fmt(fv)} in this cube; it cannot be set to {_fmt(v)}"
                    )
            else:
                self._check_dim(k)
        for d in self.params:
            if d in idx or d in free:
                continue
            if self._ds.sizes[d] == 1:
                idx[d] = 0
        if require_all:
            left = [d for d in self.params if d not in idx and d not in free]
            if left:
                ranges = ", ".join(
                    f"{d} ({self._ds.sizes[d]} values, "
                    f"{_fmt(self._ds[d].values[0])}..{_fmt(self._ds[d].values[-1])})"
                    for d in left
                )
                eg = ", ".join(f"{d}={_fmt(self._ds[d].values[0])}" for d in left)
                raise ValueError(
                    f"dimension(s) left over: {ranges}; give a value for each, e.g. "
                    f"at({eg}) (CLI: " + " ".join(f"--at {d}=..." for d in left) + ")"
                )
        return idx

    def point(self, **params: float) -> xr.Dataset:
        """The cube at the grid point nearest ``params`` (all swept dims of size > 1)."""
        return self._ds.isel(self.indexers(params, require_all=True))

    def coords_of(self, sub: xr.Dataset) -> dict[str, Any]:
        """Parameter values (swept and fixed) of a point dataset."""
        names = [d for d in self.params if d in sub.coords] + [
            str(k) for k in sub.coords if k not in self.params
        ]
        return {
            k: _plain(sub.coords[k].values[()])
            for k in names
            if sub.coords[k].ndim == 0 and k not in NON_PARAM_DIMS
        }

    def at(self, **params: float) -> pd.DataFrame:
        """Equilibria at the grid point nearest ``params``: a table indexed by equilibrium
        with columns ``exists, stable, wage, rank``. ``df.attrs`` holds ``coords`` (every
        parameter's value at the point), ``done``, ``regime``, ``n_equilibria``,
        ``n_stable``, ``best``, ``worst``, ``knife_edge``."""
        sub = self.point(**params).compute()
        df = pd.DataFrame(
            {
                "exists": np.asarray(sub["exists"].values, bool),
                "stable": np.asarray(sub["stable"].values, bool),
                "wage": np.asarray(sub["wage"].values, float),
                "rank": np.asarray(sub["rank"].values, int),
            },
            index=pd.Index(self.labels, name="equilibrium"),
        )
        code = int(sub["regime"].values)
        done = bool(sub["done"].values) if "done" in sub else True
        labs = self.labels

        def lab(i):
            i = int(i)
            return labs[i] if 0 <= i < len(labs) else None

        df.attrs = {
            "coords": self.coords_of(sub),
            "done": done,
            "regime": regime_name(code, self._bits()) if done and code >= 0 else None,
            "n_equilibria": int(sub["n_equilibria"].values),
            "n_stable": int(sub["n_stable"].values),
            "best": lab(sub["best"].values),
            "worst": lab(sub["worst"].values),
            "knife_edge": bool(sub["knife_edge"].values),
        }
        return df

    def transition(self, **params: float) -> pd.DataFrame:
        """Dynamic cubes: per target ``k`` the transition summaries at the nearest point
        (``jump, half_life, t99, pv_gain, breakeven_kappa, path_feasible, status``) and
        ``a_hat`` of sector ``k``."""
        present = [v for v in TRANSITION_VARS if v in self._ds]
        if not present:
            raise ValueError("this cube has no transition variables (model 'dynamic' only)")
        sub = self.point(**params).compute()
        data = {v: np.asarray(sub[v].values) for v in present}
        if "a_hat" in sub:
            data["a_hat"] = np.asarray(sub["a_hat"].values)
        df = pd.DataFrame(data, index=pd.Index(sub["target"].values, name="target"))
        df.attrs = {"coords": self.coords_of(sub)}
        return df

    # ------------------------------------------------------------------ where
    def where(self, expr: str) -> xr.DataArray:
        """Boolean mask over the swept dims of the computed points where ``expr`` holds.

        ``expr`` uses parameters and variables, e.g. ``"theta_1 > 2 and exists['C2']"``
        or ``"regime == 'B1+C1+C2'"`` (see the module docstring for the grammar). It is
        interpreted node by node (no ``eval``); anything else raises
        :class:`ExpressionError` (a ``ValueError``).
        """
        if not isinstance(expr, str):
            raise ExpressionError("expression must be a string")
        if len(expr) > MAX_EXPR:
            raise ExpressionError(f"expression longer than {MAX_EXPR} characters")
        try:
            tree = ast.parse(expr.strip(), mode="eval")
        except SyntaxError as exc:
            raise ExpressionError(f"cannot parse {expr!r}: {exc.msg}") from None
        except (RecursionError, MemoryError):
            raise ExpressionError("expression is nested too deeply") from None
        try:
            val = _Evaluator(self).eval(tree)
        except ExpressionError:
            raise
        except RecursionError:
            raise ExpressionError("expression is nested too deeply") from None
        except (TypeError, ValueError, KeyError, IndexError, ZeroDivisionError) as exc:
            raise ExpressionError(f"cannot evaluate {expr!r}: {exc}") from None
        done = self.done
        if isinstance(val, xr.DataArray):
            extra = [d for d in val.dims if d not in self.params]
            if extra:
                raise ExpressionError(
                    f"the expression still varies over {extra}: select a value, e.g. "
                    f"exists['C2'] or exists.sel({extra[0]}=...), or reduce it, e.g. "
                    f".any('{extra[0]}')"
                )
            if val.dtype != bool:
                raise ExpressionError(
                    f"the expression gives {val.dtype} values, not a condition;"
                    " compare it, e.g. wage['C1'] > 1"
                )
            mask = (val & done).broadcast_like(done)
        elif isinstance(val, (bool, np.bool_)):
            mask = done & bool(val)
        else:
            raise ExpressionError(f"the expression gives {val!r}, not a condition")
        mask = mask.transpose(*self.params)
        return mask.compute().rename("where")

    def _mask(self, m: str | xr.DataArray) -> xr.DataArray:
        if isinstance(m, str):
            return self.where(m)
        if not isinstance(m, xr.DataArray):
            raise TypeError("mask must be an expression or a boolean DataArray")
        return (m.astype(bool) & self.done).broadcast_like(self.done).transpose(*self.params)

    def count(self, m: str | xr.DataArray) -> int:
        """Number of computed points satisfying an expression or mask."""
        return int(self._mask(m).sum())

    def points(self, m: str | xr.DataArray, limit: int | None = None) -> pd.DataFrame:
        """Table of the points where an expression/mask holds (C order): their swept
        coordinates, regime name, ``n_stable`` and best equilibrium."""
        mask = np.asarray(self._mask(m).values, bool)
        flat = np.flatnonzero(mask)
        n = int(flat.size)
        if limit is not None:
            flat = flat[:limit]
        ds = self._ds
        cols: dict[str, Any] = {}
        if mask.ndim:
            for d, i in zip(self.params, np.unravel_index(flat, mask.shape), strict=True):
                cols[d] = np.asarray(ds[d].values)[i]
        reg, nst, best = (
            np.asarray(ds[v].transpose(*self.params).values).reshape(-1)[flat]
            for v in ("regime", "n_stable", "best")
        )
        bits, labs = self._bits(), self.labels
        cols["regime"] = [regime_name(int(c), bits) for c in reg]
        cols["n_stable"] = nst.astype(int)
        cols["best"] = [labs[int(b)] if b >= 0 else "" for b in best]
        df = pd.DataFrame(cols)
        df.attrs = {"matches": int(n)}
        return df

    # ------------------------------------------------------------------ claims
    def claims(self, examples: int = 3) -> pd.DataFrame:
        """Per claim: its statement, points ``checked`` (computed, assumptions hold),
        ``held``, ``failed``, ``not_applicable``, and up to ``examples`` counterexamples
        (dicts of coordinates) where it failed."""
        ds = self._ds
        if "claims" not in ds or "claim" not in ds.dims:
            raise ValueError("this cube has no claims")
        labels = [str(c) for c in ds["claim"].values]
        try:
            statements = json.loads(ds["claim"].attrs.get("statements", "{}"))
        except (TypeError, json.JSONDecodeError):
            statements = {}
        done = self.done
        cl = ds["claims"]
        held, failed, na = _compute(
            ((cl == 1) & done).sum(self.params),
            ((cl == 0) & done).sum(self.params),
            ((cl < 0) & done).sum(self.params),
        )
        rows = []
        for i, lab in enumerate(labels):
            h, f, n = int(held.values[i]), int(failed.values[i]), int(na.values[i])
            ex = []
            if f and examples:
                m = ((cl.isel(claim=i) == 0) & done).transpose(*self.params)
                pts = self.points(m, limit=examples)
                ex = [{k: _plain(v) for k, v in r.items()} for r in pts.to_dict("records")]
            rows.append(
                {
                    "claim": lab,
                    "statement": statements.get(lab, ""),
                    "checked": h + f,
                    "held": h,
                    "failed": f,
                    "not_applicable": n,
                    "examples": ex,
                }
            )
        return pd.DataFrame(rows).set_index("claim")

    def claims_ok(self) -> bool:
        """True when no claim fails at a computed point where its assumptions hold."""
        return int(self.claims(examples=0)["failed"].sum()) == 0

    # --------------------------------------------------------------- slicing
    def slice2d(self, x: str, y: str, at: Mapping[str, Any] | None = None) -> xr.Dataset:
        """The cube on the 2-D slice ``(y, x)``: other swept dims fixed by ``at`` (nearest
        grid value; dims of size 1 need not be given). Raises a ``ValueError`` naming an
        unknown dimension or the dims left over."""
        for d in (x, y):
            self._check_dim(d)
        if x == y:
            raise ValueError(f"x and y are both {x!r}; choose two different dimensions")
        try:
            idx = self.indexers(at, require_all=True, free=(x, y))
        except ValueError as exc:
            msg = str(exc)
            if msg.startswith("dimension(s) left over"):
                raise ValueError(f"the slice {x} x {y} is not 2-D: {msg}") from None
            raise
        return self._ds.isel(idx)

    # ------------------------------------------------------------ boundaries
    def boundaries(
        self, x: str, y: str, at: Mapping[str, Any] | None = None, n: int = 401
    ) -> list[Boundary]:
        """The analytic boundaries of MODEL.md crossing the 2-D slice ``(x, y)``.

        - ``standard``: ``c = 1`` (CA; C2 exists), ``c = theta`` (B1 exists) and, where
          South's scale binds somewhere, ``c theta_S / theta = 1`` (C2 exists);
        - ``coordination``/``modes``: for each ``j`` and ``k != j`` the ``Cj`` condition
          ``r_k / theta_k = r_j theta_jS / theta_j`` (``r_k / r_j = theta_k`` when
          ``theta_jS = theta_j``; for ``J = 2``, ``C2``: ``r_1 / r_2 = theta_1``), and for
          ``j < k`` the ``Bj``/``Bk`` tie ``r_j / theta_j = r_k / theta_k``; ``modes`` also
          ``theta_jS = 1`` and ``(1 - beta)/alpha = min(L_S, Lbar_j)`` (``Mj``);
        - ``dynamic``: with ``a_hat_k = max(0, 1 - g_k/eps_k)``, ``Cj``:
          ``r_k / r_j = theta_k / a_hat_k`` (``J = 2``, ``C2``: ``r_1/r_2 = theta_1/a_hat_1``)
          and the ``Bj``/``Bk`` tie ``r_j a_hat_j / theta_j = r_k a_hat_k / theta_k``.

        Each condition ``lhs = rhs`` is contoured as ``log(lhs / rhs) = 0`` on an
        ``n x n`` grid spanning the slice (log-spaced on log axes), only where the
        equilibrium's other conditions hold (so that crossing the curve changes whether
        it exists; the ``CA`` line ``c = 1`` of ``standard`` is always drawn, and its
        ``c theta_S/theta = 1`` only where ``theta_S < theta``). Only conditions that
        change sign in the slice are returned.
        """
        import contourpy

        from .kernels import resolve_inputs

        sub = self.slice2d(x, y, at)
        xs, lx = _fine(sub[x], n)
        ys, ly = _fine(sub[y], n)
        X, Y = np.meshgrid(xs, ys)
        p: dict[str, np.ndarray] = {}
        for name, c in sub.coords.items():
            if c.ndim == 0 and name not in NON_PARAM_DIMS and name not in SETTINGS:
                p[str(name)] = np.full(X.size, float(c.values))
        p[x], p[y] = X.ravel(), Y.ravel()
        with np.errstate(divide="ignore", invalid="ignore"):
            inputs = resolve_inputs(self.model, self.J, p)
            conds = _conditions(self.model, self.J, inputs)
        U = np.log10(X) if lx else X
        V = np.log10(Y) if ly else Y
        out = []
        for name, label, eq, F, rel in conds:
            F = np.asarray(F, float).reshape(X.shape)
            F = np.where(np.isfinite(F) & np.asarray(rel, bool).reshape(X.shape), F, np.nan)
            if not (np.nanmin(F, initial=np.inf) < 0 < np.nanmax(F, initial=-np.inf)):
                continue
            gen = contourpy.contour_generator(U, V, np.ma.masked_invalid(F))
            segs = []
            for s in gen.lines(0.0):
                s = np.asarray(s, float)
                if len(s) < 2:
                    continue
                if lx:
                    s[:, 0] = 10 ** s[:, 0]
                if ly:
                    s[:, 1] = 10 ** s[:, 1]
                segs.append(s)
            if segs:
                out.append(Boundary(name, label, eq, x, y, tuple(segs)))
        return out


# ---------------------------------------------------------------------- internals


def _compute(*objs):
    """Compute several lazy xarray objects in one pass over the store."""
    import dask

    return dask.compute(*objs)


def _fine(coord: xr.DataArray, n: int) -> tuple[np.ndarray, bool]:
    v = np.asarray(coord.values, float)
    lo, hi = float(v.min()), float(v.max())
    log = _log_axis(coord) and lo > 0
    if hi == lo:
        return np.array([lo]), log
    return (np.geomspace(lo, hi, n) if log else np.linspace(lo, hi, n)), log


def _conditions(model: str, J: int, inp: dict[str, np.ndarray]):
    """``(name, mathtext label, equilibrium, log(lhs/rhs), relevant)`` of each defining
    condition of MODEL.md; ``relevant`` is where the other conditions of that
    equilibrium hold, so that crossing the curve there changes whether it exists."""
    out = []
    if model == "standard":
        c = inp["r_2"] / inp["r_1"]
        th, thS = inp["theta"], inp["theta_S"]
        yes = np.ones(c.shape, bool)
        out.append(("CA: c = r_2/r_1 = 1", r"$c = r_2/r_1 = 1$", "C2", np.log(c), yes))
        out.append(("B1: c = theta", r"$c = \theta$", "B1", np.log(c / th), yes))
        if np.any(np.abs(thS / th - 1) > 1e-12):
            out.append(
                (
                    "C2: c theta_S/theta = 1",
                    r"$c\,\theta_S/\theta = 1$",
                    "C2",
                    np.log(c * thS / th),
                    thS < th,
                )
            )  # = CA where theta_S = theta
        return out
    r, th = inp["r"], inp["theta"]
    dynamic = model == "dynamic"
    if dynamic:
        a = np.maximum(0.0, 1.0 - inp["g"] / inp["eps"])
        b, wC, thS, scale = r * a / th, r, th, False
    else:
        thS = inp.get("theta_S", th)
        scale = bool(np.any(np.abs(thS / th - 1) > 1e-12))
        b, wC = r / th, r * thS / th
    C_ok = thS > 1.0

    def others(*skip):
        return [m for m in range(J) if m not in skip]

    for j in range(J):
        for k in others(j):
            J1, K1 = j + 1, k + 1
            if dynamic:
                name = f"C{J1}: r_{K1}/r_{J1} = theta_{K1}/a_hat_{K1}"
                label = rf"$r_{{{K1}}}/r_{{{J1}}} = \theta_{{{K1}}}/\hat a_{{{K1}}}$"
            elif scale:
                name = f"C{J1}: r_{K1}/theta_{K1} = r_{J1} theta_{J1}S/theta_{J1}"
                label = (
                    rf"$r_{{{K1}}}/\theta_{{{K1}}} = "
                    rf"r_{{{J1}}}\theta_{{{J1}S}}/\theta_{{{J1}}}$"
                )
            else:
                name = f"C{J1}: r_{K1}/r_{J1} = theta_{K1}"
                label = rf"$r_{{{K1}}}/r_{{{J1}}} = \theta_{{{K1}}}$"
            rel = C_ok[:, j].copy()
            for m in others(j, k):
                rel &= b[:, m] <= wC[:, j]
            out.append((name, label, f"C{J1}", np.log(b[:, k] / wC[:, j]), rel))
    for j in range(J):
        for k in range(j + 1, J):
            J1, K1 = j + 1, k + 1
            if dynamic:
                name = f"B{J1}/B{K1}: r_{J1} a_hat_{J1}/theta_{J1} = r_{K1} a_hat_{K1}/theta_{K1}"
                label = (
                    rf"$r_{{{J1}}}\hat a_{{{J1}}}/\theta_{{{J1}}} = "
                    rf"r_{{{K1}}}\hat a_{{{K1}}}/\theta_{{{K1}}}$"
                )
            else:
                name = f"B{J1}/B{K1}: r_{J1}/theta_{J1} = r_{K1}/theta_{K1}"
                label = rf"$r_{{{J1}}}/\theta_{{{J1}}} = r_{{{K1}}}/\theta_{{{K1}}}$"
            top = np.maximum(b[:, j], b[:, k])
            rel = np.ones(top.shape, bool)
            for m in others(j, k):
                rel &= b[:, m] <= top
            out.append((name, label, f"B{J1},B{K1}", np.log(b[:, k] / b[:, j]), rel))
    if model == "modes":
        beta, alpha, L_S, Lbar = inp["beta"], inp["alpha"], inp["L_S"], inp["Lbar"]
        for j in range(J):
            J1 = j + 1
            rel_c = np.ones(b.shape[0], bool)
            rel_b = np.ones(b.shape[0], bool)
            for m in others(j):
                rel_c &= b[:, m] <= wC[:, j]
                rel_b &= b[:, m] <= b[:, j]
            out.append(
                (
                    f"C{J1}: theta_{J1}S = 1",
                    rf"$\theta_{{{J1}S}} = 1$",
                    f"C{J1}",
                    np.log(thS[:, j]),
                    rel_c,
                )
            )
            cap = np.minimum(L_S, Lbar[:, j])
            out.append(
                (
                    f"M{J1}: (1 - beta)/alpha = min(L_S, Lbar_{J1})",
                    rf"$(1-\beta)/\alpha = \min(L_S, \bar L_{{{J1}}})$",
                    f"M{J1}",
                    np.log(cap * alpha / (1.0 - beta)),
                    rel_b,
                )
            )
    return out
