"""fraudpipe dashboard: `streamlit run dashboard/app.py` (or `fraudpipe dashboard`).

The entry script only checks the database, draws the shared sidebar and routes to a page; the
pages wire `fraudpipe.dashboard` (queries, MLflow reads, figures) to widgets.
"""

from __future__ import annotations

import filters
import loaders
import streamlit as st
from login import require_login
from recovery import reload_on_failed_widget_code

from fraudpipe.errors import FraudpipeError

st.set_page_config(page_title="fraudpipe", page_icon=":material/shield:", layout="wide")
reload_on_failed_widget_code()
require_login(loaders.settings())

# Page scripts live in views/, not pages/: Streamlit would otherwise also auto-register a
# pages/ directory and serve its files directly, bypassing this entry script.
navigation = st.navigation(
    [
        # The default page is served at "/" (Streamlit ignores its url_path).
        st.Page("views/live.py", title="Live", icon=":material/bolt:", default=True),
        st.Page(
            "views/fraud_history.py",
            title="Fraud history",
            icon=":material/timeline:",
            url_path="history",
        ),
        st.Page(
            "views/batches.py",
            title="Batches & lineage",
            icon=":material/account_tree:",
            url_path="batches",
        ),
        st.Page(
            "views/models.py", title="Models", icon=":material/model_training:", url_path="models"
        ),
        st.Page("views/eda.py", title="EDA", icon=":material/query_stats:", url_path="eda"),
        st.Page("views/review.py", title="Review queue", icon=":material/rule:", url_path="review"),
        st.Page("views/drift.py", title="Drift", icon=":material/trending_up:", url_path="drift"),
        st.Page(
            "views/performance.py",
            title="Live performance",
            icon=":material/monitoring:",
            url_path="performance",
        ),
    ]
)

url = loaders.db_url()
try:
    loaders.check_schema(url)
    extent = loaders.data_extent(url)
except FraudpipeError as exc:
    st.error(str(exc))
    st.stop()

filters.render_date_range(extent)
_stack = loaders.settings()
st.sidebar.markdown(
    "Operate: "
    f"[Prometheus](http://{_stack.prometheus_host}:{_stack.prometheus_port}/alerts) · "
    f"[Airflow]({_stack.airflow_url}) · "
    f"[Prefect]({_stack.prefect_api_url.removesuffix('/api')}) · "
    f"[MLflow]({_stack.mlflow_tracking_uri})"
)
navigation.run()
