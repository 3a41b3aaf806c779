"""Templates cannot build huge strings (issue 9, item 2): ``~``, ``+``, ``join``, ``format``
and ``str.format`` results are capped inside the template, not only the final output."""

from __future__ import annotations

import pytest

from pipelines.channels.render import MAX_OUTPUT, Renderer, UnsafeTemplate

BIG = "{% set s = 'x' * 60000 %}"


@pytest.mark.parametrize(
    "body",
    [
        BIG + "{% set s = s ~ s %}{{ s | length }}",
        BIG + "{% set s = s + s %}{{ s | length }}",
        BIG + "{{ [s, s] | join | length }}",
        BIG + "{{ ('%s%s' | format(s, s)) | length }}",
        BIG + "{{ '{}{}'.format(s, s) | length }}",
    ],
    ids=["tilde", "plus", "join", "format-filter", "str-format"],
)
def test_a_template_cannot_build_a_string_beyond_the_cap(tmp_path, body):
    with pytest.raises(UnsafeTemplate, match=str(MAX_OUTPUT)):
        Renderer(tmp_path).render_string(body, {})


def test_strings_under_the_cap_still_render(tmp_path):
    out = Renderer(tmp_path).render_string("{% set s = 'ab' ~ 'cd' %}{{ [s, s] | join('-') }}", {})
    assert out == "abcd-abcd"
