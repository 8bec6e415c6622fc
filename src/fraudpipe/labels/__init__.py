"""Labels that arrive after the transactions: chargebacks, analysts' decisions, the dataset's."""

from fraudpipe.labels.importer import LabelImport, import_labels
from fraudpipe.labels.review import Decision, record_decision

__all__ = ["Decision", "LabelImport", "import_labels", "record_decision"]
