"""Every service process measures its garbage-collector pauses and sets the thresholds."""

import gc

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from gavel_kit import garbage


@pytest.fixture(autouse=True)
def unhooked_afterwards():
    """The hook is process-wide: the tests that install it take it out again."""
    original = gc.get_threshold()
    yield
    while garbage._CLOCK in gc.callbacks:
        gc.callbacks.remove(garbage._CLOCK)
    gc.set_threshold(*original)


def full_collections_measured() -> float:
    return REGISTRY.get_sample_value("gavel_gc_pause_seconds_count", {"generation": "2"}) or 0.0


def test_a_full_collection_is_counted_in_the_pause_histogram():
    garbage.configure(None)
    garbage.configure(None)  # twice: still one hook
    before = full_collections_measured()

    gc.collect()

    assert full_collections_measured() == before + 1
    assert sum(1 for hook in gc.callbacks if hook is garbage._CLOCK) == 1


def test_a_long_pause_is_logged_with_its_generation(monkeypatch):
    garbage.configure(None)
    monkeypatch.setattr(garbage, "LONG_PAUSE_S", 0.0)

    with capture_logs() as logs:
        gc.collect()

    pauses = [entry for entry in logs if entry["event"] == "long garbage-collection pause"]
    assert [entry["generation"] for entry in pauses] == [2]
    assert pauses[0]["ms"] >= 0


def test_the_thresholds_are_set_when_given_and_left_alone_when_not():
    garbage.configure((2_000, 10, 100))
    assert gc.get_threshold() == (2_000, 10, 100)
    garbage.configure(None)
    assert gc.get_threshold() == (2_000, 10, 100)


def test_processes_without_service_settings_take_the_services_thresholds(monkeypatch):
    monkeypatch.delenv("GAVEL_GC_THRESHOLDS", raising=False)
    garbage.set_thresholds_from_environment()
    assert gc.get_threshold() == (2_000, 10, 100)

    monkeypatch.setenv("GAVEL_GC_THRESHOLDS", "5000,5,5")
    garbage.set_thresholds_from_environment()
    assert gc.get_threshold() == (5000, 5, 5)
