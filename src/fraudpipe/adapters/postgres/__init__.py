"""PostgreSQL: connections per role, the schema and its migrations, batches and quarantine, the
bulk loader and its binary COPY encoder, the scorer's prediction sink, batch progress, and the
read-side queries (reporting, training history, the dashboard)."""
