r"""What a model declares: the one description of a model the whole pipeline reads.

A model is a frozen :class:`Model` in the model's own file. Config validation, the
kernel batch, the cube's schema, ``marshall plan``'s estimate, the queries, the phase
diagrams' boundaries, the workflow's figures and the CLI all look it up in the registry
(:mod:`pipeline.models`) instead of switching on the model's name.

Pieces (each documented where it is defined):

- :class:`Param` -- a config parameter: name (``r_{j}`` for one per sector), meaning,
  allowed range, the paper's symbol, units, default, aliases;
- :class:`Output` -- a variable of the cube: extra dimensions, dtype, fill value, CF
  attributes;
- :class:`Claim` -- a claim of the paper, checked point by point;
- :class:`Margins` -- the two sides of every defining condition ``lhs OP rhs`` of
  every equilibrium. Existence, stability, the knife-edge flag (:func:`classify`)
  and the analytic boundaries drawn on phase diagrams all come from these, so the
  lines on a figure come from the same code as the colours beneath them;
- :class:`Kernel` -- the model's pure functions of arrays and how a batch is formed.

The models' arithmetic is written once against an array namespace :class:`Ops`
(``NUMPY`` here, or :func:`jax_ops` inside a kernel), so that the boundaries are
evaluated by numpy when a cube is read, without importing JAX.

The knife-edge convention (docs/models.md): a condition ``lhs OP rhs`` holds with
equality when ``|lhs / rhs - 1| <= 1e-12``. Inside that band it counts as equality
whichever side the floating-point values fall: a weak inequality holds (the
equilibrium exists) and a strict one does not (it is not stable).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

#: |lhs / rhs - 1| <= KNIFE_TOL: the condition holds with equality (knife-edge)
KNIFE_TOL = 1e-12
#: code stored in ``claims`` where a claim's assumptions do not hold (read as missing)
CLAIM_NA = -1
#: where the models are documented (cited by messages, legends, cube attributes)
DOCS = "docs/models.md"
#: The documented range of every positive magnitude of the models (relative and raw
#: productivities, cluster gains, cluster sizes, labour): the kernels compute them
#: accurately there (no product or ratio of a few of them overflows, none underflows
#: to a subnormal, which XLA flushes to 0).
MAGNITUDE = (1e-6, 1e6)


# ------------------------------------------------------------------- array namespace


class Ops(NamedTuple):
    """The array namespace a model's arithmetic runs on.

    ``xp`` is numpy or ``jax.numpy``; ``barrier`` pins an intermediate so that XLA
    cannot fuse it into the next operation (``(a / b) / c`` rewritten as
    ``a / (b * c)`` moves the result by an ulp and can flip a comparison at a
    near-tie; the kernels must agree exactly with a plain numpy evaluation of the
    same expressions). ``concrete``: the values are numbers (numpy), not traced, so
    a model may choose e.g. a boundary's name from them.
    """

    xp: Any
    barrier: Callable
    concrete: bool

    def ratio(self, a, b):
        """``a / b`` computed as written (see ``barrier``)."""
        return self.barrier(a / b)

    def near(self, lhs, rhs):
        """Knife-edge test ``|lhs / rhs - 1| <= KNIFE_TOL`` (true also when both are 0)."""
        xp = self.xp
        with np.errstate(divide="ignore", invalid="ignore"):
            q = self.ratio(lhs, rhs)
        return ((lhs == 0) & (rhs == 0)) | (xp.abs(q - 1.0) <= KNIFE_TOL)


NUMPY = Ops(np, lambda x: x, True)


def jax_ops() -> Ops:
    """The JAX namespace (imports JAX: only kernels call this)."""
    import jax
    import jax.numpy as jnp

    from .. import _jax  # noqa: F401  (float64 on)

    return Ops(jnp, jax.lax.optimization_barrier, False)


# ---------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Param:
    """A config parameter of a model.

    ``name`` is the config name; ``{j}`` in it stands for the sector (``r_{j}`` is
    ``r_1 .. r_J``). The value must lie in ``[lo, hi]`` (open ends with ``lo_open``,
    ``hi_open``; ``None`` for unbounded; ``inf`` allowed only with ``allow_inf``).
    ``symbol`` is LaTeX (``\theta_{j}``), ``units`` a UDUNITS string. ``default`` is
    written into the sweep when the parameter is not given; ``sweep=False``: a
    setting that shapes the cube (one value only); ``setting``: not an economic
    parameter (excluded from boundary evaluation and figure captions).
    ``aliases`` are other config names for the same parameter; ``example`` a typical
    value (starter configs). ``floor``: the least value other than a closed ``lo``
    itself that the kernels compute accurately; values strictly between ``lo`` and
    ``floor`` are refused too (``r_j`` in ``(0, 1e-6)``; a rate in ``(0, 1e-12)``).
    ``[floor, hi]`` (with ``lo`` if closed) is the parameter's documented range
    (:meth:`bounds_text`), checked by :func:`range_problems`.
    """

    name: str
    meaning: str
    symbol: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = True
    hi_open: bool = False
    units: str = "1"
    default: float | None = None
    sweep: bool = True
    integer: bool = False
    setting: bool = False
    allow_inf: bool = False
    aliases: tuple[str, ...] = ()
    hint: str = ""
    example: float | None = None  # a typical value, for starter configs (`marshall new`)
    floor: float | None = None

    @property
    def per_sector(self) -> bool:
        return "{j}" in self.name

    def names(self, J: int) -> list[str]:
        """Config names for ``J`` sectors."""
        if not self.per_sector:
            return [self.name]
        return [self.name.replace("{j}", str(j)) for j in range(1, J + 1)]

    def match(self, name: str, J: int) -> tuple[str, int | None] | None:
        """``(canonical name, sector)`` if ``name`` is this parameter or an alias."""
        for pattern in (self.name, *self.aliases):
            if "{j}" not in pattern:
                if name == pattern:
                    return self.name, None
                continue
            rx = "^" + re.escape(pattern).replace(re.escape("{j}"), r"(\d+)") + "$"
            m = re.match(rx, name)
            if m:
                j = int(m.group(1))
                return self.name.replace("{j}", str(j)), j
        return None

    def attrs(self, j: int | None = None) -> dict[str, str]:
        """CF-style attributes of the parameter's coordinate in a cube."""
        sub = (lambda s: s.replace("{j}", str(j))) if j is not None else (lambda s: s)
        return {"long_name": sub(self.meaning), "symbol": sub(self.symbol), "units": self.units}

    def bounds_text(self) -> str:
        """The documented range: ``(1, 1e+06]``, ``[1e-06, 1e+06]``, ``0 or [1e-12, 10]``."""
        lo = "-inf" if self.lo is None else f"{self.lo:g}"
        hi = "inf" if self.hi is None else f"{self.hi:g}"
        left = "(" if self.lo_open or self.lo is None else "["
        right = ")" if self.hi_open or self.hi is None else "]"
        if self.allow_inf and self.hi is None:
            right = "]"
        if self.floor is not None:
            zero = "" if self.lo_open or self.lo is None else f"{lo} or "
            return f"{zero}[{self.floor:g}, {hi}{right}"
        return f"{left}{lo}, {hi}{right}"


