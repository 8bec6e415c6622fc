"""What values a transaction's features may take: one definition, enforced at every door.

A value can be finite and still absurd: ``V28 = 1e308`` or an amount of ``1e300`` passes every
type check, overflows to infinity once scaled inside the model, and comes out as a score of 1.0
(or, for the amount, a confident "legitimate"). So every feature is bounded, and the same
bounds are enforced by the raw-row contract (`data.schemas`: a row out of bounds is quarantined
with the reason), by the scorer's decoder (`adapters.avro.decoding`: such a message is
dead-lettered with the reason), and by CHECK constraints on `transactions`
(`adapters.postgres.bounds`); the Avro contract's docs state them.

The bounds come from the real data. `OBSERVED` is each feature's smallest and largest value in
the ULB dataset (284,807 transactions; `tests/integration/test_bounds.py` measures them again
from the file). A bound is that range widened by `margin` times its width on each side
(``FRAUDPIPE_BOUNDS_MARGIN``, 1.0 by default): V1, seen between -56.41 and 2.45, may lie
between -115.27 and 61.32. An amount is never negative; its upper bound is widened the same way
(25,691.16 seen, 51,382.32 allowed). Synthetic days are drawn from the real data's quantiles,
so they stay inside; data of your own that needs more room takes a larger margin.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from fraudpipe.columns import FEATURE_COLUMNS, RAW_AMOUNT_COLUMN

#: Smallest and largest value of each feature in the ULB dataset, by stored name.
OBSERVED: Final[dict[str, tuple[float, float]]] = {
    "amount": (0.0, 25_691.16),
    "v1": (-56.407509631329, 2.45492999121121),
    "v2": (-72.7157275629303, 22.0577289904909),
    "v3": (-48.3255893623954, 9.38255843282114),
    "v4": (-5.68317119816995, 16.8753440335975),
    "v5": (-113.743306711146, 34.8016658766686),
    "v6": (-26.1605059358433, 73.3016255459646),
    "v7": (-43.5572415712451, 120.589493945238),
    "v8": (-73.2167184552674, 20.0072083651213),
    "v9": (-13.4340663182301, 15.5949946071278),
    "v10": (-24.5882624372475, 23.7451361206545),
    "v11": (-4.79747346479757, 12.0189131816199),
    "v12": (-18.6837146333443, 7.8483920756446),
    "v13": (-5.79188120632084, 7.12688295859376),
    "v14": (-19.2143254902614, 10.5267660517847),
    "v15": (-4.49894467676621, 8.87774159774277),
    "v16": (-14.1298545174931, 17.3151115176278),
    "v17": (-25.1627993693248, 9.25352625047285),
    "v18": (-9.49874592104677, 5.04106918541184),
    "v19": (-7.21352743017759, 5.59197142733558),
    "v20": (-54.497720494566, 39.4209042482199),
    "v21": (-34.8303821448146, 27.2028391573154),
    "v22": (-10.933143697655, 10.5030900899454),
    "v23": (-44.8077352037913, 22.5284116897749),
    "v24": (-2.83662691870341, 4.58454913689817),
    "v25": (-10.2953970749851, 7.51958867870916),
    "v26": (-2.60455055280817, 3.5173456116238),
    "v27": (-22.5656793207827, 31.6121981061363),
    "v28": (-15.4300839055349, 33.8478078188831),
}


@dataclass(frozen=True)
class FeatureBounds:
    """Inclusive lower and upper bounds of every feature, by stored name (`FEATURE_COLUMNS`)."""

    low: tuple[float, ...]
    high: tuple[float, ...]
    margin: float

    def of(self, name: str) -> tuple[float, float]:
        """The bounds of one feature, by stored or raw name."""
        stored = name.lower() if name != RAW_AMOUNT_COLUMN else "amount"
        i = FEATURE_COLUMNS.index(stored)
        return self.low[i], self.high[i]


@lru_cache(maxsize=8)
def feature_bounds(margin: float = 1.0) -> FeatureBounds:
    """The observed ranges widened by `margin` times their width on each side.

    An amount's lower bound stays 0: a negative amount is not a transaction.
    """
    lows, highs = [], []
    for name in FEATURE_COLUMNS:
        seen_low, seen_high = OBSERVED[name]
        width = seen_high - seen_low
        lows.append(0.0 if name == "amount" else seen_low - margin * width)
        highs.append(seen_high + margin * width)
    return FeatureBounds(tuple(lows), tuple(highs), margin)
