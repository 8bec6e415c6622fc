"""What a model version must show before it serves: its reference frame, scored as recorded.

Every version fraudpipe registers carries a small reference frame from its holdout (frauds and
normals, `REFERENCE_ROWS` in all) and the scores the fitted pipeline gave those rows, inside its
MLmodel metadata. Before a version serves, it scores that frame again (`check_reference`): the
scores must be finite probabilities, must not all be equal (a model answering a constant would
silently switch alerting off, or on for everything), and must be those recorded (a different
artifact, or a library that no longer computes the same model, gives others).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from fraudpipe.columns import LABEL_COLUMN, MODEL_INPUT_COLUMNS
from fraudpipe.model.serving import ServingModel

#: Rows of the reference frame: half frauds where the holdout has them, the rest normals.
REFERENCE_ROWS: Final = 16

#: How far a re-computed reference score may lie from the recorded one. The same pipeline on
#: the same machine gives the same bits; this only absorbs the last-digit differences of a
#: BLAS or a compiled scorer that sums in another order.
SCORE_TOLERANCE: Final = 1e-9

_INPUTS: Final = "reference_inputs"
_SCORES: Final = "reference_scores"


@dataclass(frozen=True)
class Reference:
    """A version's reference frame and the scores recorded for it at training."""

    inputs: pd.DataFrame
    scores: npt.NDArray[np.float64]

    def as_metadata(self) -> dict[str, Any]:
        """The frame as plain lists, for the MLmodel metadata (floats round-trip exactly)."""
        return {
            _INPUTS: {c: self.inputs[c].tolist() for c in MODEL_INPUT_COLUMNS},
            _SCORES: self.scores.tolist(),
        }

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> Reference | None:
        """The reference recorded in MLmodel metadata, or None when there is none (or it is
        not the shape fraudpipe writes)."""
        inputs, scores = metadata.get(_INPUTS), metadata.get(_SCORES)
        if not isinstance(inputs, Mapping) or not isinstance(scores, list):
            return None
        if any(not isinstance(inputs.get(c), list) for c in MODEL_INPUT_COLUMNS):
            return None
        if any(len(inputs[c]) != len(scores) for c in MODEL_INPUT_COLUMNS) or not scores:
            return None
        frame = pd.DataFrame({c: inputs[c] for c in MODEL_INPUT_COLUMNS})
        frame = frame.astype({"event_time": "int64"} | {c: "float64" for c in frame.columns[1:]})
        return cls(frame, np.asarray(scores, dtype=np.float64))


def reference_of(holdout: pd.DataFrame, scores: npt.NDArray[np.float64]) -> Reference:
    """The reference frame of a training: the holdout's first frauds and normals, with their
    scores.

    Args:
        holdout: The labelled holdout rows (model input and label), in event-time order.
        scores: The fitted pipeline's score for each holdout row.
    """
    labels = holdout[LABEL_COLUMN].to_numpy()
    frauds = np.flatnonzero(labels == 1)[: REFERENCE_ROWS // 2]
    normals = np.flatnonzero(labels == 0)[: REFERENCE_ROWS - len(frauds)]
    rows = np.sort(np.concatenate([frauds, normals]))
    frame = holdout.iloc[rows][MODEL_INPUT_COLUMNS].reset_index(drop=True)
    return Reference(frame, np.asarray(scores, dtype=np.float64)[rows])


def reference_problem(model: ServingModel, reference: Reference) -> str | None:
    """Why `model` must not serve, judged on its reference frame; None when it may.

    Scoring is the model's own code: whatever it raises is a reason, never a crash.
    """
    try:
        scores = model.score(reference.inputs)
    except Exception as exc:  # noqa: BLE001  # a model is untrusted code: any failure refuses it
        return f"it raises on its reference frame ({type(exc).__name__}: {exc})"
    if scores.shape != reference.scores.shape:
        return f"it gave {scores.shape[0]} scores for {reference.scores.shape[0]} reference rows"
    if not np.isfinite(scores).all() or (scores < 0).any() or (scores > 1).any():
        return "it answers values that are not probabilities in [0, 1] on its reference frame"
    if np.ptp(scores) == 0.0:
        return f"it gives every reference row the same score ({scores[0]!r})"
    worst = float(np.max(np.abs(scores - reference.scores)))
    if worst > SCORE_TOLERANCE:
        return f"its reference scores differ from those recorded at training (by up to {worst:.3g})"
    return None
