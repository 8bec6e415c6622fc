"""PostgreSQL: models, migrations, connections, the batch repository and the bulk loader."""
