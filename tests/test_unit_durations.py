"""unit tier: harness.pipeline.seconds, the one duration parser of the e2e waits and the
benchmarks (alert `for`, group waits and intervals, peer timeouts, scrape intervals). A wait
computed from a misread duration would be too short to see an alert or longer than needed, so a
value it cannot read exactly fails instead of being guessed."""
import pytest

from harness.pipeline import seconds


@pytest.mark.parametrize("text, want", [
    ("0s", 0), ("20s", 20), ("1m", 60), ("1m30s", 90), ("500ms", 0.5), ("2h", 7200), ("1h5m10s", 3910),
    ("1d", 86400), ("1w", 604800), ("1y", 365 * 86400), ("1m500ms", 60.5)])
def test_prometheus_durations_in_seconds(text, want):
    assert seconds(text) == pytest.approx(want)


@pytest.mark.parametrize("text", ["", "5", "1.5m", "5x", "1 m", "m", "-1s", "1m 30s", "30 s"])
def test_anything_else_is_refused(text):
    with pytest.raises(AssertionError, match="not a duration"):
        seconds(text)
