"""Durable storage: the write-ahead log, snapshots and crash recovery."""
