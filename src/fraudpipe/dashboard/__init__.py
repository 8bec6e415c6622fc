"""The dashboard's core: SQL aggregations, MLflow reads, derived tables and Plotly figures.

Nothing here imports Streamlit; the pages under ``dashboard/`` only wire these functions to
widgets and caches.
"""
