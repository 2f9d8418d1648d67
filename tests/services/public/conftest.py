from tests.workers.issuance.harness import public_server, sinks, worker_settings

__all__ = ["public_server", "sinks", "worker_settings"]
