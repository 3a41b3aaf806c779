"""Rendering step content from Jinja templates in a locked-down sandbox (SPEC 6 "Emails").

Templates are written by analysts and fed with contact data that anyone can type into a form,
so both sides are untrusted. The environment is Jinja's ``ImmutableSandboxedEnvironment``
(no ``__class__`` walks, no mutation of lists and dicts) plus caps the sandbox does not give:

- a loop budget: every ``{% for %}`` iterates through a counter shared by the whole render,
  so nested loops cannot multiply into billions of iterations; ``range`` is capped too;
- every string or list built inside the template (``~``, ``+``, ``*``, filters such as
  ``join`` and ``format``, calls such as ``str.format``) is capped at :data:`MAX_OUTPUT`, so
  ``{% set s = s ~ s %}`` repeated stops at twice the cap instead of building a gigabyte;
- ``*``, ``**`` and ``%`` are intercepted so ``'x' * 10**9`` or ``10**10**10`` fail fast;
- every call and filter refuses integer arguments above :data:`MAX_INT_ARG`
  (``'x'|center(10**9)``, ``'{:>999999999}'.format(1)`` style width tricks);
- the output is capped at :data:`MAX_OUTPUT` characters.

Templates see plain dicts only (``contact``, ``account``, ``owner``, ``sequence``, ``step``,
``links``); a field that is missing or NULL is undefined, and ``StrictUndefined`` turns its use
without ``| default(...)`` into a :class:`RenderError`, which the send step records as ``held``.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import re
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.visitor import NodeTransformer

from pipelines.errors import SequencerError

MAX_OUTPUT = 100_000  # characters per rendered part
MAX_LOOP_ITEMS = 10_000  # loop iterations per render, all loops together
MAX_INT_ARG = 10_000  # largest integer a call or filter may receive (widths, counts)
HTML_SUFFIXES = (".html", ".htm", ".html.j2", ".htm.j2")


class RenderError(SequencerError):
    """A step cannot be rendered: the action becomes ``held`` with this message."""


class UnsafeTemplate(RenderError):
    """The template tried something the sandbox forbids (a ``SecurityError``) or hit a cap."""


class _Budget:
    def __init__(self) -> None:
        self.items = 0

    def take(self) -> None:
        self.items += 1
        if self.items > MAX_LOOP_ITEMS:
            raise SecurityError(f"loops exceeded {MAX_LOOP_ITEMS} iterations")


_budget: ContextVar[_Budget | None] = ContextVar("render_budget", default=None)


def _budgeted(iterable: Iterable[Any]) -> Iterator[Any]:
    budget = _budget.get()
    for item in iterable:
        if budget is not None:
            budget.take()
        yield item


def _loop_budget(value: Any) -> Any:
    """The filter every ``{% for %}`` iterable is wrapped in (see ``_parse``)."""
    return _budgeted(value)


def _safe_range(*args: int) -> range:
    rng = range(*args)
    if len(rng) > MAX_LOOP_ITEMS:
        raise SecurityError(f"range of {len(rng)} items exceeds {MAX_LOOP_ITEMS}")
    return rng


def _check_args(args: Iterable[Any]) -> None:
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > MAX_INT_ARG:
            raise SecurityError(f"integer argument {arg} exceeds {MAX_INT_ARG}")
        if isinstance(arg, str) and len(arg) > MAX_OUTPUT:
            raise SecurityError(f"string argument longer than {MAX_OUTPUT}")


_WIDE_FORMAT = re.compile(r"\d{5,}")


def _check_format(spec: Any) -> None:
    if isinstance(spec, str) and _WIDE_FORMAT.search(spec):
        raise SecurityError("format width too large")


def _capped(value: Any) -> Any:
    """A string (or list) built inside a template may not exceed :data:`MAX_OUTPUT`: checked
    after each ``~``, ``+``, filter and call, so doubling stops at twice the cap."""
    if isinstance(value, str | list | tuple) and len(value) > MAX_OUTPUT:
        raise SecurityError(f"a string or list inside the template exceeds {MAX_OUTPUT}")
    return value


def _guard_filter(name: str, func: Any) -> Any:
    @functools.wraps(func)  # keeps jinja's pass_context / pass_eval_context marker
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _check_args(args[1:])
        _check_args(kwargs.values())
        if name == "format" and args:
            _check_format(args[0])
        return _capped(func(*args, **kwargs))

    return guarded


class ConfinedLoader(FileSystemLoader):
    """A loader that reads only files whose resolved path (symlinks followed) stays inside
    its folder: ``../x``, absolute names and links that leave it are refused, never read."""

    def __init__(self, folder: Path) -> None:
        super().__init__(str(folder))
        self.folder = Path(folder).resolve()

    def get_source(self, environment: Any, template: str) -> Any:
        path = (self.folder / template).resolve()
        if not path.is_relative_to(self.folder):
            raise SecurityError(f"template {template!r} resolves outside the templates folder")
        return super().get_source(environment, template)


class SequencerSandbox(ImmutableSandboxedEnvironment):
    """The sandbox with loop, size and argument caps (see the module docstring)."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(undefined=StrictUndefined, **kwargs)
        self.globals["range"] = _safe_range
        self.filters = {name: _guard_filter(name, f) for name, f in self.filters.items()}
        self.filters["_loop_budget"] = _loop_budget
        self.filters["_capped"] = _capped

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, "_loop_budget", [], [], None, None)
        return _cap_concats(tree)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise SecurityError(f"exponent {right} too large")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(n, int):
                    if len(seq) * n > MAX_OUTPUT:
                        raise SecurityError(f"repetition result exceeds {MAX_OUTPUT}")
        if operator == "%":
            _check_format(left)
        return _capped(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        _check_args(args)
        _check_args(kwargs.values())
        # str.format / format_map arrive wrapped by the sandbox; the string is the format
        _check_format(getattr(getattr(__obj, "__wrapped__", __obj), "__self__", None))
        return _capped(super().call(__context, __obj, *args, **kwargs))


class _ConcatCapper(NodeTransformer):
    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:  # noqa: N802 (jinja's visitor)
        self.generic_visit(node)
        return nodes.Filter(node, "_capped", [], [], None, None)


def _cap_concats(tree: nodes.Template) -> nodes.Template:
    """Every ``a ~ b`` result goes through the ``_capped`` filter."""
    return _ConcatCapper().visit(tree)


def plain(value: Any) -> Any:
    """A value as a template may see it: scalars pass, anything else becomes its string."""
    if value is None or isinstance(value, str | int | float | bool | Decimal | dt.date):
        return value
    if isinstance(value, dict):
        return record(value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return str(value)


def record(row: dict[str, Any] | None) -> dict[str, Any]:
    """A database row as a template dict; NULL columns are left out so they are undefined."""
    return {str(k): plain(v) for k, v in (row or {}).items() if v is not None}


@dataclass(frozen=True)
class Rendered:
    """A rendered body: always a text part; ``html`` for email bodies."""

    text: str
    html: str


class Renderer:
    """Renders strings and template files of one workspace.

    >>> r = Renderer(Path("/nonexistent"))
    >>> r.render_string("Hi {{ contact.first_name | default('there') }}", {"contact": {}})
    'Hi there'
    """

    def __init__(self, templates_dir: Path) -> None:
        self.templates_dir = Path(templates_dir)
        self.text_env = SequencerSandbox(
            loader=ConfinedLoader(self.templates_dir), autoescape=False
        )
        self.html_env = SequencerSandbox(loader=ConfinedLoader(self.templates_dir), autoescape=True)
        self._strings: dict[str, Any] = {}

    def render_string(self, source: str, context: dict[str, Any]) -> str:
        """Render an inline template (subject, note, SMS body) as plain text."""
        template = self._strings.get(source)
        if template is None:
            template = self._guard(lambda: self.text_env.from_string(source), "inline")
            self._strings[source] = template
        return self._run(template, context, "inline template")

    def render_subject(self, source: str, context: dict[str, Any]) -> str:
        """A subject is one line: line breaks (from data or template) become spaces."""
        return " ".join(self.render_string(source, context).split())

    def render_file(self, name: str, context: dict[str, Any]) -> Rendered:
        """Render ``templates/<name>``: ``.html.j2`` is autoescaped HTML with a derived text
        part; anything else (``.md.j2``, ``.txt.j2``) is text with a derived HTML part."""
        is_html = name.endswith(HTML_SUFFIXES)
        env = self.html_env if is_html else self.text_env
        template = self._guard(lambda: env.get_template(name), name)
        out = self._run(template, context, name)
        if is_html:
            return Rendered(text=html_to_text(out), html=out)
        return Rendered(text=_MD_LINK.sub(r"\1 (\2)", out), html=text_to_html(out))

    def _guard(self, load: Any, name: str) -> Any:
        try:
            return load()
        except SecurityError as exc:
            raise UnsafeTemplate(f"template {name}: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise RenderError(f"template {name}: not UTF-8 text (byte {exc.start})") from exc
        except TemplateError as exc:
            raise RenderError(f"template {name}: {type(exc).__name__}: {exc}") from exc

    def _run(self, template: Any, context: dict[str, Any], name: str) -> str:
        token = _budget.set(_Budget())
        try:
            out = template.render(context)
        except SecurityError as exc:
            raise UnsafeTemplate(f"{name}: unsafe template: {exc}") from exc
        except (TemplateError, RecursionError, OverflowError, MemoryError) as exc:
            raise RenderError(f"{name}: {type(exc).__name__}: {exc}") from exc
        except Exception as exc:  # a filter fed bad data (e.g. int('abc')) — still held
            raise RenderError(f"{name}: {type(exc).__name__}: {exc}") from exc
        finally:
            _budget.reset(token)
        if len(out) > MAX_OUTPUT:
            raise UnsafeTemplate(f"{name}: output exceeds {MAX_OUTPUT} characters")
        return out


_MD_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)|(https?://[^\s<>\"')\]]+)")


def text_to_html(text: str) -> str:
    """Markdown-ish text → HTML: escaped, blank lines make paragraphs, single newlines ``<br>``,
    ``[label](https://…)`` and bare URLs become links. Nothing else of Markdown is honoured.

    >>> text_to_html("Hi <b>\\n\\nSee [docs](https://x.example/a?b=1&c=2)")
    '<p>Hi &lt;b&gt;</p>\\n<p>See <a href="https://x.example/a?b=1&amp;c=2">docs</a></p>'
    """
    paragraphs = [p.strip("\n") for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    return "\n".join(f"<p>{_inline(p).replace(chr(10), '<br>' + chr(10))}</p>" for p in paragraphs)


def _inline(text: str) -> str:
    out, pos = [], 0
    for m in _LINK.finditer(text):
        out.append(html.escape(text[pos : m.start()], quote=False))
        end = m.end()
        if m.group(2):
            label, url = m.group(1), m.group(2)
        else:  # a bare URL does not take the sentence's closing punctuation
            url = label = m.group(3).rstrip(".,;:!?")
            end = m.start() + len(url)
        out.append(f'<a href="{html.escape(url)}">{html.escape(label, quote=False)}</a>')
        pos = end
    out.append(html.escape(text[pos:], quote=False))
    return "".join(out)


def html_to_text(markup: str) -> str:
    """A crude text part for an HTML template: links keep their URL, tags go, entities decode."""
    markup = re.sub(
        r'<a\s[^>]*href="([^"]*)"[^>]*>(.*?)</a>', r"\2 (\1)", markup, flags=re.I | re.S
    )
    markup = re.sub(r"<(br|/p|/div|/h\d|/li)\b[^>]*>", "\n", markup, flags=re.I)
    markup = re.sub(r"<[^>]+>", "", markup)
    return re.sub(r"\n{3,}", "\n\n", html.unescape(markup)).strip() + "\n"
