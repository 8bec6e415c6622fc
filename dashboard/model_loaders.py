"""Cached MLflow reads for the Models and Drift pages.

Kept apart from `loaders` because importing MLflow and scikit-learn takes seconds: only the
pages that show a model pay for it.
"""

from __future__ import annotations

from typing import Final

import loaders
import pandas as pd
import streamlit as st

from fraudpipe.adapters.mlflow import model_history, references
from fraudpipe.config import Settings
from fraudpipe.model.drift import ReferenceProfile

MLFLOW_TTL_SECONDS: Final = 60


def _mlflow_settings(tracking_uri: str, model_name: str) -> Settings:
    return loaders.settings().model_copy(
        update={"mlflow_tracking_uri": tracking_uri, "model_name": model_name}
    )


@st.cache_data(ttl=MLFLOW_TTL_SECONDS, show_spinner=False)
def model_versions(tracking_uri: str, model_name: str) -> pd.DataFrame:
    return model_history.versions_frame(_mlflow_settings(tracking_uri, model_name))


# A version's artifacts never change once logged, so these are cached without a TTL.
@st.cache_data(show_spinner=False)
def curve_plots(tracking_uri: str, model_name: str, run_id: str) -> dict[str, bytes]:
    return model_history.curve_plots(_mlflow_settings(tracking_uri, model_name), run_id)


@st.cache_data(show_spinner=False)
def coefficients(tracking_uri: str, model_name: str, version: int) -> pd.DataFrame | None:
    return model_history.coefficients(_mlflow_settings(tracking_uri, model_name), version)


@st.cache_data(show_spinner=False)
def alert_tradeoff(tracking_uri: str, model_name: str, run_id: str) -> pd.DataFrame | None:
    return model_history.alert_tradeoff(_mlflow_settings(tracking_uri, model_name), run_id)


@st.cache_data(show_spinner=False)
def reference_profile(tracking_uri: str, model_name: str, version: int) -> ReferenceProfile | None:
    return references.reference_profile(_mlflow_settings(tracking_uri, model_name), version)