def num(x: float) -> str:
    """A number as text that reads back as the same float: ``:g`` where that is exact
    (``10``, ``1e+06``, ``0.02``), else every digit (``10.000001``, not ``10``), so that
    a message shows why a value is refused."""
    x = float(x)
    short = f"{x:g}"
    return short if float(short) == x else repr(x)


# ------------------------------------------------------------------------- outputs


@dataclass(frozen=True)
class Output:
    """A variable of the cube: dims after the swept ones, dtype, fill, CF attributes.

    ``flags``: ``"labels"`` (an index into the equilibrium labels, -1 none),
    ``"claims"`` (1 held, 0 failed, -1 not applicable), or an :class:`enum.IntFlag`
    whose members generate CF ``flag_masks``/``flag_meanings`` (``flag_text``: what each
    member means, stored as the ``status_bits`` attribute). ``paths``: written
    only when the config asks for paths (``save_paths: true``), compressed for speed.
    """

    name: str
    dims: tuple[str, ...]
    dtype: str
    fill: Any
    long_name: str
    units: str | None = None
    flags: Any = None
    paths: bool = False
    comment: str = ""
    flag_text: Mapping | None = None

    @property
    def itemsize(self) -> int:
        return np.dtype(self.dtype).itemsize


#: the per-point summary every equilibrium model writes (docs/models.md, "The cube")
EQUILIBRIUM_OUTPUTS: tuple[Output, ...] = (
    Output("exists", ("equilibrium",), "bool", False, "equilibrium exists"),
    Output("stable", ("equilibrium",), "bool", False, "equilibrium is stable"),
    Output("wage", ("equilibrium",), "float64", np.nan, "South's wage in the equilibrium", "1",
           comment="in units of North's wage"),
    Output("wage_rank", ("equilibrium",), "int8", -1,
           "welfare rank of the equilibrium (1 = highest wage; 0 = does not exist)",
           comment="-1: not computed"),
    Output("n_equilibria", (), "int8", -1, "number of equilibria (continua not counted)"),
    Output("n_stable", (), "int8", -1, "number of stable equilibria"),
    Output("regime", (), "int32", -1, "set of stable equilibria (bitmask over equilibrium)"),
    Output("best", (), "int8", -1, "highest-wage equilibrium", flags="labels"),
    Output("worst", (), "int8", -1, "lowest-wage equilibrium", flags="labels"),
    Output("knife_edge", (), "bool", False, "a defining condition holds with equality"),
    Output("claims", ("claim",), "int8", -1, "claim of the paper where its assumptions hold",
           flags="claims"),
)  # fmt: skip


