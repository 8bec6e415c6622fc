"""Train a fraud scorer on labelled history, honestly: hyper-parameters by time-ordered validation
inside the training window, metrics on a later holdout the search never saw.

Validation is sklearn's ``TimeSeriesSplit`` over event-time order (expanding window): each fold
trains on earlier rows and validates on the next slice, which is how the model is used (trained on
the past, scoring the future). Stratified k-fold would let the search learn from rows later than
the ones it validates on and overstate what a weekly retrain can do.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import sklearn
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.model_selection import TimeSeriesSplit
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

import fraudpipe.model.features as features_module
from fraudpipe.columns import LABEL_COLUMN, MODEL_INPUT_COLUMNS
from fraudpipe.errors import ConfigurationError, TrainingDataError
from fraudpipe.model.drift import ReferenceProfile
from fraudpipe.model.evaluation import ScorerMetrics, evaluate_scores, max_f1_threshold
from fraudpipe.model.features import MS_PER_DAY, build_preprocessor
from fraudpipe.model.point_in_time import LabelCut
from fraudpipe.model.schema import validate_labelled_frame
from fraudpipe.model.thresholds import (
    ThresholdRule,
    alert_tradeoff,
    budget_threshold,
    cost_threshold,
)

ModelKind = Literal["logreg", "hgb"]
Imbalance = Literal["none", "class_weight", "downsample"]
ProgressCallback = Callable[[str, int, int], None]

VALIDATION_SCHEME = "TimeSeriesSplit (expanding window) on event-time order of the training window"


@dataclass(frozen=True)
class Candidate:
    """One point of the hyper-parameter search.

    Attributes:
        imbalance: ``none``; ``class_weight`` (balanced); or ``downsample`` (keep every fraud,
            draw normals at random up to ``normals_per_fraud`` per fraud).
        use_hour: Add the cyclic hour-of-day features.
        strength: ``C`` for logistic regression, ``learning_rate`` for gradient boosting.
    """

    imbalance: Imbalance
    use_hour: bool
    strength: float

    @property
    def label(self) -> str:
        return f"{self.imbalance}/hour={'on' if self.use_hour else 'off'}/{self.strength:g}"


def default_candidates(kind: ModelKind) -> tuple[Candidate, ...]:
    """The search grid for one model kind (every imbalance strategy, with and without hour)."""
    strengths = (0.001, 0.01, 0.1, 1.0) if kind == "logreg" else (0.05, 0.1)
    return tuple(
        Candidate(imbalance, use_hour, strength)
        for imbalance in ("none", "class_weight", "downsample")
        for use_hour in (False, True)
        for strength in strengths
    )


@dataclass(frozen=True)
class TrainingConfig:
    """Everything that decides a trained model besides the data.

    Attributes:
        model: ``logreg`` (default) or ``hgb`` (HistGradientBoosting challenger).
        seed: Seeds every random draw (downsampling, sub-sampling, boosting).
        holdout_days: The latest calendar days (UTC) of event time kept out of training.
        validation_folds: Time-ordered folds inside the training window.
        normals_per_fraud: Normals kept per fraud by the ``downsample`` strategy.
        train_sample: Keep only this stratified fraction of the training window (quick runs);
            the holdout is never sampled, so metrics stay comparable with the champion's.
        candidates: The search grid; ``None`` means ``default_candidates(model)``.
        hgb_max_iter: Boosting rounds (no early stopping: it would carve a random, not
            time-ordered, validation split out of the training data).
        threshold_rule: Where the alert threshold goes (`fraudpipe.model.thresholds`).
        threads: OpenMP threads for fitting and scoring (gradient boosting uses them; ``None``
            lets it take every core). Results do not depend on it, so it is not part of the
            fingerprint.
    """

    model: ModelKind = "logreg"
    seed: int = 42
    holdout_days: int = 1
    validation_folds: int = 3
    normals_per_fraud: int = 100
    train_sample: float | None = None
    candidates: tuple[Candidate, ...] | None = None
    hgb_max_iter: int = 200
    threshold_rule: ThresholdRule = field(default_factory=ThresholdRule)
    # One thread by default: on a small machine shared with the services, OpenMP threads that
    # wait on each other at every barrier made boosting 8× slower than a single thread.
    threads: int | None = 1

    def __post_init__(self) -> None:
        problems = []
        if self.holdout_days < 1:
            problems.append(f"holdout_days={self.holdout_days} (needs >= 1)")
        if self.validation_folds < 2:
            problems.append(f"validation_folds={self.validation_folds} (needs >= 2)")
        if self.normals_per_fraud < 1:
            problems.append(f"normals_per_fraud={self.normals_per_fraud} (needs >= 1)")
        if self.train_sample is not None and not 0.0 < self.train_sample <= 1.0:
            problems.append(f"train_sample={self.train_sample} (needs 0 < x <= 1)")
        if self.threads is not None and self.threads < 1:
            problems.append(f"threads={self.threads} (needs >= 1, or None for every core)")
        if self.candidates is not None and not self.candidates:
            problems.append("an empty candidates grid")
        if problems:
            raise ConfigurationError(f"training config has {'; '.join(problems)}")

    def search_grid(self) -> tuple[Candidate, ...]:
        return self.candidates if self.candidates is not None else default_candidates(self.model)


@dataclass(frozen=True)
class DataWindow:
    """Extent and class counts of one slice of labelled history."""

    start_ms: int
    end_ms: int
    rows: int
    frauds: int

    @classmethod
    def of(cls, frame: pd.DataFrame) -> DataWindow:
        times = frame["event_time"]
        return cls(
            start_ms=int(times.min()),
            end_ms=int(times.max()),
            rows=len(frame),
            frauds=int(frame[LABEL_COLUMN].sum()),
        )

    @property
    def start(self) -> datetime:
        return datetime.fromtimestamp(self.start_ms / 1000, tz=UTC)

    @property
    def end(self) -> datetime:
        return datetime.fromtimestamp(self.end_ms / 1000, tz=UTC)


@dataclass(frozen=True)
class CandidateScore:
    """Validation average precision of one candidate across the time-ordered folds."""

    candidate: Candidate
    fold_average_precision: tuple[float, ...]

    @property
    def mean_average_precision(self) -> float:
        return float(np.mean(self.fold_average_precision))


@dataclass
class TrainingResult:
    """A fitted pipeline with everything needed to log, register and gate it."""

    config: TrainingConfig
    chosen: Candidate
    pipeline: Pipeline
    threshold: float
    search: list[CandidateScore]
    holdout_metrics: ScorerMetrics
    train_window: DataWindow
    holdout_window: DataWindow
    holdout: pd.DataFrame = field(repr=False)
    holdout_scores: npt.NDArray[np.float64] = field(repr=False)
    search_seconds: float
    fit_seconds: float
    fingerprint: str
    #: The rows trained and evaluated on, as a set (`training_set_digest`).
    training_set_digest: str = ""
    #: What the history was allowed to know, when it was read as of a moment.
    cut: LabelCut | None = None
    #: Alerts a day against recall and precision on the holdout (`alert_tradeoff`).
    tradeoff: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    #: The training window's binned inputs and scores, what drift is measured against.
    reference: ReferenceProfile | None = field(default=None, repr=False)


def canonical_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by event time, ties broken by every other column.

    Training then depends on the set of rows only: fold boundaries and random draws land on the
    same rows whatever order the database or file returned them in.
    """
    columns = [*MODEL_INPUT_COLUMNS, LABEL_COLUMN]
    return frame[columns].sort_values(columns, kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class TrainingSet:
    """Labelled history checked, put in `canonical_order` and digested, once.

    Build it with `of`; `retrain` looks its fingerprint up and then trains on the same value.
    """

    frame: pd.DataFrame
    #: The rows as a set (order does not count): equal digests, equal training sets.
    digest: str

    @classmethod
    def of(cls, history: pd.DataFrame) -> TrainingSet:
        """Validate ``history`` (any row order) and order it.

        Raises:
            TrainingDataError: The frame fails its schema.
        """
        validate_labelled_frame(history)
        frame = canonical_order(history)
        row_hashes = pd.util.hash_pandas_object(frame, index=False)
        return cls(frame, hashlib.sha256(row_hashes.to_numpy().tobytes()).hexdigest())


def split_holdout(frame: pd.DataFrame, holdout_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split off the latest ``holdout_days`` calendar days (UTC) of event time.

    Args:
        frame: Labelled history in canonical order.
        holdout_days: How many of the latest days present to hold out.

    Returns:
        ``(train, holdout)``; every training row is earlier than every holdout row.

    Raises:
        TrainingDataError: Fewer than ``holdout_days + 1`` distinct days are present.
    """
    day = frame["event_time"].to_numpy(dtype=np.int64) // MS_PER_DAY
    days = np.unique(day)
    if len(days) < holdout_days + 1:
        raise TrainingDataError(
            f"{len(days)} day(s) of labelled history, but {holdout_days} holdout day(s) "
            "plus at least one training day are needed"
        )
    first_holdout_day = days[-holdout_days]
    in_holdout = day >= first_holdout_day
    return (
        frame.loc[~in_holdout].reset_index(drop=True),
        frame.loc[in_holdout].reset_index(drop=True),
    )


def stratified_sample(
    labels: npt.NDArray[np.int64], fraction: float, seed: int
) -> npt.NDArray[np.intp]:
    """Row positions of a seeded sample keeping ``fraction`` of each class (at least one each).

    Positions come back sorted, so a sample of a time-ordered frame stays time-ordered.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"sample fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    keep: list[npt.NDArray[np.intp]] = []
    for cls in (0, 1):
        rows = np.flatnonzero(labels == cls)
        if len(rows):
            n = max(1, round(len(rows) * fraction))
            keep.append(rng.choice(rows, size=n, replace=False))
    return np.sort(np.concatenate(keep))


def downsample_normals(
    labels: npt.NDArray[np.int64], normals_per_fraud: int, seed: int
) -> npt.NDArray[np.intp]:
    """Row positions keeping every fraud and at most ``normals_per_fraud`` normals per fraud."""
    rng = np.random.default_rng(seed)
    frauds = np.flatnonzero(labels == 1)
    normals = np.flatnonzero(labels == 0)
    n = min(len(normals), max(1, len(frauds)) * normals_per_fraud)
    return np.sort(np.concatenate([frauds, rng.choice(normals, size=n, replace=False)]))


def build_pipeline(
    kind: ModelKind, candidate: Candidate, seed: int, hgb_max_iter: int = 200
) -> Pipeline:
    """The unfitted model: preprocessing and classifier in one pipeline."""
    class_weight = "balanced" if candidate.imbalance == "class_weight" else None
    classifier: LogisticRegression | HistGradientBoostingClassifier
    if kind == "logreg":
        classifier = LogisticRegression(
            C=candidate.strength, class_weight=class_weight, max_iter=2000, random_state=seed
        )
    else:
        classifier = HistGradientBoostingClassifier(
            learning_rate=candidate.strength,
            max_iter=hgb_max_iter,
            early_stopping=False,
            class_weight=class_weight,
            random_state=seed,
        )
    return Pipeline(
        [("features", build_preprocessor(use_hour=candidate.use_hour)), ("classifier", classifier)]
    )


def fit_candidate(frame: pd.DataFrame, candidate: Candidate, config: TrainingConfig) -> Pipeline:
    """Fit one candidate on a time-ordered labelled frame, applying its imbalance strategy."""
    labels = frame[LABEL_COLUMN].to_numpy(dtype=np.int64)
    if candidate.imbalance == "downsample":
        frame = frame.iloc[downsample_normals(labels, config.normals_per_fraud, config.seed)]
        labels = frame[LABEL_COLUMN].to_numpy(dtype=np.int64)
    pipeline = build_pipeline(config.model, candidate, config.seed, config.hgb_max_iter)
    pipeline.fit(frame[MODEL_INPUT_COLUMNS], labels)
    return pipeline


def fraud_scores(pipeline: Pipeline, frame: pd.DataFrame) -> npt.NDArray[np.float64]:
    """Fraud probability per row of a frame holding ``MODEL_INPUT_COLUMNS``."""
    proba = pipeline.predict_proba(frame[MODEL_INPUT_COLUMNS])
    return np.asarray(proba[:, 1], dtype=np.float64)


def search_candidates(
    train: pd.DataFrame, config: TrainingConfig, on_progress: ProgressCallback | None = None
) -> tuple[list[CandidateScore], dict[Candidate, npt.NDArray[np.float64]]]:
    """Score every candidate on time-ordered folds of the training window.

    Returns:
        The per-candidate fold scores, and per candidate its pooled out-of-fold validation
        scores (aligned with the validation rows' labels, fold after fold).
    """
    folds = list(TimeSeriesSplit(n_splits=config.validation_folds).split(train))
    labels = train[LABEL_COLUMN].to_numpy(dtype=np.int64)
    for _, val_rows in folds:
        if labels[val_rows].sum() == 0:
            raise TrainingDataError(
                f"a validation fold of {len(val_rows)} rows has no fraud",
                hint="use fewer validation_folds or train on more labelled history",
            )
    grid = config.search_grid()
    total, done = len(grid) * len(folds), 0
    scores: list[CandidateScore] = []
    out_of_fold: dict[Candidate, npt.NDArray[np.float64]] = {}
    for candidate in grid:
        fold_ap: list[float] = []
        pooled: list[npt.NDArray[np.float64]] = []
        for fit_rows, val_rows in folds:
            pipeline = fit_candidate(train.iloc[fit_rows], candidate, config)
            val_scores = fraud_scores(pipeline, train.iloc[val_rows])
            fold_ap.append(float(average_precision_score(labels[val_rows], val_scores)))
            pooled.append(val_scores)
            done += 1
            if on_progress is not None:
                on_progress(f"validating {candidate.label}", done, total)
        scores.append(CandidateScore(candidate, tuple(fold_ap)))
        out_of_fold[candidate] = np.concatenate(pooled)
    return scores, out_of_fold


def _code_digest() -> str:
    # The modules that decide what a model is: a change to either is a different training.
    sources = (Path(features_module.__file__), Path(__file__))
    return hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()


def training_set_digest(frame: pd.DataFrame) -> str:
    """The digest of ``frame``'s rows as a set (`TrainingSet.digest`)."""
    return TrainingSet.of(frame).digest


def fingerprint(set_digest: str, config: TrainingConfig) -> str:
    """A digest of the training set (its `TrainingSet.digest`), the configuration and the code.

    Equal digests mean the same model: a re-run with an equal digest may reuse the earlier one.
    """
    digest = hashlib.sha256()
    digest.update(set_digest.encode())
    decisive = {k: v for k, v in asdict(config).items() if k != "threads"}
    digest.update(json.dumps(decisive, sort_keys=True, default=str).encode())
    digest.update(f"sklearn={sklearn.__version__};code={_code_digest()}".encode())
    return digest.hexdigest()


def train_model(
    history: pd.DataFrame | TrainingSet,
    config: TrainingConfig | None = None,
    on_progress: ProgressCallback | None = None,
    cut: LabelCut | None = None,
) -> TrainingResult:
    """Choose hyper-parameters inside the training window, fit, and evaluate on the holdout.

    Args:
        history: Labelled history: ``MODEL_INPUT_COLUMNS`` plus ``label``, in any row order, or
            a `TrainingSet` already made of it.
        config: Model kind, seed, holdout and search settings.
        on_progress: Called as ``(what, done, total)`` while the search runs.
        cut: The moment ``history`` was read as of, kept with the result for its record.

    Returns:
        The fitted pipeline, its threshold, search table, holdout metrics and data windows.

    Raises:
        TrainingDataError: The frame fails its schema, or a slice lacks frauds or days.
    """
    config = config or TrainingConfig()
    rows = history if isinstance(history, TrainingSet) else TrainingSet.of(history)
    with threadpool_limits(limits=config.threads, user_api="openmp"):
        return _train(rows, config, on_progress, cut)


def _train(
    rows: TrainingSet,
    config: TrainingConfig,
    on_progress: ProgressCallback | None,
    cut: LabelCut | None,
) -> TrainingResult:
    train, holdout = split_holdout(rows.frame, config.holdout_days)
    if config.train_sample is not None:
        labels = train[LABEL_COLUMN].to_numpy(dtype=np.int64)
        train = train.iloc[stratified_sample(labels, config.train_sample, config.seed)]
        train = train.reset_index(drop=True)
    if train[LABEL_COLUMN].sum() == 0:
        raise TrainingDataError(f"the training window ({len(train)} rows) has no fraud")

    started = time.perf_counter()
    search, out_of_fold = search_candidates(train, config, on_progress)
    # max() keeps the first of equal scores, so ties go to the earlier (simpler) grid point.
    best = max(search, key=lambda s: s.mean_average_precision)
    search_seconds = time.perf_counter() - started

    started = time.perf_counter()
    if on_progress is not None:
        on_progress(f"fitting {best.candidate.label} on the training window", 0, 1)
    pipeline = fit_candidate(train, best.candidate, config)
    fit_seconds = time.perf_counter() - started

    holdout_scores = fraud_scores(pipeline, holdout)
    threshold = _place_threshold(config, train, out_of_fold[best.candidate], holdout_scores)
    reference = ReferenceProfile.of(
        {c: train[c].to_numpy() for c in MODEL_INPUT_COLUMNS},
        fraud_scores(pipeline, train),
        expected_alert_rate=float(np.mean(holdout_scores >= threshold)),
    )
    metrics = evaluate_scores(holdout[LABEL_COLUMN].to_numpy(), holdout_scores, threshold)
    return TrainingResult(
        config=config,
        chosen=best.candidate,
        pipeline=pipeline,
        threshold=threshold,
        search=search,
        holdout_metrics=metrics,
        train_window=DataWindow.of(train),
        holdout_window=DataWindow.of(holdout),
        holdout=holdout,
        holdout_scores=holdout_scores,
        search_seconds=search_seconds,
        fit_seconds=fit_seconds,
        fingerprint=fingerprint(rows.digest, config),
        training_set_digest=rows.digest,
        cut=cut,
        tradeoff=alert_tradeoff(
            holdout[LABEL_COLUMN].to_numpy(), holdout_scores, config.holdout_days
        ),
        reference=reference,
    )


def _place_threshold(
    config: TrainingConfig,
    train: pd.DataFrame,
    validation_scores: npt.NDArray[np.float64],
    holdout_scores: npt.NDArray[np.float64],
) -> float:
    """The alert threshold by the configured rule (`fraudpipe.model.thresholds`)."""
    rule = config.threshold_rule
    if rule.kind == "budget":
        return budget_threshold(holdout_scores, config.holdout_days, rule.alerts_per_day)
    folds = TimeSeriesSplit(n_splits=config.validation_folds).split(train)
    validation = np.concatenate([v for _, v in folds])
    labels = train[LABEL_COLUMN].to_numpy()[validation]
    if rule.kind == "cost":
        amounts = train["amount"].to_numpy()[validation]
        return cost_threshold(labels, validation_scores, amounts, rule.review_cost)
    return max_f1_threshold(labels, validation_scores)
