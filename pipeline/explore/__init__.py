r"""``marshall explore``: an interactive page for a cube, served or as one offline file.

The page, for every model (everything comes from the cube: its dims, labels, variables
and coordinate attributes, never from the model's name):

- the phase diagram: ``regime`` over any two swept dimensions (two selectors), a slider
  for every other one, the analytic boundaries of ``ds.marshall.boundaries`` over it,
  log axes for ``spacing == "log"`` coordinates, the paper's symbols (``symbol``
  attribute) on the axes, one colour per regime name (:func:`pipeline.colors.regime_color`)
  and grey "not computed" for points a partly computed cube does not have yet;
- hover: the cell's parameters, for every equilibrium exists / stable / wage / rank
  (the columns of ``ds.marshall.at(...)``), ``knife_edge``, best/worst, the claims;
- a welfare view: the best equilibrium, the best/worst wage ratio, ``pv_gain`` per
  target (dynamic cubes) and the income gap ``1/w`` of a chosen equilibrium;
- a click on a cell: its ``ds.marshall.at(...)`` call and, for dynamic cubes, the
  transition summaries (``ds.marshall.transition``) and the paths when saved;
- the current view as code: the ``marshall plot`` commands and the
  ``ds.marshall.slice2d(...)`` call that reproduce it.

Built on Bokeh alone: :mod:`.page` (models and the state -> updates functions),
:mod:`.slices` (the arrays of one slice), :mod:`.server` (the served page, one slice
read per interaction), :mod:`.offline` (the ``--html`` page: every state recorded,
:data:`~pipeline.explore.offline.MAX_CELLS`), :mod:`.cli` (``register(app)``).
"""

from .offline import MAX_CELLS as MAX_CELLS
from .offline import offline_page as offline_page
from .offline import write_html as write_html
from .page import Page as Page
from .server import serve as serve
from .slices import ExploreError as ExploreError