@dataclass(frozen=True)
class Claim:
    label: str
    text: str


# ------------------------------------------------------------------------- margins


@dataclass
class Margins:
    """The defining conditions ``lhs OP rhs`` of a model's equilibria at some points.

    Built by a model's ``economy`` with :meth:`add`, one condition at a time; each
    condition belongs to one equilibrium (``eq``), or to none (a reference line drawn
    on phase diagrams only, e.g. the Mill test's ``c = 1``). ``boundary``: draw it on
    phase diagrams (False for a condition that repeats another's curve);
    ``draw_where``: only where this mask holds. ``name`` is plain text, ``label``
    mathtext. An equilibrium exists where all its conditions hold.
    """

    ops: Ops
    eq: list[str | None] = field(default_factory=list)
    op: list[str] = field(default_factory=list)
    lhs: list[Any] = field(default_factory=list)
    rhs: list[Any] = field(default_factory=list)
    name: list[str] = field(default_factory=list)
    label: list[str] = field(default_factory=list)
    boundary: list[bool] = field(default_factory=list)
    draw_where: list[Any] = field(default_factory=list)

    def add(self, eq, lhs, op, rhs, name="", label="", boundary=True, draw_where=None):
        if op not in ("<=", "<", ">=", ">"):
            raise ValueError(f"unknown comparison {op!r}")
        self.eq.append(eq)
        self.op.append(op)
        self.lhs.append(lhs)
        self.rhs.append(rhs)
        self.name.append(name)
        self.label.append(label)
        self.boundary.append(boundary)
        self.draw_where.append(draw_where)
        return self

    def __len__(self) -> int:
        return len(self.eq)


