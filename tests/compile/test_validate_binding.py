"""Every condition is bound against the schema's types before a run (issue 9, item 1)."""

from __future__ import annotations

import pytest

from pipelines.compile.condition import ConditionSchema, compile_condition
from pipelines.errors import ConditionError

SCHEMA = ConditionSchema(
    contact={"email": "VARCHAR", "lead_score": "VARCHAR"}, account={"employees": "BIGINT"}
)


@pytest.mark.parametrize(
    ("text", "scope", "types"),
    [
        ("lead_score BETWEEN 30 AND 100", "audience", "VARCHAR"),
        ("account.employees = 'many'", "audience", "INT64"),
        ("enrollment.emails_sent = 'two'", "step", "INT64"),
    ],
)
def test_a_condition_whose_types_do_not_fit_is_rejected(text, scope, types):
    with pytest.raises(ConditionError, match=types):
        compile_condition(text, SCHEMA, scope=scope)


def test_conditions_that_fit_still_compile():
    compile_condition("account.employees = '12' and lead_score = '30'", SCHEMA)
