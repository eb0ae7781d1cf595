"""The funnel's rates, pure: rounding, empty stages, no previous stage for generated."""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from proffer_stream.db.stats import FUNNEL_STAGES, FunnelStage, funnel, rate

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [(0, 0, None), (5, 0, None), (0, 3, 0.0), (1, 3, 0.3333), (2, 3, 0.6667), (3, 3, 1.0)],
)
def test_rate_rounds_to_4_decimals_and_is_none_without_a_denominator(
    numerator, denominator, expected
):
    assert rate(numerator, denominator) == expected


def test_a_funnel_rates_each_stage_against_the_previous_and_generated():
    assert funnel([10, 8, 7, 0, 0, 2]) == [
        FunnelStage("generated", 10, None, 1.0),
        FunnelStage("approved", 8, 0.8, 0.8),
        FunnelStage("sent", 7, 0.875, 0.7),
        FunnelStage("seen", 0, 0.0, 0.0),
        FunnelStage("clicked", 0, None, 0.0),
        FunnelStage("redeemed", 2, None, 0.2),
    ]


def test_an_empty_funnel_has_no_rates():
    assert [(s.count, s.rate_from_previous, s.rate_from_generated) for s in funnel([0] * 6)] == [
        (0, None, None)
    ] * 6


def test_a_funnel_needs_a_count_per_stage():
    with pytest.raises(ValueError, match="expected 6 counts"):
        funnel([1, 1])


def half_unit(ratio: float) -> float:
    """Half a unit of the 4th decimal, plus float error relative to ``ratio`` (1.40625
    rounds to 1.4062, 5e-5 off; 58254.21875 to 58254.2188, 5e-5 and 4e-12 off)."""
    return 5e-5 + 1e-12 * max(1.0, ratio)


@given(st.lists(st.integers(0, 10**9), min_size=6, max_size=6))
@example([32, 1_864_135, 0, 0, 0, 0])  # 58254.21875: float error above 1e-12
def test_funnel_rates_are_the_ratios_to_4_decimals(counts):
    stages = funnel(counts)
    assert [s.stage for s in stages] == list(FUNNEL_STAGES)
    for i, stage in enumerate(stages):
        assert stage.count == counts[i]
        if counts[0]:
            ratio = counts[i] / counts[0]
            assert stage.rate_from_generated == pytest.approx(ratio, abs=half_unit(ratio))
        if i and counts[i - 1]:
            ratio = counts[i] / counts[i - 1]
            assert stage.rate_from_previous == pytest.approx(ratio, abs=half_unit(ratio))
