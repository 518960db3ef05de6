from tests.registry.stores import mlflow_uri, one_torch_thread, tiny_snapshot, tiny_snapshot_dir

__all__ = ["mlflow_uri", "one_torch_thread", "tiny_snapshot", "tiny_snapshot_dir"]
