"""Did-you-mean hints for unknown columns (issue 9, item 1)."""

from __future__ import annotations

import pytest

from pipelines.compile.condition import ConditionSchema, compile_condition
from pipelines.errors import ConditionError

SCHEMA = ConditionSchema(contact={"email": "VARCHAR", "lifecycle_stage": "VARCHAR"}, account={})


@pytest.mark.parametrize(
    ("text", "scope", "hint"),
    [
        ("lifecycle_stag = 'lead'", "audience", "contact.lifecycle_stage"),
        ("emails_sent > 0", "step", "enrollment.emails_sent"),
        ('email = "NA"', "audience", "'NA'"),
    ],
)
def test_an_unknown_column_comes_with_a_hint(text, scope, hint):
    with pytest.raises(ConditionError, match="did you mean") as caught:
        compile_condition(text, SCHEMA, scope=scope)
    assert hint in caught.value.message
