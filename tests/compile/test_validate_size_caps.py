"""Constant size arguments of lpad/rpad are capped at compile time (issue 9, item 2)."""

from __future__ import annotations

import pytest

from pipelines.compile.condition import ConditionSchema, compile_condition
from pipelines.errors import ConditionError

SCHEMA = ConditionSchema(contact={"email": "VARCHAR"}, account={})


@pytest.mark.parametrize(
    "text",
    ["lpad(email, 2000000000, 'x') = 'a'", "rpad(email, 1000001, 'x') = 'a'"],
)
def test_a_huge_pad_width_is_rejected(text):
    with pytest.raises(ConditionError, match="at most"):
        compile_condition(text, SCHEMA)


def test_a_sane_pad_width_compiles():
    assert "LPAD" in compile_condition("lpad(email, 20, ' ') = 'a'", SCHEMA).sql.upper()
