"""Labels that arrive after the transactions: chargebacks, analysts' decisions, the dataset's."""

from fraudpipe.labels.importer import LabelImport, import_labels

__all__ = ["LabelImport", "import_labels"]
