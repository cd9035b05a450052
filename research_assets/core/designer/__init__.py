"""Designers propose the next strategy spec from the research memory.

``OfflineDesigner`` is rule-based and needs no network; a Claude designer
(``research_assets.llm.designer``) sits behind the same ``Designer`` protocol. A designer sees only
the research memory (no lockbox figures exist there) and the list of available datasets.

One concept per module:

- ``interface``: what a designer is asked (``DesignRequest``), what it answers (``Design``), the
  ``Designer`` protocol and the datasets it may choose from.
- ``market``: what a symbol's name tells (its asset class, bar lengths) and what trading it costs.
- ``volatility``: the per-bar volatility a design is scaled by, measured on a dataset's bars
  before the lockbox, or guessed from the symbols' names.
- ``brief``: the keywords of a researcher's brief.
- ``blocks``, ``explore``, ``mutate``: the offline designer's spec builders: the building blocks
  (indicators, fuzzy sets, the choices on offer), a fresh design, a variation of a past one.
- ``offline``: the offline designer itself (how it works: that module's docstring).

The names below are the package's public ones; names with a leading underscore are shared
between its modules only.
"""

from research_assets.core.designer.blocks import (
    DROPOUTS,
    EPOCHS,
    HIDDEN_LAYERS,
    LEARNING_RATES,
    MAX_SYMBOLS,
)
from research_assets.core.designer.interface import (
    Design,
    Designer,
    DesignRequest,
    available_datasets,
)
from research_assets.core.designer.market import asset_class, market_costs
from research_assets.core.designer.offline import MAX_ATTEMPTS, OfflineDesigner
from research_assets.core.designer.volatility import (
    MIN_SIGMA_RETURNS,
    bar_sigma,
    dataset_sigma,
    macd_line_scale,
)

__all__ = [
    "DROPOUTS",
    "EPOCHS",
    "HIDDEN_LAYERS",
    "LEARNING_RATES",
    "MAX_ATTEMPTS",
    "MAX_SYMBOLS",
    "MIN_SIGMA_RETURNS",
    "Design",
    "DesignRequest",
    "Designer",
    "OfflineDesigner",
    "asset_class",
    "available_datasets",
    "bar_sigma",
    "dataset_sigma",
    "macd_line_scale",
    "market_costs",
]
