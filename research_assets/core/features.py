"""Fuzzy features: indicator values mapped through a spec's membership functions.

Each fuzzy set listed in ``nn_inputs`` reads one indicator column and gives one feature per
membership label, named ``"<set_id>.<label>"``, in the order of ``nn_inputs`` and then of the
set's labels. Memberships lie in [0, 1]; NaN (indicator warm-up) stays NaN.

>>> from research_assets.core.spec import Membership
>>> m = Membership(type="trapezoidal", parameters=[-1, -1, -0.005, 0])
>>> membership(np.array([-5.0, -0.5, -0.0025, 0.1, np.nan]), m).tolist()
[1.0, 1.0, 0.5, 0.0, nan]
"""

import numpy as np
import pandas as pd

from research_assets.core.errors import SpecError
from research_assets.core.spec import Membership, StrategySpec


def _trapezoid(x: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    """Rise over [a, b], 1 over [b, c], fall over [c, d]; a == b / c == d are open shoulders."""
    with np.errstate(invalid="ignore", divide="ignore"):
        left = np.ones_like(x) if a == b else np.clip((x - a) / (b - a), 0.0, 1.0)
        right = np.ones_like(x) if c == d else np.clip((d - x) / (d - c), 0.0, 1.0)
    return np.minimum(left, right)


def membership(values: np.ndarray, m: Membership) -> np.ndarray:
    """Degree of membership of each value, in [0, 1]; NaN in gives NaN out.

    - ``triangular [a, b, c]``: 0 at or below ``a``, rising to 1 at ``b``, falling to 0 at ``c``.
    - ``trapezoidal [a, b, c, d]``: rising over ``[a, b]``, 1 over ``[b, c]``, falling over
      ``[c, d]``.
    - ``gaussian [mean, sigma]``: ``exp(-((x - mean) / sigma)**2 / 2)``.

    Shoulders: an edge without width is open, not a cliff. When ``a == b`` the set is a left
    shoulder: every value at or below ``b`` has membership 1, including values below ``a``
    (``trapezoidal [-1, -1, -0.005, 0]`` is 1 for all of ``x <= -0.005``). Likewise ``c == d``
    (``b == c`` for a triangle) is a right shoulder: 1 for every value at or above ``c``. This
    lets a designer cover an open-ended range such as "far below the average" with finite
    parameters.
    """
    x = np.asarray(values, dtype=np.float64)
    p = m.parameters
    if m.type == "gaussian":
        out = np.exp(-0.5 * ((x - p[0]) / p[1]) ** 2)
    elif m.type == "triangular":
        out = _trapezoid(x, p[0], p[1], p[1], p[2])
    else:
        out = _trapezoid(x, p[0], p[1], p[2], p[3])
    out = np.asarray(out, dtype=np.float64)
    out[np.isnan(x)] = np.nan
    return out


def feature_columns(spec: StrategySpec) -> list[str]:
    """Names of the features ``fuzzy_features`` gives, in order."""
    return [
        f"{item.fuzzy_set}.{label}"
        for item in spec.nn_inputs
        for label in spec.fuzzy_sets[item.fuzzy_set].memberships
    ]


def fuzzy_features(spec: StrategySpec, indicator_frame: pd.DataFrame) -> pd.DataFrame:
    """Columns ``"<set_id>.<label>"`` for the sets in ``spec.nn_inputs``, in order."""
    columns: dict[str, np.ndarray] = {}
    for item in spec.nn_inputs:
        set_id = item.fuzzy_set
        source = spec.indicator_column(set_id)
        if source not in indicator_frame.columns:
            raise SpecError(
                f"fuzzy set {set_id!r} reads {source!r}, which the indicator frame lacks "
                f"(it has {', '.join(indicator_frame.columns) or 'no columns'}); compute the "
                "indicators with compute_indicators(bars, spec.indicators)"
            )
        values = indicator_frame[source].to_numpy(dtype=np.float64)
        for label, m in spec.fuzzy_sets[set_id].memberships.items():
            columns[f"{set_id}.{label}"] = membership(values, m)
    return pd.DataFrame(columns, index=indicator_frame.index)
