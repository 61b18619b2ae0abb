import asyncio

import pytest

from support.in_process import start_service


@pytest.fixture
def event_loop_service(tmp_path):
    """start_service(**config) on a fresh data directory (one more for each call), in the
    running loop; its WAL is closed after the test."""
    services = []

    def start(**config):
        data_dir = tmp_path / ("data" if not services else f"data-{len(services) + 1}")
        service = start_service(asyncio.get_running_loop(), data_dir, **config)
        services.append(service)
        return service

    yield start
    for service in services:
        service.wal.close()