def classify(m: Margins, labels: Sequence[str], capable: Sequence[bool]):
    """Existence, stability and the knife-edge flag from a model's margins.

    With ``near_i = |lhs_i / rhs_i - 1| <= 1e-12`` (:meth:`Ops.near`), a weak
    condition holds where ``lhs OP rhs`` or ``near_i``; a strict one where
    ``lhs OP rhs`` and not ``near_i``. ``exists[e]``: every condition of ``e`` holds;
    ``stable[e]``: ``e`` can be stable (``capable``) and every condition of ``e``
    holds strictly; ``knife``: some condition of some equilibrium is near.
    Works on one point (kernels, vmapped) or on arrays of points (last axis: the
    conditions). Returns ``(exists, stable, knife)`` with the equilibrium axis last.
    """
    ops, xp = m.ops, m.ops.xp
    idx = [i for i, e in enumerate(m.eq) if e is not None]
    shape = np.broadcast_shapes(*(np.shape(v) for i in idx for v in (m.lhs[i], m.rhs[i])))
    f64 = xp.float64
    lhs = xp.stack([xp.broadcast_to(xp.asarray(m.lhs[i], f64), shape) for i in idx], axis=-1)
    rhs = xp.stack([xp.broadcast_to(xp.asarray(m.rhs[i], f64), shape) for i in idx], axis=-1)
    near = ops.near(lhs, rhs)
    ops_ = [m.op[i] for i in idx]
    le = np.array([o in ("<=", "<") for o in ops_])  # lhs below rhs
    strict_exist = np.array([o in ("<", ">") for o in ops_])
    below = xp.where(le, lhs <= rhs, lhs >= rhs)
    strictly = xp.where(le, lhs < rhs, lhs > rhs) & ~near
    holds = xp.where(strict_exist, strictly, below | near)
    owner = np.array([[m.eq[i] == lab for i in idx] for lab in labels])  # [E, n]
    exists = xp.all(xp.where(owner, holds[..., None, :], True), axis=-1)
    stable = xp.all(xp.where(owner, strictly[..., None, :], True), axis=-1)
    stable = stable & np.asarray(capable, bool)
    knife = xp.any(near, axis=-1)
    return exists, stable, knife


def summarise(ops: Ops, exists, stable, wage) -> dict:
    """Per-point summary of a vector of candidate equilibria (docs/models.md, "The cube").

    ``exists, stable``: bool[E]; ``wage``: float[E] (finite even where absent). Returns
    ``wage`` (NaN where absent), ``wage_rank`` (1 = highest among existing, ties share
    the smaller rank, 0 where absent), ``n_equilibria``, ``n_stable``, ``regime``
    (bit ``i`` set when label ``i`` is stable), ``best``/``worst`` (label index of the
    highest/lowest wage; the first label on ties; -1 when nothing exists).
    """
    xp = ops.xp
    wage = xp.where(exists, wage, xp.nan)
    higher = exists[None, :] & (wage[None, :] > wage[:, None])  # [i, j]: j beats i
    rank = xp.where(exists, 1 + xp.sum(higher, axis=1), 0).astype(xp.int8)
    n_eq = xp.sum(exists).astype(xp.int8)
    n_st = xp.sum(stable).astype(xp.int8)
    bits = xp.left_shift(xp.int32(1), xp.arange(exists.shape[0], dtype=xp.int32))
    regime = xp.sum(xp.where(stable, bits, 0)).astype(xp.int32)
    any_eq = n_eq > 0
    best = xp.where(any_eq, xp.argmax(xp.where(exists, wage, -xp.inf)), -1)
    worst = xp.where(any_eq, xp.argmin(xp.where(exists, wage, xp.inf)), -1)
    return {
        "exists": exists,
        "stable": stable,
        "wage": wage,
        "wage_rank": rank,
        "n_equilibria": n_eq,
        "n_stable": n_st,
        "regime": regime,
        "best": best.astype(xp.int8),
        "worst": worst.astype(xp.int8),
    }


def claim_code(ops: Ops, holds, applicable):
    """int8 claim outcome: 1 held, 0 failed, ``CLAIM_NA`` where not applicable."""
    xp = ops.xp
    return xp.where(applicable, holds.astype(xp.int8), xp.int8(CLAIM_NA)).astype(xp.int8)


