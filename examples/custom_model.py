r"""An out-of-tree model for marshall: a cluster that pays only if enough workers join it.

South's workers choose between an outside option paying ``w0`` and a cluster whose
productivity rises with the share ``n`` of workers in it: a worker there earns
``a (1 + b n)`` (``a > 0`` the cluster's own productivity, ``b > 0`` its spillover).
No worker gains by moving alone where

======  ===============================  ========================  ===========  ======
label   equilibrium                      exists iff                wage         stable
======  ===============================  ========================  ===========  ======
``O``   everyone outside (``n = 0``)     ``a <= w0``               ``w0``       yes
``K``   everyone in the cluster          ``w0 <= a (1 + b)``       ``a(1+b)``   yes
``X``   ``n* = (w0/a - 1)/b`` inside     ``a < w0 < a (1 + b)``    ``w0``       no
======  ===============================  ========================  ===========  ======

so both corners are stable equilibria (a coordination failure is possible) exactly
where ``a < w0 < a (1 + b)``. Claims checked at every point that is not knife-edge:
``M`` -- two stable equilibria iff ``a < w0 < a (1 + b)``; ``R`` -- where both corners
exist, the cluster pays at least the outside option.

The whole model is this one file: marshall finds it with ``model: custom_model:MODEL``
in a config, when this folder is on ``PYTHONPATH``.
"""

from __future__ import annotations

import numpy as np

from pipeline.model import Claim, Margins, Model, Param, claim_code, need

LABELS = ("O", "K", "X")


def economy(ops, a, b, w0, **_):
    """The defining conditions and the candidate wages (one point, or arrays)."""
    w_K = ops.barrier(a * (1.0 + b))
    m = Margins(ops)
    m.add("O", a, "<=", w0, "O: a = w0", r"$a = w_0$")
    m.add("K", w0, "<=", w_K, "K: a (1 + b) = w0", r"$a\,(1 + b) = w_0$")
    m.add("X", a, "<", w0, boundary=False)  # the O line again
    m.add("X", w0, "<", w_K, boundary=False)  # the K line again
    wage = ops.xp.stack([w0 * 1.0, w_K, w0 * 1.0], axis=-1)
    return {"margins": m, "wage": wage, "aux": {"w_K": w_K}}


def claims(ops, inp, out, aux):
    a, w0 = inp["a"], inp["w0"]
    ok = ~out["knife_edge"]
    multiple = (a < w0) & (w0 < aux["w_K"])
    both = out["exists"][0] & out["exists"][1]
    return ops.xp.stack(
        [
            claim_code(ops, (out["n_stable"] == 2) == multiple, ok),
            claim_code(ops, aux["w_K"] >= w0, ok & both),
        ]
    )


def inputs(p: dict[str, np.ndarray], J: int) -> dict[str, np.ndarray]:
    return {"a": p["a"], "b": p["b"], "w0": p["w0"]}


def requires(given: set[str], J: int) -> list[tuple[str, str]]:
    return [need(n, f"give {n} > 0") for n in ("a", "b", "w0") if n not in given]


MODEL = Model(
    name="threshold",
    title="a cluster that pays only if enough workers join it",
    source="examples/custom_model.py",
    anchor="adding-a-model",
    sectors=2,
    params=(
        Param("a", "the cluster's own productivity", "a", lo=0.0, example=1.0),
        Param("b", "spillover: productivity gain when everyone joins", "b", lo=0.0, example=1.0),
        Param("w0", "wage of the outside option", "w_0", lo=0.0, example=1.5),
    ),  # fmt: skip
    labels=lambda J=2: list(LABELS),
    claims_list=(
        Claim("M", "two stable equilibria iff a < w0 < a (1 + b)"),
        Claim("R", "where both corners exist, the cluster pays at least w0"),
    ),
    inputs=inputs,
    requires=requires,
    economy=economy,
    claims=claims,
    stable_capable=lambda lab: lab in ("O", "K"),
    income_gap="K",
    expects="a, b and w0",
)
