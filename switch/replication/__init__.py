"""Replication of the write-ahead log through NATS JetStream (docs/replication.md).

One primary appends each group commit to a JetStream stream (fenced by the stream's expected
last sequence) and holds a lease in a key-value bucket; standbys follow the stream through the
same replay path as crash recovery. Imported only when `--replication` is given: nats-py is the
optional extra `payswitch[replication]`.
"""
