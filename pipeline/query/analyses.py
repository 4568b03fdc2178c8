"""Analyses over a cube's points: sensitivity indices and scenario discovery.

Both read a table ``X`` of the parameters that vary (a design's sampled parameters, in
the design's row order; on a grid cube, every swept dimension longer than one, points
in C order) and an output per point from the query language:

- :func:`sensitivity` -- SALib's Sobol' (on a Saltelli design), delta or PAWN indices
  of an output expression, optionally restricted to the points where a condition holds
  (a regime: ``given="regime == 'B1+C1+C2'"``), which SALib cannot do by itself;
- :func:`discover` -- PRIM's boxes of parameter space where a condition holds, with
  coverage and density along the peeling trajectory.

The statistics are :mod:`pipeline.analysis` (SALib, PRIM); this module only turns a
cube into their inputs. Points not computed yet are left out, and a Sobol' analysis
needs them all.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xarray as xr

from . import meta
from .errors import QueryError
from .expr import value, where


def design_kind(ds: xr.Dataset) -> str:
    """``saltelli``, ``sobol``, ``lhs``, ``random``, or ``grid`` for a grid cube."""
    if "design" not in ds.attrs:
        return "grid"
    d = json.loads(ds.attrs["design"])
    return next(k for k in d if k not in ("seed", "second_order"))


def parameter_table(ds: xr.Dataset) -> pd.DataFrame:
    """The parameters that vary, one row per point (C order over the point dims)."""
    swept = meta.params(ds)
    samp = meta.sampled(ds)
    if samp:
        return pd.DataFrame(
            {d: np.asarray(ds[d].transpose(*swept).values).reshape(-1) for d in samp}
        )
    varying = [d for d in swept if ds.sizes[d] > 1]
    if not varying:
        raise QueryError("no parameter varies in this cube: nothing to analyse")
    grids = np.meshgrid(*[np.asarray(ds[d].values, float) for d in swept], indexing="ij")
    return pd.DataFrame({d: g.reshape(-1) for d, g in zip(swept, grids) if d in varying})


def sensitivity(
    ds: xr.Dataset,
    output: str,
    given: str | None = None,
    method: str = "sobol",
    seed: int = 0,
    num_resamples: int = 100,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Sensitivity indices of ``output`` (an expression, e.g. ``"exists['C2']"`` or
    ``"wage.sel(equilibrium='C1')"``) to the parameters that vary.

    ``method="sobol"``: first-order and total indices (``S1``, ``S1_conf``, ``ST``,
    ``ST_conf``) on a Saltelli design (``design: {saltelli: N, seed: S}``) with every
    point computed; refused on other designs or with ``given``. ``"delta"`` (``delta``,
    ``delta_conf``, ``S1``, ``S1_conf``) and ``"pawn"`` (the median statistic and its
    interval) work on any design, also restricted to the points where ``given`` holds
    (e.g. ``"theta_1 > 2"``). Bootstrap confidence intervals at ``conf_level``.
    Returns a DataFrame indexed by parameter name. With ``given``, its
    ``attrs["warnings"]`` says where the inputs are dependent in the subset (a regime,
    e.g. ``"regime == 'B1+C1+C2'"``, makes them so; a box does not) and
    ``attrs["dependence"]`` holds every pair's Spearman correlation
    (:func:`pipeline.analysis.input_dependence`).
    """
    from ..analysis import AnalysisError
    from ..analysis import sensitivity as _sensitivity

    kind = design_kind(ds)
    X = parameter_table(ds)
    y = value(ds, output)
    done = np.asarray(meta.done(ds).transpose(*meta.params(ds)).values).reshape(-1)
    yv = np.asarray(y.values).reshape(-1)
    mask = done.copy()
    if given is not None:
        mask &= np.asarray(where(ds, given).values).reshape(-1)
    if method == "sobol" and not done.all():
        raise QueryError(
            f"a Sobol' analysis needs every point of the design; {int((~done).sum()):,} of "
            f"{done.size:,} are not computed yet: finish the run first"
        )
    try:
        df = _sensitivity(
            X, yv, method=method, design=kind,
            given=mask if (given is not None or not done.all()) else None,
            seed=seed, num_resamples=num_resamples, conf_level=conf_level,
        )  # fmt: skip
    except AnalysisError as exc:
        raise QueryError(str(exc)) from None
    df.attrs |= {"output": output, "given": given}
    return df


def discover(ds: xr.Dataset, where_expr: str, threshold: float = 0.8, **kw):
    """PRIM scenario discovery: boxes of parameter space where ``where_expr`` holds
    (:func:`pipeline.analysis.discover`): ``.trajectory`` (coverage, density, mass and
    box limits per peeling step), ``.chosen``, ``.box``."""
    from ..analysis import AnalysisError
    from ..analysis import discover as _discover

    X = parameter_table(ds)
    done = np.asarray(meta.done(ds).transpose(*meta.params(ds)).values).reshape(-1)
    y = np.asarray(where(ds, where_expr).values).reshape(-1)
    try:
        res = _discover(X[done].reset_index(drop=True), y[done], threshold=threshold, **kw)
    except AnalysisError as exc:
        raise QueryError(str(exc)) from None
    except ImportError:
        raise QueryError(
            "scenario discovery needs the PRIM package: pip install 'marshall[discover]'"
        ) from None
    return res
