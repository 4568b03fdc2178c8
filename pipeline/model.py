"""What a model file needs, in one import: ``from pipeline.model import Model, Param, ...``.

The public names of :mod:`pipeline.models._spec` for models written outside the
package (see ``examples/custom_model.py`` and the README's "Adding a model").
"""

from .models._spec import DOCS as DOCS
from .models._spec import EQUILIBRIUM_OUTPUTS as EQUILIBRIUM_OUTPUTS
from .models._spec import KNIFE_TOL as KNIFE_TOL
from .models._spec import NUMPY as NUMPY
from .models._spec import PRODUCTIVITY as PRODUCTIVITY
from .models._spec import Claim as Claim
from .models._spec import Kernel as Kernel
from .models._spec import Margins as Margins
from .models._spec import Model as Model
from .models._spec import Ops as Ops
from .models._spec import Output as Output
from .models._spec import Param as Param
from .models._spec import claim_code as claim_code
from .models._spec import evaluate as evaluate
from .models._spec import need as need
from .models._spec import need_relative_productivity as need_relative_productivity
from .models._spec import per_sector as per_sector
from .models._spec import point_kernel as point_kernel
from .models._spec import relative_productivity as relative_productivity
