"""``marshall new MODEL``: a commented starter config, written from the model's declaration."""

from __future__ import annotations

import json

from .models._spec import Model

_CONFLICT = ("not both", "over-determined", "needs")


def _conflicts(m: Model, given: list[str], J: int) -> int:
    return sum(any(w in msg for w in _CONFLICT) for _, msg in m.requires(set(given), J))


def _choose(m: Model, J: int) -> list[str]:
    """Config names covering the model's requirements, one of each set of alternatives
    (the first declared: ``r_j`` before ``lam_jS``, ``theta`` before ``alpha``...)."""
    given: list[str] = []
    for p in m.params:
        if p.default is not None:
            continue
        for name in p.names(J):
            trial = given + [name]
            if _conflicts(m, trial, J) <= _conflicts(m, given, J):
                given = trial
    missing = [f for f, _ in m.requires(set(given), J)]
    return [n for n in given if f"params.{n}" not in missing]


def _minimal(m: Model, names: list[str], J: int) -> tuple[list[str], list[str]]:
    """``(kept, left out)``: the names without which the config is still complete,
    dropped from the last back. What a model leaves optional defaults to the papers'
    case (``L_S`` left out: South's scale never binds, ``theta_S = theta``), so a
    starter that gives it a value would sweep another case without a word (with
    ``L_S = 1`` and ``alpha = 0.5`` South is scale-limited wherever ``theta > 1.5``)."""
    kept = list(names)
    for n in reversed(names):
        trial = [k for k in kept if k != n]
        if not m.requires(set(trial), J):
            kept = trial
    return kept, [n for n in names if n not in kept]


def _value(m: Model, name: str, J: int) -> float:
    p, _, _ = m.param(name, J)
    if p.example is not None:
        return p.example
    if p.lo is not None and p.hi is not None:
        return (p.lo + p.hi) / 2
    return (p.lo or 0.0) + 1.0


#: values per swept axis: even, so that an axis centred (in log) on the fixed value of
#: a like parameter (``r_1`` around ``r_2 = 1``) does not hold that value, where two
#: sectors tie (a knife edge, flagged on a whole grid line)
AXIS_POINTS = 100


def starter_config(m: Model, model_name: str, sectors: int = 2) -> str:
    """YAML text of a small, valid sweep of ``m``: two axes, the rest fixed, every line
    commented with the parameter's meaning and allowed range, and a header that says
    what is swept and what is left out. Only what the model needs is given: anything
    optional is left at its default, the papers' case (listed, commented out)."""
    J = m.sectors or sectors
    names, left_out = _minimal(m, _choose(m, J), J)
    sweep, seen = [], set()
    for n in names:  # the first name of each of the first two sweepable parameters
        p = m.param(n, J)[0]
        if p.sweep and not p.setting and p.name not in seen and len(sweep) < 2:
            sweep.append(n)
            seen.add(p.name)
    values, axes = {}, []
    for n in names:
        p = m.param(n, J)[0]
        v = _value(m, n, J)
        if n in sweep:
            i = sweep.index(n)
            if i == 0:
                a, b = v / 4, v * 4
            else:
                a, b = (p.lo + 0.05 if p.lo is not None else v / 2), v * 2
            kind = "logspace" if i == 0 and a > 0 else "linspace"
            values[n] = f"{{{kind}: [{a:g}, {b:g}, {AXIS_POINTS}]}}"
            axes.append(f"{n} from {a:g} to {b:g} ({kind[:3]} axis, {AXIS_POINTS} values)")
        else:
            values[n] = json.dumps(v)
    fixed = ", ".join(f"{n} = {values[n]}" for n in names if n not in sweep)
    lines = [
        f"# {m.name}: {m.title} ({m.source}); see {m.doc}",
        f"# Sweeps {' against '.join(axes)}: {AXIS_POINTS ** len(axes):,} points;",
        f"# fixed: {fixed}.",
    ]
    if left_out:
        lines.append(
            f"# Left out (optional; without them, the papers' case): {', '.join(left_out)}."
        )
    lines += [
        "# `marshall models` lists every parameter; `marshall plan` checks this file.",
        f"model: {model_name}",
    ]
    if m.sectors is None:
        lines.append(f"sectors: {J}                 # J, number of goods (2..10)")
    lines.append("params:")
    for n in names:
        p, _, j = m.param(n, J)
        meaning = p.meaning.replace("{j}", str(j)) if j else p.meaning
        lines.append(f"  {n}: {values[n]}    # {meaning}, in {p.bounds_text()}")
    for n in left_out:
        p, _, j = m.param(n, J)
        meaning = p.meaning.replace("{j}", str(j)) if j else p.meaning
        lines.append(f"  # {n}: {json.dumps(_value(m, n, J))}    # optional: {meaning}, "
                     f"in {p.bounds_text()}")  # fmt: skip
    for p in m.params:
        if p.default is not None:
            lines.append(f"  # {p.name}: {p.default:g}    # {p.meaning} (default {p.default:g})")
    if m.has_paths:
        lines.append("save_paths: false              # true: also store the transition paths")
    lines.append(f"output: results/cubes/{m.name}_sweep.zarr")
    return "\n".join(lines) + "\n"
