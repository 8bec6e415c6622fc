"""Synthetic days fitted on real data, so the pipeline can run for weeks past the ULB's two days.

The generator is class-conditional. For each class (normal, fraud) it keeps:

* the marginal distribution of every feature (``V1``..``V28``, ``Amount``) as a quantile table,
  so generated values follow the real marginals, tails and all;
* the dependence between features as a Gaussian copula: the correlation of normal scores,
  estimated from Spearman's rank correlation (``2·sin(π·ρ/6)``);
* the time-of-day profile as hourly weights.

A day draws its row count (Poisson around the real daily mean), each row's class (the real
fraud rate), then per class correlated normal vectors whose ranks pick values from the quantile
tables (the Iman–Conover construction: no normal CDF needed). Everything is seeded by
``(seed, day)``: a day is the same whenever and however often it is generated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import ClassVar, Final, Self

import numpy as np
import numpy.typing as npt
import pandas as pd

from fraudpipe.columns import RAW_AMOUNT_COLUMN, RAW_LABEL_COLUMN, RAW_TIME_COLUMN, RAW_V_COLUMNS
from fraudpipe.data.sources import TIME_ZERO_DAY, RawRows
from fraudpipe.errors import IngestRequestError

FIRST_SYNTHETIC_DAY: Final = date(2025, 9, 22)
"""The day after the ULB's two: synthetic days never overlap real ones."""

POSITIONS_PER_DAY: Final = 1_000_000
"""Row positions of day ``d`` (days since 2025-09-20) are ``d·10⁶ + i``: ids never collide."""

FEATURE_COLUMNS: Final = (*RAW_V_COLUMNS, RAW_AMOUNT_COLUMN)
_QUANTILE_LEVELS: Final = 2001
_SECONDS_PER_DAY: Final = 86_400
FloatArray = npt.NDArray[np.float64]


def synthetic_source_name(seed: int, drift: DriftScenario | None = None) -> str:
    """``synthetic-s<seed>``, or ``synthetic-s<seed>-drift-<start>`` with a drift scenario: the
    word is in every id, batch and message of these rows, and a drifted day is never mistaken
    for (or collides with) the same day without drift."""
    name = f"synthetic-s{seed}"
    return f"{name}-drift-{drift.start.isoformat()}" if drift is not None else name


@dataclass(frozen=True)
class DriftScenario:
    """From ``start`` on, every generated day drifts the same way, whatever the seed.

    What moves (the days before ``start`` are exactly the undrifted ones):

    * normal rows: ``V4`` and ``V11`` shift by ``normal_shift`` of their own spread (the
      half-distance between the 16th and 84th percentiles), towards where frauds sit, so the
      alert rate rises;
    * fraud rows: ``V12``, ``V14`` and ``V17``, the features that set frauds apart most, move
      ``fraud_fade`` of the way to the normal rows' median: the old fraud pattern fades and a
      model trained before ``start`` misses more of them;
    * every amount is multiplied by ``amount_factor`` (prices move).
    """

    start: date
    normal_shift: float = 0.75
    fraud_fade: float = 0.6
    amount_factor: float = 1.5

    SHIFTED: ClassVar[tuple[str, ...]] = ("V4", "V11")
    FADED: ClassVar[tuple[str, ...]] = ("V12", "V14", "V17")

    def applies(self, day: date) -> bool:
        return day >= self.start


