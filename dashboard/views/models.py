"""Models: registered versions and holdout metrics, the champion's moves, refused versions,
curves, coefficients."""

from __future__ import annotations

from datetime import timedelta

import filters
import loaders
import model_loaders
import pandas as pd
import streamlit as st

from fraudpipe.adapters.mlflow.model_history import HOLDOUT_METRICS, champion_history
from fraudpipe.dashboard import charts, summaries
from fraudpipe.errors import FraudpipeError

st.title("Models")
settings = loaders.settings()
uri, name = settings.mlflow_tracking_uri, settings.model_name
url = loaders.db_url()
window = filters.current_window()

versions: pd.DataFrame | None
# Curves recomputed on scored traffic cost a join over the window: drawn by default only when
# the registry has no logged holdout curves to show instead.
logged_curves = False
try:
    versions = model_loaders.model_versions(uri, name)
except FraudpipeError as exc:
    st.warning(f"Registry unavailable, showing scoring history only. {exc}")
    versions = None

if versions is not None and versions.empty:
    st.info(f"No version of model '{name}' is registered yet: train one with `fraudpipe train`.")
elif versions is not None:
    holders = versions[versions["aliases"].str.contains(settings.serving_alias, regex=False)]
    champion = int(holders["version"].iloc[0]) if not holders.empty else None
    cols = st.columns(4)
    cols[0].metric("Champion", f"v{champion}" if champion is not None else "none")
    cols[1].metric("Registered versions", f"{len(versions)}")
    latest = versions.iloc[0]
    decision = latest["decision"] or "no gate decision"
    cols[2].metric("Latest version", f"v{int(latest['version'])}", help=f"Gate: {decision}")
    ap = latest["holdout_average_precision"]
    cols[3].metric("Latest holdout AP", f"{ap:.4f}" if pd.notna(ap) else "n/a")

    st.plotly_chart(charts.holdout_metrics(versions, HOLDOUT_METRICS), key="models_metrics")
    st.dataframe(versions, hide_index=True)

    st.subheader("Champion moves")
    history = champion_history(versions)
    if history.empty:
        st.info("The promotion gate has not promoted any version yet.")
    else:
        st.dataframe(history, hide_index=True)

    st.subheader("Refused versions")
    refused = loaders.model_refusals(url, name)
    if refused.empty:
        st.caption("No scorer has refused a version: every one it loaded passed verification.")
    else:
        st.warning(
            f"{len(refused)} version(s) failed verification and never served; the last good "
            "version kept serving. Reasons:"
        )
        st.dataframe(refused, hide_index=True)

    st.subheader("One version")
    options = versions["version"].astype(int).tolist()
    default = options.index(champion) if champion in options else 0
    version = st.selectbox("Version", options, index=default, format_func=lambda v: f"v{v}")
    row = versions[versions["version"] == version].iloc[0]
    plots = model_loaders.curve_plots(uri, name, str(row["run_id"]))
    logged_curves = bool(plots)
    if plots:
        st.caption("Holdout curves logged by the training run")
        plot_cols = st.columns(2)
        for col, kind in zip(plot_cols, ("pr", "roc"), strict=True):
            if kind in plots:
                col.image(plots[kind], caption=f"{kind.upper()} curve, v{version} holdout")
    else:
        st.info(f"v{version}'s run logged no PR/ROC plots; see the curves on scored traffic below.")
    tradeoff = model_loaders.alert_tradeoff(uri, name, str(row["run_id"]))
    if tradeoff is not None and not tradeoff.empty:
        budget = row["alert_budget_per_day"]
        budget = int(budget) if pd.notna(budget) else None
        st.plotly_chart(
            charts.alert_tradeoff(tradeoff, float(row["threshold"]), budget),
            key="models_tradeoff",
        )
        st.caption(f"v{version}'s threshold rule: {row['threshold_rule'] or 'not recorded'}.")
    try:
        coefs = model_loaders.coefficients(uri, name, version)
    except FraudpipeError as exc:
        st.warning(str(exc))
        coefs = None
    if coefs is not None:
        st.plotly_chart(charts.coefficients(coefs), key="models_coefficients")
    else:
        st.info(f"v{version} is not a linear model: it has no coefficients to show.")

st.subheader("Champion and challenger on live traffic")
label_delay = timedelta(days=settings.label_delay_days)
shadow = summaries.shadow_comparison(loaders.shadow_counts(url, label_delay))
if shadow.empty:
    st.info(
        f"No challenger has scored in shadow yet: set the `{settings.shadow_alias}` alias on a "
        "version and the scorer scores every micro-batch with it too, without alerting."
    )
else:
    st.caption(
        "Both versions on the same live transactions whose label has arrived, each at its own "
        "threshold: an analyst's or a chargeback at once, the source's own "
        f"{settings.label_delay_days:g} days after the event (see the Review page). `scored` "
        "counts every transaction both scored. The challenger's alerts are counterfactual: it "
        "never alerts."
    )
    st.dataframe(shadow, hide_index=True)

st.subheader("Scoring history")
if window is None:
    st.info(filters.NO_TRANSACTIONS)
    st.stop()
serving = loaders.serving_history(url, window.first_day, window.last_day)
if serving.empty:
    st.info(f"No predictions between {window.first_day} and {window.last_day}.")
    st.stop()
st.caption(f"Which versions scored the transactions of {window.first_day} to {window.last_day}")
st.dataframe(serving, hide_index=True)

if not st.toggle("PR and ROC curves on scored, labelled traffic", value=not logged_curves):
    st.stop()
scored_versions = serving["model_version"].astype(int).tolist()
curve_version = st.selectbox(
    "Version",
    scored_versions,
    index=len(scored_versions) - 1,
    format_func=lambda v: f"v{v}",
    key="curve_version",
)
bins = loaders.score_bins(url, window.first_day, window.last_day, curve_version)
curves = summaries.curves_from_bins(bins)
if curves is None:
    st.info(
        f"v{curve_version}'s scored transactions in this range lack labels of both classes, "
        "so no curve can be drawn."
    )
else:
    curve_cols = st.columns(2)
    title = f"v{curve_version} on {curves.positives + curves.negatives:,} labelled transactions"
    curve_cols[0].plotly_chart(charts.pr_curve(curves, f"PR · {title}"), key="models_pr")
    curve_cols[1].plotly_chart(charts.roc_curve(curves, f"ROC · {title}"), key="models_roc")