def regime_name(code: int, labels: Sequence[str]) -> str:
    """Human name of a regime bitmask, e.g. ``"B1+C1+C2"`` (sorted), ``"none"`` if empty."""
    names = sorted(lab for i, lab in enumerate(labels) if code >> i & 1)
    return "+".join(names) if names else "none"


def evaluate(model: Model, ops: Ops, labels: Sequence[str], inputs: Mapping[str, Any]) -> dict:
    """The point kernel of an equilibrium model: its ``economy``, classified
    (:func:`classify`), summarised (:func:`summarise`), with its claims and any
    extra per-point outputs. ``ops``: :func:`jax_ops` in a kernel (vmapped over a
    batch by :mod:`pipeline.kernels`), :data:`NUMPY` for a check by hand."""
    e = model.economy(ops, **inputs)
    capable = [model.stable_capable(lab) for lab in labels]
    exists, stable, knife = classify(e["margins"], labels, capable)
    out = summarise(ops, exists, stable, e["wage"])
    out["knife_edge"] = knife
    out["claims"] = model.claims(ops, inputs, out, e.get("aux", {}))
    out.update(e.get("extra", {}))
    return out


def point_kernel(model: Model, J: int, **inputs) -> dict:
    """The kernel of an equilibrium model at ONE point, by JAX (as a sweep computes it,
    but not jitted): for checks by hand and tests."""
    ops = jax_ops()
    xp = ops.xp
    inp = {k: xp.asarray(v, xp.float64) for k, v in inputs.items()}
    return evaluate(model, ops, model.labels(J), inp)


# -------------------------------------------------------------------------- kernels


