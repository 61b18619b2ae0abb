"""Why a replicated node cannot start (importable without nats-py, for the command line)."""


class ReplicationUnusable(Exception):
    """Replication is configured but cannot work: nats-py missing, the cluster's message size
    limit too small, or a log the stream cannot continue. The message says what to do."""
