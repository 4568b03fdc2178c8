r"""Query a cube: the ``ds.marshall`` accessor (regimes, shares, points, claims, boundaries).

Importing this package registers the accessor on every :class:`xarray.Dataset`::

    import pipeline.query  # noqa: F401  (registers ds.marshall)
    ds = pipeline.open_cube("results/cubes/coordination_j2.zarr")
    ds.marshall.regime_share()                       # share of the area per regime (of="points")
    ds.marshall.regime_share(by="theta_2")           # ... per value of another dimension
    ds.marshall.at(r_1=2.0, theta_1=3.0, theta_2=2)  # equilibria at the nearest grid point
    mask = ds.marshall.where("theta_1 > 2 and exists['C2']")
    ds.marshall.points(mask, limit=10)               # the coordinates of matching points
    ds.marshall.claims()                             # the paper's claims: checked/held/failed
    ds.marshall.boundaries("r_1", "theta_1", at={"theta_2": 2.0})

Modules: :mod:`.meta` (what a cube is: dims, labels, regimes, grid points),
:mod:`.expr` (the expression language of ``where``), :mod:`.tables` (summaries,
shares, points, claims), :mod:`.boundaries` (the analytic boundaries, from the model's
margins) and :mod:`.accessor` (the thin ``ds.marshall``). Nothing here computes
equilibria, and nothing imports JAX. A user's mistake raises :class:`QueryError`.
"""

from . import accessor as accessor  # registers ds.marshall
from .accessor import MarshallAccessor as MarshallAccessor
from .boundaries import Boundary as Boundary
from .errors import ExpressionError as ExpressionError
from .errors import QueryError as QueryError
from .expr import MAX_EXPR as MAX_EXPR
from .meta import nearest_index as nearest_index
