"""Batch submission: bulk transfers from CSV, JSON and ISO 20022 pain.001 files."""
