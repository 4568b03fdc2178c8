"""marshall: parameter sweeps of clusters, coordination failures and comparative advantage.

Quick use::

    from pipeline import load_config, run, open_cube
    spec = load_config("configs/coordination_j2.yaml")
    run(spec)
    ds = open_cube(spec.output)

Importing the package does not import JAX (reading and querying cubes never needs
it); running a sweep does, and turns float64 on first (:mod:`pipeline._jax`).
"""

from . import query as query  # registers the ``ds.marshall`` accessor
from .config import ConfigError as ConfigError
from .config import SweepSpec as SweepSpec
from .config import load_config as load_config
from .config import parse_config as parse_config
from .models import get as get_model
from .models._spec import Model as Model
from .query import QueryError as QueryError
from .run import estimate as estimate
from .run import run as run
from .store import StoreError as StoreError
from .store import open_cube as open_cube

__version__ = "0.2.0"
__all__ = [
    "ConfigError", "Model", "QueryError", "StoreError", "SweepSpec", "estimate", "get_model",
    "load_config", "open_cube", "parse_config", "query", "run",
]  # fmt: skip
