"""The ``ds.marshall`` accessor: a thin front over :mod:`pipeline.query`'s functions
(each method forwards to the function of the same name, with the cube first)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import xarray as xr

from . import analyses as _a
from . import boundaries as _b
from . import expr as _e
from . import meta as _m
from . import tables as _t


@xr.register_dataset_accessor("marshall")
class MarshallAccessor:
    """Queries over a marshall cube (``ds.marshall``); see :mod:`pipeline.query`."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    # structure
    model = property(lambda self: _m.model_name(self._ds), doc="the model's name")
    J = property(lambda self: _m.J(self._ds), doc="number of sectors")
    params = property(lambda self: _m.params(self._ds), doc="swept parameters")
    fixed = property(lambda self: _m.fixed(self._ds), doc="fixed parameters")
    labels = property(lambda self: _m.labels(self._ds), doc="equilibrium labels")
    done = property(lambda self: _m.done(self._ds), doc="computed points")

    def decl(self):
        """The model's declaration (None if its module cannot be imported here)."""
        return _m.decl(self._ds)

    def summary(self) -> dict:
        return _t.summary(self._ds)

    # regimes
    def regime_names(self) -> dict[int, str]:
        return _m.regime_names(self._ds)

    def regime_code(self, name: str) -> int:
        return _m.regime_code(self._ds, name)

    def regime(self) -> xr.DataArray:
        return _t.regime(self._ds)

    def regime_share(self, by: str | Sequence[str] | None = None, where=None, of="area"):
        return _t.regime_share(self._ds, by=by, where=where, of=of)

    def multiple(self) -> xr.DataArray:
        return _t.multiple(self._ds)

    # points
    def indexers(self, params, require_all=False, free=(), method=None) -> dict[str, int]:
        return _m.indexers(self._ds, params, require_all=require_all, free=free, method=method)

    def point(self, method: str | None = None, **params: float) -> xr.Dataset:
        return _t.point(self._ds, method=method, **params)

    def coords_of(self, sub: xr.Dataset) -> dict[str, Any]:
        return _m.coords_of(self._ds, sub)

    def at(self, method: str | None = None, **params: float) -> pd.DataFrame:
        return _t.at(self._ds, method=method, **params)

    def transition(self, method: str | None = None, **params: float) -> pd.DataFrame:
        return _t.transition(self._ds, method=method, **params)

    def status_text(self, code: int) -> str:
        return _t.status_text(self._ds, code)

    # masks
    def where(self, expr: str) -> xr.DataArray:
        return _e.where(self._ds, expr)

    def count(self, m) -> int:
        return _t.count(self._ds, m)

    def points(self, m, limit: int | None = None) -> pd.DataFrame:
        return _t.points(self._ds, m, limit=limit)

    # claims
    def claims(self, examples: int = 3) -> pd.DataFrame:
        return _t.claims(self._ds, examples=examples)

    def claims_ok(self) -> bool:
        return _t.claims_ok(self._ds)

    # analyses
    def sensitivity(self, output: str, given: str | None = None, method: str = "sobol", **kw):
        """Sensitivity indices of an output expression (SALib; see
        :func:`pipeline.query.analyses.sensitivity`): a DataFrame indexed by parameter."""
        return _a.sensitivity(self._ds, output, given=given, method=method, **kw)

    def discover(self, where: str, threshold: float = 0.8, **kw):
        """PRIM boxes where ``where`` holds (:func:`pipeline.query.analyses.discover`)."""
        return _a.discover(self._ds, where, threshold=threshold, **kw)

    def value(self, expr: str) -> xr.DataArray:
        """An expression's values at every point (numbers or booleans)."""
        return _e.value(self._ds, expr)

    # slices
    def slice2d(self, x: str, y: str, at: Mapping[str, Any] | None = None, method=None):
        return _m.slice2d(self._ds, x, y, at, method=method)

    def boundaries(self, x: str, y: str, at: Mapping[str, Any] | None = None, n: int = 401):
        return _b.boundaries(self._ds, x, y, at=at, n=n)

    def bisected(self, x: str, y: str, at: Mapping[str, Any] | None = None, var="regime",
                 rtol: float = 1e-12):  # fmt: skip
        """A refined cube's boundaries of ``var``, bisected to ``rtol`` (see
        :func:`pipeline.query.boundaries.bisected`)."""
        return _b.bisected(self._ds, x, y, at=at, var=var, rtol=rtol)

    @property
    def refined(self) -> bool:
        """The dense view of a refined sweep (``level``, ``computed``)."""
        return _m.is_refined(self._ds)
