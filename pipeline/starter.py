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


def _value(m: Model, name: str, J: int) -> float:
    p, _, _ = m.param(name, J)
    if p.example is not None:
        return p.example
    if p.lo is not None and p.hi is not None:
        return (p.lo + p.hi) / 2
    return (p.lo or 0.0) + 1.0


def starter_config(m: Model, model_name: str, sectors: int = 2) -> str:
    """YAML text of a small, valid sweep of ``m``: two axes, the rest fixed, every line
    commented with the parameter's meaning and allowed range."""
    J = m.sectors or sectors
    names = _choose(m, J)
    sweep, seen = [], set()
    for n in names:  # the first name of each of the first two sweepable parameters
        p = m.param(n, J)[0]
        if p.sweep and not p.setting and p.name not in seen and len(sweep) < 2:
            sweep.append(n)
            seen.add(p.name)
    lines = [
        f"# {m.name}: {m.title} ({m.source}); see {m.doc}",
        "# `marshall models` lists every parameter; `marshall plan` checks this file.",
        f"model: {model_name}",
    ]
    if m.sectors is None:
        lines.append(f"sectors: {J}                 # J, number of goods (2..10)")
    lines.append("params:")
    for n in names:
        p, _, j = m.param(n, J)
        v = _value(m, n, J)
        if n in sweep:
            i = sweep.index(n)
            if i == 0:
                a, b = v / 4, v * 4
            else:
                a, b = (p.lo + 0.05 if p.lo is not None else v / 2), v * 2
            kind = "logspace" if i == 0 and a > 0 else "linspace"
            val = f"{{{kind}: [{a:g}, {b:g}, 101]}}"
        else:
            val = json.dumps(v)
        meaning = p.meaning.replace("{j}", str(j)) if j else p.meaning
        lines.append(f"  {n}: {val}    # {meaning}, in {p.bounds_text()}")
    for p in m.params:
        if p.default is not None:
            lines.append(f"  # {p.name}: {p.default:g}    # {p.meaning} (default {p.default:g})")
    if m.has_paths:
        lines.append("save_paths: false              # true: also store the transition paths")
    lines.append(f"output: results/cubes/{m.name}_sweep.zarr")
    return "\n".join(lines) + "\n"
