"""What both writers read out of the signals, said one way."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from proffer_stream.offers.wording import days_since, money, most_counted

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_most_counted_ranks_by_count_then_name_and_skips_zeros():
    counts = {"/b": 2, "/a": 2, "/c": 5, "/zero": 0}
    assert most_counted(counts, 5) == [("/c", 5), ("/a", 2), ("/b", 2)]
    assert most_counted(counts, 1) == [("/c", 5)]
    assert most_counted({"/zero": 0}, 3) == []


def test_money_and_days():
    assert [money(Decimal(x)) for x in ("80.5", "1234.5", "0")] == ["80.50", "1,234.50", "0.00"]
    assert days_since(NOW - timedelta(days=3, hours=1), NOW) == 3
    assert days_since(NOW + timedelta(days=1), NOW) == 0
    assert days_since(None, NOW) is None
