"""Fixtures shared by the hardening tests."""
import pytest


@pytest.fixture
def stopper():
    """Register each switch process a test starts; all are stopped when it ends."""
    started = []
    yield started.append
    for process in started:
        process.stop()
