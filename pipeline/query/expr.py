"""The query language of :func:`where`: expressions over a cube, parsed with :mod:`ast`
and evaluated by a small interpreter, never by ``eval``. Allowed:

- names: swept and fixed parameters (``r_1``, ``theta_1``, ...), data variables
  (``exists``, ``wage``, ``regime``, ``n_stable``, ...), the model's derived names
  (e.g. ``c`` = ``r_2/r_1`` for ``standard``), constants ``True``, ``False``, ``inf``,
  ``nan``, ``pi``;
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
import math
import operator
from typing import Any

import numpy as np
import xarray as xr

from . import meta
from .errors import ExpressionError

MAX_EXPR = 2000

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
#: the functions of the language and how many arguments each takes (checked before
#: the call: numpy's ufuncs take more, e.g. ``out``, which a query must never reach)
_FUNCS = {
    "abs": (np.abs, 1),
    "log": (np.log, 1),
    "log10": (np.log10, 1),
    "exp": (np.exp, 1),
    "sqrt": (np.sqrt, 1),
    "isnan": (np.isnan, 1),
    "minimum": (np.minimum, 2),
    "maximum": (np.maximum, 2),
}
_CONSTS = {"True": True, "False": False, "inf": math.inf, "nan": math.nan, "pi": math.pi}


class _Evaluator:
    """Interpret a parsed expression over a cube's variables (see the module docstring)."""

    def __init__(self, ds: xr.Dataset):
        self.ds = ds
        m = meta.decl(ds)
        self.derived = dict(m.expressions) if m is not None else {}
        self.params = meta.params(ds)
        self.labels_dims = set(meta.label_dims(ds))
        self._depth = 0

    def names(self) -> list[str]:
        out = list(self.params) + list(meta.fixed(self.ds)) + list(self.ds.data_vars)
        return out + [n for n in self.derived if n not in out]

    def lookup(self, name: str) -> Any:
        ds = self.ds
        if name in _CONSTS:
            return _CONSTS[name]
        if name in ds.data_vars or name in ds.coords:
            if name in self.labels_dims:
                raise ExpressionError(
                    f"{name!r} is a label dimension; select along it instead, "
                    f"e.g. exists.sel({name}=...)"
                )
            return ds[name]
        if name in self.derived:  # the model's derived names, e.g. c = r_2 / r_1
            if self._depth > 8:
                raise ExpressionError(f"derived name {name!r} refers to itself")
            self._depth += 1
            try:
                return self.eval(ast.parse(self.derived[name], mode="eval"))
            finally:
                self._depth -= 1
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
            return meta.regime_code(self.ds, v)
        if isinstance(other, xr.DataArray) and other.name in ("best", "worst"):
            labs = meta.labels(self.ds)
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
        extra = [d for d in v.dims if d not in self.params]
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
            opts = {d: [meta._plain(x) for x in v[d].values] for d in idx if d in v.coords}
            raise ExpressionError(
                f"cannot select {idx} from {v.name}: {exc}; values: {opts}"
            ) from None

    def _Call(self, node):
        if node.keywords and any(k.arg is None for k in node.keywords):
            raise ExpressionError("**kwargs is not allowed")
        if isinstance(node.func, ast.Name):
            name = node.func.id
            if name not in _FUNCS:
                raise ExpressionError(
                    f"unknown function {name!r}; allowed: {', '.join(sorted(_FUNCS))}"
                )
            fn, arity = _FUNCS[name]
            if node.keywords:
                raise ExpressionError(f"{name}() takes no keyword arguments")
            if len(node.args) != arity:
                example = "minimum(r_1, r_2)" if arity == 2 else f"{name}(r_1)"
                raise ExpressionError(
                    f"{name}() takes {arity} argument{'s' if arity > 1 else ''}; got "
                    f"{len(node.args)} in {ast.unparse(node)!r} (e.g. {example})"
                )
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


def _evaluate(ds: xr.Dataset, expr: str) -> Any:
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
        val = _Evaluator(ds).eval(tree)
    except ExpressionError:
        raise
    except RecursionError:
        raise ExpressionError("expression is nested too deeply") from None
    except (TypeError, ValueError, KeyError, IndexError, ZeroDivisionError) as exc:
        raise ExpressionError(f"cannot evaluate {expr!r}: {exc}") from None
    swept = meta.params(ds)
    if isinstance(val, xr.DataArray):
        extra = [d for d in val.dims if d not in swept]
        if extra:
            raise ExpressionError(
                f"the expression still varies over {extra}: select a value, e.g. "
                f"exists['C2'] or exists.sel({extra[0]}=...), or reduce it, e.g. "
                f".any('{extra[0]}')"
            )
    return val


def value(ds: xr.Dataset, expr: str) -> xr.DataArray:
    """The values of an expression over the point dims (numbers or booleans), e.g.
    ``"wage.sel(equilibrium='C1')"``; not-computed points read as NaN (numbers) or
    False (booleans)."""
    val = _evaluate(ds, expr)
    done = meta.done(ds)
    if not isinstance(val, xr.DataArray):
        raise ExpressionError(f"the expression gives one value ({val!r}), not one per point")
    if val.dtype == bool:
        out = val & done
    else:
        out = val.astype(float).where(done)
    return out.broadcast_like(done).transpose(*meta.params(ds)).compute().rename("value")


def where(ds: xr.Dataset, expr: str) -> xr.DataArray:
    """Boolean mask over the swept dims of the computed points where ``expr`` holds.

    ``expr`` uses parameters and variables, e.g. ``"theta_1 > 2 and exists['C2']"``
    or ``"regime == 'B1+C1+C2'"`` (see the module docstring for the grammar). It is
    interpreted node by node (no ``eval``); anything else raises
    :class:`ExpressionError` (a :class:`QueryError`, a ``ValueError``).
    """
    val = _evaluate(ds, expr)
    done = meta.done(ds)
    if isinstance(val, xr.DataArray):
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
    mask = mask.transpose(*meta.params(ds))
    return mask.compute().rename("where")
