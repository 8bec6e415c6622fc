"""MLflow: a training logged as a run, registered versions and the promotion gate that moves the
serving alias, the serving model's loader and its watch, and the Models page's history."""