@dataclass(frozen=True)
class Kernel:
    """How a model is computed. Pure functions of arrays; jit/vmap happen in
    :mod:`pipeline.kernels` only.

    ``point(ops, **inputs) -> dict`` evaluates ONE point (vmapped over a batch);
    ``batch(inputs, **static) -> dict`` evaluates a whole batch (``[N, ...]`` arrays)
    and runs after ``point`` (its outputs are merged). ``static(spec)``: hashable
    compile-time options. ``slice``: a block is computed in slices of at most this
    many points (None: whole blocks). ``threads``: blocks run side by side on threads
    in one process (a kernel that uses one core per call). ``post(out, **static)``:
    numpy post-processing of a batch's outputs.
    """

    point: Callable | None = None
    batch: Callable | None = None
    static: Callable[[Any], dict] = lambda spec: {}
    slice: int | None = 1 << 16
    threads: bool = False
    post: Callable | None = None


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Model:
    """Everything the pipeline knows about a model (see the module docstring).

    ``economy(ops, **inputs)`` returns a dict with ``margins`` (:class:`Margins`),
    ``wage`` (candidate wages in label order) and any extra per-point outputs;
    ``claims(ops, inputs, out)`` the int8 claim codes from the classified ``out``.
    ``inputs(p, J)`` maps config values (numpy arrays, canonical names) to kernel
    inputs; ``requires(given, J)`` and ``check(values, J)`` return ``(field,
    message)`` problems of a config. ``sectors``: a fixed number of goods, or None
    (2..MAX_SECTORS, given as ``sectors:``). ``figures``: the standard figures of a
    cube of this model; ``plots``: model-specific figure kinds (``kind -> fn(ds, at,
    ax)``). ``expressions``: derived names for the query language (``c: r_2 / r_1``).
    ``rate``/``compile_s``: points per second per worker after compiling and the
    compile time, for ``marshall plan``.
    """

    name: str
    title: str
    source: str
    anchor: str
    params: tuple[Param, ...]
    labels: Callable[[int], list[str]]
    claims_list: tuple[Claim, ...]
    inputs: Callable[[dict, int], dict]
    requires: Callable[[set, int], list]
    economy: Callable | None = None
    claims: Callable | None = None
    stable_capable: Callable[[str], bool] = lambda lab: lab[:1] in "BC"
    outputs: tuple[Output, ...] = EQUILIBRIUM_OUTPUTS
    extra_dims: Callable[[Any], dict] = lambda spec: {}
    kernel: Kernel = field(default_factory=Kernel)
    sectors: int | None = None
    check: Callable | None = None
    figures: tuple[str, ...] = ("phase", "welfare", "income-gap")
    plots: Mapping[str, Callable] = field(default_factory=dict)
    income_gap: str = "B1"
    expressions: Mapping[str, str] = field(default_factory=dict)
    rate: float = 2e6
    compile_s: float = 1.0
    #: what a config gives, for messages: text where ``{r_j}`` lists ``r_1, ..., r_J``
    expects: str = ""
    #: what a reader of the claims should know (e.g. where they are expected to fail)
    claims_note: str = ""

    def __post_init__(self):
        # every model's documented ranges are checked, whatever its own check does
        own = getattr(self.check, "own", self.check)

        def check(values, given, J, _own=own, _params=self.params):
            out = range_problems(_params, values, given, J)
            return out + (list(_own(values, given, J)) if _own is not None else [])

        check.own = own
        object.__setattr__(self, "check", check)

    # ---- derived
    @property
    def doc(self) -> str:
        return f"{DOCS}#{self.anchor}"

    @property
    def has_paths(self) -> bool:
        return any(o.paths for o in self.outputs)

    def param(self, name: str, J: int) -> tuple[Param, str, int | None] | None:
        """``(Param, canonical name, sector)`` of a config name, or None."""
        for p in self.params:
            hit = p.match(name, J)
            if hit is not None and (hit[1] is None or 1 <= hit[1] <= J):
                return p, hit[0], hit[1]
        return None

    def param_any_sector(self, name: str) -> tuple[Param, int | None] | None:
        """A config name's Param whatever its sector number (for hints)."""
        for p in self.params:
            hit = p.match(name, 10**9)
            if hit is not None:
                return p, hit[1]
        return None

    def outputs_for(self, save_paths: bool) -> tuple[Output, ...]:
        return tuple(o for o in self.outputs if save_paths or not o.paths)

    def claim_labels(self) -> list[str]:
        return [c.label for c in self.claims_list]

    def claim_text(self) -> dict[str, str]:
        return {c.label: c.text for c in self.claims_list}

    def expected(self, J: int) -> str:
        """The parameters a config gives, e.g. ``r_1, r_2 and theta_1, theta_2``."""
        if self.expects:
            return re.sub(
                r"\{(\w+?)_j(\w*)\}",
                lambda m: ", ".join(f"{m.group(1)}_{j}{m.group(2)}" for j in range(1, J + 1)),
                self.expects,
            )
        names = [n for p in self.params if p.default is None for n in p.names(J)]
        return ", ".join(names)


# -------------------------------------------------------------- shared requirements


def need_relative_productivity(given: set[str], J: int) -> list[tuple[str, str]]:
    """``r_j`` or both ``lam_jS`` and ``lam_jN``, for every sector (not both)."""
    out = []
    for j in range(1, J + 1):
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
    return out


