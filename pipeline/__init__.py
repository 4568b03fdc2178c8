"""marshall: parameter sweeps of clusters, coordination failures and comparative advantage.

Quick use::

    from pipeline import load_config, run, open_cube
    spec = load_config("configs/coordination_j2.yaml")
    run(spec)
    ds = open_cube(spec.output)
"""

from . import _jax as _jax  # float64 on in every process that imports the package
from . import query as query  # registers the ``ds.marshall`` accessor
from .config import ConfigError as ConfigError
from .config import SweepSpec as SweepSpec
from .config import load_config as load_config
from .config import parse_config as parse_config
from .run import estimate as estimate
from .run import run as run
from .store import StoreError as StoreError
from .store import open_cube as open_cube

__version__ = "0.1.0"
