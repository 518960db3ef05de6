"""sybilgnn: find coordinated fleets of fake accounts with a heterogeneous GNN over Neo4j."""

import logging
import warnings

__version__ = "0.1.0"

# Third-party notices that are not the user's business, matched by their exact wording so
# that any other warning still shows: torch_geometric's import-time use of torch.jit.script,
# and MLflow's advice on model input examples, dataset sources and cloudpickle.
for _message, _category in (
        (r"`torch\.jit\.script` is deprecated", FutureWarning),
        (r".*An input example was not provided when logging the model", UserWarning),
        (r"The specified dataset source can be interpreted in multiple ways", UserWarning),
        (r".*[Cc]loud[Pp]ickle", UserWarning)):
    warnings.filterwarnings("ignore", message=_message, category=_category)

# MLflow's and alembic's INFO lines when a tracking database is created or migrated
# ("Creating initial MLflow database tables...") say nothing the user asked for; their
# warnings and errors still show.
for _logger in ("mlflow.store.db.utils", "mlflow.store.model_registry", "alembic"):
    logging.getLogger(_logger).setLevel(logging.WARNING)
