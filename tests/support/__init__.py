"""Helpers shared by the end-to-end tests: a real switch process and a raw wire client."""
