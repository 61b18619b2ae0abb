"""Fixtures shared by the batch tests."""
import pytest

from batches.batch_e2e_support import running_switch


@pytest.fixture(params=["json", "msgpack"])
def codec(request):
    return request.param


@pytest.fixture
def world(tmp_path):
    """A running switch with the standard world: (switch, tokens by participant)."""
    with running_switch(tmp_path) as (switch, tokens):
        yield switch, tokens
