import asyncio

import pytest

from support.in_process import start_service


@pytest.fixture
def event_loop_service(tmp_path):
    """start_service(**config) on a fresh data directory, in the running loop; its WAL is
    closed after the test."""
    services = []

    def start(**config):
        service = start_service(asyncio.get_running_loop(), tmp_path / "data", **config)
        services.append(service)
        return service

    yield start
    for service in services:
        service.wal.close()
