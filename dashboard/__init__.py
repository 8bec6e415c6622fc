"""The Streamlit app: pages that read through `fraudpipe.dashboard` and its queries."""
