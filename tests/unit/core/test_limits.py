"""What PostgreSQL can store: any JSON without NUL, lone surrogates or huge numbers."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proffer_stream.core.limits import LARGEST_NUMBER, check_json

pytestmark = pytest.mark.unit

text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
numbers = st.integers(-(2**53 - 1), 2**53 - 1) | st.floats(-LARGEST_NUMBER, LARGEST_NUMBER)
storable = st.recursive(
    st.none() | st.booleans() | numbers | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=20,
)
poison = st.sampled_from(
    ["a\x00b", "\ud800", float("inf"), float("-inf"), float("nan"), 2**53, 1e16, -1e300]
)


@given(storable)
def test_storable_json_is_accepted(value):
    check_json(value)


@given(st.dictionaries(text, storable, max_size=3), text, poison)
def test_one_bad_value_anywhere_is_refused_and_located(data, key, bad):
    nested = {**data, "outer": [1, {key: bad}]}
    with pytest.raises(ValueError, match=r"^outer\[1\]\."):
        check_json(nested)


def test_a_bad_key_is_refused():
    with pytest.raises(ValueError, match="NUL"):
        check_json({"ok": {"bad\x00key": 1}})
