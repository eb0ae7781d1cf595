"""Whole numbers a client sends as text: ASCII digits only, and not too many of them."""

import pytest

from proffer_stream.api.dashboard.forms import offer_ids
from proffer_stream.core.types import ascii_number

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "most", "number"),
    [("42", 18, 42), ("007", 18, 7), ("²", 18, None), ("", 18, None), ("12", 1, None)],
)
def test_ascii_digits_within_the_bound_are_a_number(text, most, number):
    assert ascii_number(text, most) == number


def test_a_number_int_cannot_read_is_none_not_an_error():
    assert ascii_number("9" * 5_000) is None
    assert offer_ids(["9" * 5_000, "²", "7", "7"]) == [7]  # the dashboard's ticked boxes
