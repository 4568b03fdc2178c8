"""The cube on disk: schema from the model, writer lock, writer, reader, verification.

- :mod:`.schema` -- variables, coordinates and attributes from the model's declaration;
- :mod:`.lock` -- one writer at a time (``X.zarr.lock``);
- :mod:`.cube` -- create whole or not at all, write blocks, completion marks, finalize;
- :mod:`.read` -- :func:`open_cube`: partly written or damaged data reads as missing;
- :mod:`.integrity` -- where a chunk belongs (its checksum in its block's mark, checked on
  open); temporary files of killed writes;
- :mod:`.meta` -- the record of coordinates, attributes and arrays' metadata, checked and
  restored by ``verify``;
- :mod:`.verify` -- check every block and the metadata, recompute or restore.
"""

from .cube import STATE as STATE
from .cube import CubeWriter as CubeWriter
from .cube import check_target as check_target
from .cube import create as create
from .cube import diff_configs as diff_configs
from .cube import done_blocks as done_blocks
from .cube import finalize as finalize
from .cube import is_cube as is_cube
from .cube import marker as marker
from .cube import read_marker as read_marker
from .cube import state as state
from .errors import LockError as LockError
from .errors import StoreError as StoreError
from .lock import lock_path as lock_path
from .lock import writer_lock as writer_lock
from .read import DamagedCubeWarning as DamagedCubeWarning
from .read import open_cube as open_cube
from .schema import encoding as encoding
from .schema import schema as schema
from .schema import template as template
