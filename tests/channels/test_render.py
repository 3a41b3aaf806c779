"""Rendering in the sandbox: placeholders, escaping, and the template-injection regressions."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from pipelines.channels.render import MAX_OUTPUT, Renderer, RenderError, UnsafeTemplate, record

CONTEXT = {
    "contact": record({"first_name": "<b>Ann</b>", "email": "a@x.example", "nickname": None}),
    "account": record({"name": "Acme", "employees": 120}),
    "owner": {"id": "alice", "name": "Alice"},
    "sequence": {"name": "outbound"},
    "step": {"id": "intro", "day": 1},
    "links": {"unsubscribe_url": "https://t.example/u/tok"},
}


@pytest.fixture
def renderer(tmp_path):
    (tmp_path / "intro.md.j2").write_text(
        "Hi {{ contact.first_name }},\n\nRead [this](https://x.example/a?b=1&c=2) or "
        "https://y.example/z.\nBye {{ owner.name }}\n"
    )
    (tmp_path / "offer.html.j2").write_text(
        '<p>Hi {{ contact.first_name }}</p><a href="https://x.example/o">offer</a>'
    )
    (tmp_path / "loop.md.j2").write_text("{% for i in range(3) %}{{ i }}{% endfor %}")
    return Renderer(tmp_path)


def test_placeholders_defaults_and_plain_dicts(renderer):
    out = renderer.render_string(
        "{{ contact.first_name }} at {{ account.name }} ({{ account.employees + 1 }}), "
        "{{ contact.last_name | default('n/a') }}",
        CONTEXT,
    )
    assert out == "<b>Ann</b> at Acme (121), n/a"


def test_missing_and_null_fields_raise_render_error(renderer):
    with pytest.raises(RenderError, match="last_name"):
        renderer.render_string("Hi {{ contact.last_name }}", CONTEXT)
    # a NULL column is undefined too, so `default` applies and bare use is held
    assert renderer.render_string("{{ contact.nickname | default('x') }}", CONTEXT) == "x"
    with pytest.raises(RenderError):
        renderer.render_string("{{ contact.nickname }}", CONTEXT)
    with pytest.raises(RenderError):
        renderer.render_string("{{ unknown_global }}", CONTEXT)


def test_markdown_template_text_and_escaped_html(renderer):
    out = renderer.render_file("intro.md.j2", CONTEXT)
    assert out.text.startswith("Hi <b>Ann</b>,")
    assert "this (https://x.example/a?b=1&c=2)" in out.text
    assert "<b>Ann</b>" not in out.html and "&lt;b&gt;Ann&lt;/b&gt;" in out.html
    assert '<a href="https://x.example/a?b=1&amp;c=2">this</a>' in out.html
    assert '<a href="https://y.example/z">https://y.example/z</a>.' in out.html
    assert out.html.count("<p>") == 2 and "<br>" in out.html


def test_html_template_is_autoescaped(renderer):
    out = renderer.render_file("offer.html.j2", CONTEXT)
    assert "<p>Hi &lt;b&gt;Ann&lt;/b&gt;</p>" in out.html
    assert "offer (https://x.example/o)" in out.text


def test_subject_is_one_line(renderer):
    ctx = {**CONTEXT, "contact": {"first_name": "Ann\r\nBcc: evil@x.example"}}
    assert renderer.render_subject("Hi {{ contact.first_name }}", ctx) == (
        "Hi Ann Bcc: evil@x.example"
    )


def test_small_loops_work(renderer):
    assert renderer.render_file("loop.md.j2", CONTEXT).text == "012"


def test_unknown_template_is_held(renderer):
    with pytest.raises(RenderError):
        renderer.render_file("nope.md.j2", CONTEXT)
    with pytest.raises(RenderError):
        renderer.render_file("../../etc/passwd", CONTEXT)


def test_dates_are_usable(renderer):
    ctx = {"contact": record({"created_at": dt.datetime(2026, 3, 2, 9, 30)})}
    assert renderer.render_string("{{ contact.created_at.strftime('%Y') }}", ctx) == "2026"


# --- template injection: each must raise (→ held) or render nothing dangerous ---------------

INJECTIONS = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__.os }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__ }}",
    "{{ self.__init__.__globals__ }}",
    "{{ contact.__class__ }}",
    "{{ ('{0.__class__}'|attr('format'))(1) }}",
    "{{ '{0.__class__.__mro__}'.format(1) }}",
    "{{ '{x.__class__}'.format_map({'x': 1}) }}",
    "{{ contact|attr('__class__') }}",
    "{{ contact.update({'first_name': 'x'}) }}",
    "{% for i in range(10**9) %}{% endfor %}",
    "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
    "{% set s = 'x' * 9000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
    "{{ 'x' * 1000000000 }}",
    "{{ ['x'] * 1000000000 }}",
    "{{ 10 ** 1000000 }}",
    "{{ 'x'|center(1000000000) }}",
    "{{ 'x'|indent(1000000000, true) }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ '%999999999d' % 1 }}",
    "{{ '%999999999d'|format(1) }}",
    "{{ lipsum(1000000) }}",
    "{% set x = 'a' * 60000 %}{{ x ~ x }}",
    "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
]


@pytest.mark.parametrize("source", INJECTIONS)
def test_injection_is_refused(renderer, source):
    started = time.monotonic()
    try:
        out = renderer.render_string(source, CONTEXT)
    except RenderError:
        pass  # held
    else:
        assert "class" not in out and "globals" not in out and "<module" not in out
        assert len(out) <= MAX_OUTPUT
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ ('{0.__class__}'|attr('format'))(1) }}",
        "{{ '{x.__class__}'.format_map({'x': 1}) }}",
        "{% for i in range(10**9) %}{% endfor %}",
        "{{ 'x' * 1000000000 }}",
    ],
)
def test_named_regressions_raise_security_held(renderer, source):
    """The brief's named cases end as UnsafeTemplate (from jinja2's SecurityError)."""
    with pytest.raises(UnsafeTemplate):
        renderer.render_string(source, CONTEXT)
