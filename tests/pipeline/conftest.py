"""The pipeline tests' clock and cast of people."""

import pytest

from tests.clock import MOMENT, Clock
from tests.factories import Cast, make_cast


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """Time frozen at tests.clock.MOMENT until the test moves it."""
    return Clock(monkeypatch, MOMENT)


@pytest.fixture
def cast() -> Cast:
    """A team's rep, colleague, manager and BDR, sales ops, and another team's manager."""
    return make_cast()