@dataclass(frozen=True)
class ClassProfile:
    """What the generator keeps of one class.

    Attributes:
        levels: Quantile levels in [0, 1], ascending.
        quantiles: ``len(levels) × len(FEATURE_COLUMNS)`` values at those levels.
        correlation: Normal-score correlation of the features (positive definite).
        hour_weights: Probability of each hour of the day (24, sums to 1).
    """

    levels: FloatArray
    quantiles: FloatArray
    correlation: FloatArray
    hour_weights: FloatArray

    @classmethod
    def fit(cls, features: FloatArray, seconds_of_day: FloatArray) -> Self:
        """Fit on one class's rows (``n × len(FEATURE_COLUMNS)``) and their seconds of day."""
        n = features.shape[0]
        levels = np.linspace(0.0, 1.0, min(_QUANTILE_LEVELS, n))
        quantiles = np.quantile(features, levels, axis=0)
        ranks = np.argsort(np.argsort(features, axis=0, kind="stable"), axis=0)
        spearman = np.corrcoef(ranks, rowvar=False)
        correlation = _nearest_correlation(2.0 * np.sin(np.pi * spearman / 6.0))
        hours = np.bincount((seconds_of_day // 3600).astype(np.int64), minlength=24)[:24]
        # Add-one smoothing: an hour with no fraud in two days is not an impossible hour.
        weights = (hours + 1.0) / (hours.sum() + 24.0)
        return cls(levels, quantiles, correlation, weights)

    def percentile(self, q: float) -> FloatArray:
        """Each feature's value at level ``q`` of this class."""
        return np.array(
            [np.interp(q, self.levels, self.quantiles[:, j]) for j in range(len(FEATURE_COLUMNS))]
        )

    def sample(self, n: int, rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
        """``n`` feature rows and seconds of day, drawn from this profile."""
        k = len(FEATURE_COLUMNS)
        if n == 0:
            return np.empty((0, k)), np.empty(0)
        normals = rng.standard_normal((n, k)) @ np.linalg.cholesky(self.correlation).T
        ranks = np.argsort(np.argsort(normals, axis=0), axis=0)
        uniform = (ranks + 0.5) / n
        features = np.empty((n, k))
        for j in range(k):
            features[:, j] = np.interp(uniform[:, j], self.levels, self.quantiles[:, j])
        hours = rng.choice(24, size=n, p=self.hour_weights)
        seconds = hours * 3600 + rng.integers(0, 3600, size=n)
        return features, seconds.astype(np.float64)


@dataclass(frozen=True)
class SyntheticDayGenerator:
    """Class-conditional generator of whole days of raw rows (see the module docstring)."""

    fraud_rate: float
    rows_per_day: float
    normal: ClassProfile
    fraud: ClassProfile

    @classmethod
    def fit(cls, valid: pd.DataFrame) -> Self:
        """Fit on validated raw rows that carry labels (e.g. the ULB dataset).

        Args:
            valid: ``Time``, ``V1``..``V28``, ``Amount``, ``Class`` (0/1) as float64.

        Raises:
            IngestRequestError: Fewer than two rows of either class, or no labels.
        """
        labels = valid[RAW_LABEL_COLUMN].to_numpy()
        if np.isnan(labels).any():
            raise IngestRequestError("the synthetic generator needs labelled rows to fit on")
        is_fraud = labels == 1.0
        if min(int(is_fraud.sum()), int((~is_fraud).sum())) < 2:
            raise IngestRequestError("the synthetic generator needs at least 2 rows of each class")
        features = valid[list(FEATURE_COLUMNS)].to_numpy(dtype=np.float64)
        time = valid[RAW_TIME_COLUMN].to_numpy(dtype=np.float64)
        days = np.unique(np.floor(time / _SECONDS_PER_DAY)).size
        seconds = np.mod(time, _SECONDS_PER_DAY)
        return cls(
            fraud_rate=float(is_fraud.mean()),
            rows_per_day=len(valid) / days,
            normal=ClassProfile.fit(features[~is_fraud], seconds[~is_fraud]),
            fraud=ClassProfile.fit(features[is_fraud], seconds[is_fraud]),
        )

    def day(self, day: date, seed: int, drift: DriftScenario | None = None) -> pd.DataFrame:
        """One day of raw rows, in time order, indexed by position in the synthetic stream.

        With ``drift``, a day from its start on is drawn as without it, then moved as the
        scenario says (the random draws are the same, so only the drift differs).

        Raises:
            IngestRequestError: `day` is before `FIRST_SYNTHETIC_DAY`.
        """
        if day < FIRST_SYNTHETIC_DAY:
            raise IngestRequestError(
                f"synthetic days start on {FIRST_SYNTHETIC_DAY.isoformat()} "
                f"(after the real ULB days), not {day.isoformat()}"
            )
        offset = (day - TIME_ZERO_DAY).days
        rng = np.random.default_rng([seed, offset])
        n = min(int(rng.poisson(self.rows_per_day)), POSITIONS_PER_DAY)
        is_fraud = rng.random(n) < self.fraud_rate
        features = np.empty((n, len(FEATURE_COLUMNS)))
        seconds = np.empty(n)
        for mask, profile in ((~is_fraud, self.normal), (is_fraud, self.fraud)):
            features[mask], seconds[mask] = profile.sample(int(mask.sum()), rng)
        if drift is not None and drift.applies(day):
            self._drift(features, is_fraud, drift)
        frame = pd.DataFrame(features, columns=list(FEATURE_COLUMNS))
        # ULB amounts are in cents.
        frame[RAW_AMOUNT_COLUMN] = np.round(frame[RAW_AMOUNT_COLUMN].to_numpy(), 2)
        frame.insert(0, RAW_TIME_COLUMN, offset * _SECONDS_PER_DAY + seconds)
        frame[RAW_LABEL_COLUMN] = is_fraud.astype(np.float64)
        frame = frame.sort_values(RAW_TIME_COLUMN, kind="stable", ignore_index=True)
        frame.index = pd.RangeIndex(offset * POSITIONS_PER_DAY, offset * POSITIONS_PER_DAY + n)
        return frame

    def _drift(
        self, features: FloatArray, is_fraud: npt.NDArray[np.bool_], drift: DriftScenario
    ) -> None:
        column = {name: j for j, name in enumerate(FEATURE_COLUMNS)}
        spread = (self.normal.percentile(0.84) - self.normal.percentile(0.16)) / 2.0
        median = self.normal.percentile(0.5)
        for name in drift.SHIFTED:
            j = column[name]
            # Towards the frauds' side of the normal rows.
            towards = np.sign(self.fraud.percentile(0.5)[j] - median[j]) or 1.0
            features[~is_fraud, j] += towards * drift.normal_shift * spread[j]
        for name in drift.FADED:
            j = column[name]
            features[is_fraud, j] += drift.fraud_fade * (median[j] - features[is_fraud, j])
        features[:, column[RAW_AMOUNT_COLUMN]] *= drift.amount_factor


@dataclass(frozen=True)
class SyntheticSource:
    """Synthetic days as a source named ``synthetic-s<seed>``; `is_synthetic` is True."""

    generator: SyntheticDayGenerator
    seed: int
    drift: DriftScenario | None = None

    @property
    def name(self) -> str:
        return synthetic_source_name(self.seed, self.drift)

    @property
    def is_synthetic(self) -> bool:
        return True

    @property
    def ids_per_day(self) -> bool:
        return False

    def read(self, days: Sequence[date] | None) -> RawRows:
        if not days:
            raise IngestRequestError(
                "synthetic days never run out, so there is no 'all days': name the days "
                "(e.g. --day 2025-09-22 --until 2025-09-28)"
            )
        return RawRows(
            pd.concat([self.generator.day(d, self.seed, self.drift) for d in sorted(set(days))])
        )


def _nearest_correlation(matrix: FloatArray, floor: float = 1e-6) -> FloatArray:
    # Rank correlations mapped through 2·sin(π·ρ/6) need not form a valid correlation matrix;
    # clip the spectrum and rescale to unit diagonal so Cholesky always succeeds.
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    fixed = (vectors * np.maximum(values, floor)) @ vectors.T
    scale = np.sqrt(np.diag(fixed))
    return fixed / np.outer(scale, scale)  # type: ignore[no-any-return]