def range_problems(params, values, given: set[str], J: int) -> list[tuple[str, str]]:
    """Values outside a parameter's documented range (:attr:`Param.floor`) and relative
    productivities ``r_j = lam_jS / lam_jN`` outside :data:`MAGNITUDE`, for the config
    check (``values(names)``: the grid's corners; an axis's values rise, so its
    extremes are its ends). Run as part of every model's ``check``
    (:class:`Model`); the bounds ``lo``/``hi`` themselves are checked before."""
    out = []
    by_name = {}
    for name in sorted(given):
        for p in params:
            hit = p.match(name, J)
            if hit is not None:
                by_name[name] = (p, hit[1])
                break
    for name, (p, j) in by_name.items():
        if p.floor is None:
            continue
        v = np.asarray(values([name])[name], dtype=np.float64)
        at_lo = (v == p.lo) if (p.lo is not None and not p.lo_open) else np.zeros(v.shape, bool)
        bad = (v < p.floor) & ~at_lo
        if np.any(bad):
            meaning = p.meaning.replace("{j}", str(j)) if j else p.meaning
            zero = f"{num(p.lo)} or " if p.lo is not None and not p.lo_open else ""
            out.append((f"params.{name}", f"{meaning} must be {zero}>= {num(p.floor)} (its "
                        f"documented range is {p.bounds_text()}, where the kernels are "
                        f"accurate); got {num(v[bad][0])}"))  # fmt: skip
    if any(p.name == "lam_{j}S" for p in params):
        lo, hi = MAGNITUDE
        for j in range(1, J + 1):
            S, N = f"lam_{j}S", f"lam_{j}N"
            if S in given and N in given:
                v = values([S, N])
                r = v[S] / v[N]
                if np.any((r < lo) | (r > hi)):
                    out.append((f"params.{S}", f"r_{j} = lam_{j}S / lam_{j}N must be in "
                                f"[{lo:g}, {hi:g}] (the documented range of relative "
                                f"productivities); it is {num(r.min())} to "
                                f"{num(r.max())} over the grid"))  # fmt: skip
    return out


def need(name: str, alternatives: str) -> tuple[str, str]:
    return (f"params.{name}", f"missing: {alternatives}")


def relative_productivity(p: Mapping[str, np.ndarray], J: int) -> np.ndarray:
    """``r`` float64[N, J] from ``r_j`` or ``lam_jS / lam_jN``."""

    def r(j):
        return p[f"r_{j}"] if f"r_{j}" in p else p[f"lam_{j}S"] / p[f"lam_{j}N"]

    return np.stack([r(j) for j in range(1, J + 1)], axis=1)


def per_sector(p: Mapping[str, np.ndarray], pattern: str, J: int, scalar: str | None = None):
    """float64[N, J] from ``pattern`` per sector (``theta_{j}``), or from the scalar
    ``scalar`` (all sectors alike) when that was given instead."""
    if scalar is not None and scalar in p:
        return np.repeat(p[scalar][:, None], J, axis=1)
    return np.stack([p[pattern.replace("{j}", str(j))] for j in range(1, J + 1)], axis=1)


#: ``r_j`` and its alternative ``lam_jS``, ``lam_jN`` (every model has them)
PRODUCTIVITY = (
    Param("r_{j}", "South's productivity relative to North's in sector {j} (lam_{j}S/lam_{j}N)",
          "r_{{j}}", lo=0.0, floor=MAGNITUDE[0], hi=MAGNITUDE[1], example=1.0),
    Param("lam_{j}S", "South's raw productivity in sector {j}", "\\lambda_{{j}S}", lo=0.0,
          floor=MAGNITUDE[0], hi=MAGNITUDE[1], example=1.0),
    Param("lam_{j}N", "North's raw productivity in sector {j}", "\\lambda_{{j}N}", lo=0.0,
          floor=MAGNITUDE[0], hi=MAGNITUDE[1], example=1.0),
)  # fmt: skip


#: the clustering externality's strength and South's labour force (the static models
#: with a cluster size, ``standard`` and ``modes``); ``dataclasses.replace`` for another
#: ``example``
ALPHA = Param("alpha", "strength of the clustering externality", "\\alpha", lo=0.0,
              floor=MAGNITUDE[0], hi=MAGNITUDE[1], example=0.5)  # fmt: skip
LABOUR_FORCE = Param("L_S", "South's labour force (inf: scale never binds)", "L_S", lo=0.0,
                     floor=MAGNITUDE[0], allow_inf=True)  # fmt: skip


def int_flag_attrs(flags: type[enum.IntFlag]) -> dict[str, Any]:
    """CF ``flag_masks``/``flag_meanings`` (and the texts) of an IntFlag of status bits."""
    members = [m for m in flags if m.value]
    return {
        "flag_masks": [int(m.value) for m in members],
        "flag_meanings": " ".join(m.name.lower() for m in members),
    }
