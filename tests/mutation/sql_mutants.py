"""Mutation operators over the SQL files in ``sql/``: one small change per mutant, Jinja intact.

The SQL is tokenized by hand (Jinja blocks, comments and strings are opaque tokens), so a
mutant is the original text with exactly one span replaced, and `{% ... %}` structure never
moves. Operators (``OPERATORS``), each applied at every place it fits:

- ``compare``: ``<`` ↔ ``<=``, ``>`` ↔ ``>=``, ``=`` → ``<>``, ``<>``/``!=`` → ``=``
- ``logic``: ``and`` ↔ ``or`` (not the ``and`` of ``between``), ``bool_and`` ↔ ``bool_or``
- ``drop_conjunct``: remove one operand of an ``and`` chain (``and x`` or the first ``x and``)
- ``order``: flip ``asc`` ↔ ``desc`` of one ORDER BY item, or add ``desc`` to it
- ``min_max``: ``min`` ↔ ``max``, ``arg_min`` ↔ ``arg_max``, ``least`` ↔ ``greatest``
- ``coalesce``: drop the last argument of ``coalesce``/``ifnull``
- ``case_swap``: swap two adjacent ``when … then …`` branches, or the last ``then`` and the
  ``else`` results
- ``null_check``: ``is null`` ↔ ``is not null``

>>> [m.describe() for m in mutants_of("q.sql", "select 1 where a < b -- a < b")]
['q.sql:1: < → <=']
>>> len(mutants_of("q.sql", "select '{{ x < y }}', '<'"))
0
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import jinja2

_TOKEN = re.compile(
    r"""
    (?P<jinja_stmt>\{%.*?%\})
  | (?P<jinja_expr>\{\{.*?\}\})
  | (?P<comment>\{\#.*?\#\}|--[^\n]*|/\*.*?\*/)
  | (?P<string>'(?:[^']|'')*')
  | (?P<ident>"(?:[^"]|"")*")
  | (?P<ws>\s+)
  | (?P<param>\$\w+)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|<>|!=|==|::|:=|=>|\|\||->>|->|[<>=])
  | (?P<punct>.)
    """,
    re.VERBOSE | re.DOTALL,
)

# Words that end an operand of `and` at its own depth (outside a nested case).
_STOP_WORDS = frozenset(
    "and or where group order qualify having window limit offset union except intersect from "
    "join inner left right full cross semi anti natural asof positional on using then when "
    "else end as select".split()
)
_ORDER_END = frozenset(
    "limit offset rows range groups qualify window union except intersect having fetch".split()
)
_COMPARE = {"<": "<=", "<=": "<", ">": ">=", ">=": ">", "=": "<>", "<>": "=", "!=": "="}
_MIN_MAX = {"min": "max", "max": "min", "arg_min": "arg_max", "arg_max": "arg_min"}
_MIN_MAX |= {"min_by": "max_by", "max_by": "min_by", "least": "greatest", "greatest": "least"}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    start: int
    end: int
    depth: int  # parenthesis depth before the token

    @property
    def word(self) -> str:
        """The lowercased text of a word token, else ``""``."""
        return self.text.lower() if self.kind == "word" else ""


@dataclass(frozen=True)
class Mutant:
    """One change: ``text[start:end]`` of ``path`` becomes ``replacement``."""

    path: str
    operator: str
    start: int
    end: int
    replacement: str
    line: int
    original: str
    shown: str = ""  # what describe() prints after the line, when the span is long

    @property
    def id(self) -> str:
        return f"{self.path}:{self.line}:{self.operator}:{self.start}"

    def apply(self, text: str) -> str:
        return text[: self.start] + self.replacement + text[self.end :]

    def describe(self) -> str:
        """``file:line: original → mutated`` with whitespace collapsed."""
        change = self.shown or f"{_short(self.original)} → {_short(self.replacement) or '∅'}"
        return f"{self.path}:{self.line}: {change}"


def _short(text: str, width: int = 90) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def tokenize(text: str) -> list[Token]:
    """The code tokens of ``text`` (no whitespace or comments), with their paren depth.

    >>> [(t.kind, t.text, t.depth) for t in tokenize("f(a) {{ b }} -- c")][1:]
    [('punct', '(', 0), ('word', 'a', 1), ('punct', ')', 1), ('jinja_expr', '{{ b }}', 0)]
    """
    tokens, depth = [], 0
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "punct"
        if kind in ("ws", "comment"):
            continue
        tokens.append(Token(kind, match.group(), match.start(), match.end(), depth))
        if match.group() in ("(", "["):
            depth += 1
        elif match.group() in (")", "]"):
            depth = max(depth - 1, 0)
    return tokens


def _between_ands(tokens: list[Token]) -> set[int]:
    """Indexes of the ``and`` that belongs to a ``between … and …``."""
    pending: dict[int, bool] = {}
    found = set()
    for i, tok in enumerate(tokens):
        if tok.word == "between":
            pending[tok.depth] = True
        elif tok.word == "and" and pending.get(tok.depth):
            pending[tok.depth] = False
            found.add(i)
    return found


def _is_stop(tok: Token, depth: int, cases: int, skip: set[int], i: int) -> bool:
    if tok.kind == "jinja_stmt" or tok.depth < depth or tok.text == ")" and tok.depth <= depth:
        return True
    if tok.depth > depth or cases > 0 or i in skip:
        return False
    return tok.word in _STOP_WORDS or tok.text in (",", ";")


def _operand_end(tokens: list[Token], i: int, skip: set[int]) -> int:
    """Index just past the right operand of the ``and`` at ``i``."""
    depth, cases, j = tokens[i].depth, 0, i + 1
    while j < len(tokens) and not _is_stop(tokens[j], depth, cases, skip, j):
        if tokens[j].depth == depth:
            cases += {"case": 1, "end": -1}.get(tokens[j].word, 0)
        j += 1
    return j


def _operand_start(tokens: list[Token], i: int, skip: set[int]) -> int:
    """Index of the first token of the left operand of the ``and`` at ``i``."""
    depth, cases, j = tokens[i].depth, 0, i - 1
    while j >= 0:
        tok = tokens[j]
        if tok.depth == depth and tok.word == "end":
            cases += 1
        elif tok.depth == depth and tok.word == "case" and cases > 0:
            cases -= 1
        elif _is_stop(tok, depth, cases, skip, j):
            break
        j -= 1
    return j + 1


class _Source:
    """A file's text and tokens, and a factory of its mutants."""

    def __init__(self, path: str, text: str) -> None:
        self.path, self.text, self.tokens = path, text, tokenize(text)
        self.between = _between_ands(self.tokens)

    def mutant(self, operator: str, start: int, end: int, new: str, shown: str = "") -> Mutant:
        line = self.text.count("\n", 0, start) + 1
        return Mutant(self.path, operator, start, end, new, line, self.text[start:end], shown)

    def span(self, first: int, last: int) -> tuple[int, int]:
        """Character span of tokens ``first..last`` inclusive."""
        return self.tokens[first].start, self.tokens[last].end

    def followed_by_paren(self, i: int) -> bool:
        return i + 1 < len(self.tokens) and self.tokens[i + 1].text == "("


def _compare(src: _Source) -> Iterator[Mutant]:
    for tok in src.tokens:
        if tok.kind == "op" and tok.text in _COMPARE:
            yield src.mutant("compare", tok.start, tok.end, _COMPARE[tok.text])


def _logic(src: _Source) -> Iterator[Mutant]:
    swap = {"and": "or", "or": "and", "bool_and": "bool_or", "bool_or": "bool_and"}
    for i, tok in enumerate(src.tokens):
        nxt = src.tokens[i + 1].word if i + 1 < len(src.tokens) else ""
        if tok.word in swap and i not in src.between and nxt != "replace":
            if tok.word.startswith("bool_") and not src.followed_by_paren(i):
                continue
            yield src.mutant("logic", tok.start, tok.end, swap[tok.word])


def _drop_conjunct(src: _Source) -> Iterator[Mutant]:
    toks = src.tokens
    for i, tok in enumerate(toks):
        if tok.word != "and" or i in src.between:
            continue
        end = _operand_end(toks, i, src.between)
        if end > i + 1:
            yield src.mutant("drop_conjunct", *src.span(i, end - 1), "")
        start = _operand_start(toks, i, src.between)
        before = toks[start - 1] if start > 0 else None
        first_of_chain = before is None or before.word != "and" or start - 1 in src.between
        if start < i and first_of_chain:
            yield src.mutant("drop_conjunct", toks[start].start, toks[i + 1].start, "")


def _order_items(src: _Source, by: int) -> Iterator[list[int]]:
    """Token indexes of each item of the ORDER BY whose ``by`` is at ``by``."""
    depth, item = src.tokens[by].depth, []
    for j in range(by + 1, len(src.tokens)):
        tok = src.tokens[j]
        if tok.kind == "jinja_stmt" or tok.depth < depth or tok.text == ")" and tok.depth == depth:
            break
        if tok.depth == depth and (tok.word in _ORDER_END or tok.text == ";"):
            break
        if tok.depth == depth and tok.text == ",":
            yield item
            item = []
        else:
            item.append(j)
    if item:
        yield item


def _order(src: _Source) -> Iterator[Mutant]:
    toks = src.tokens
    for i, tok in enumerate(toks[:-1]):
        if tok.word != "order" or toks[i + 1].word != "by":
            continue
        for item in _order_items(src, i + 1):
            words = [toks[j].word for j in item]
            if words[-2:] in (["nulls", "first"], ["nulls", "last"]):
                item = item[:-2]
            if not item:
                continue
            last = toks[item[-1]]
            flip = {"asc": "desc", "desc": "asc"}.get(last.word)
            new = flip or f"{last.text} desc"
            yield src.mutant("order", last.start, last.end, new)


def _min_max(src: _Source) -> Iterator[Mutant]:
    for i, tok in enumerate(src.tokens):
        if tok.word in _MIN_MAX and src.followed_by_paren(i):
            yield src.mutant("min_max", tok.start, tok.end, _MIN_MAX[tok.word])


def _call_args(src: _Source, paren: int) -> tuple[list[list[int]], bool]:
    """Token indexes of each argument of the call whose ``(`` is at ``paren``, and whether
    a Jinja statement sits inside."""
    depth, args, arg, jinja = src.tokens[paren].depth + 1, [], [], False
    for j in range(paren + 1, len(src.tokens)):
        tok = src.tokens[j]
        jinja |= tok.kind == "jinja_stmt"
        if tok.depth == depth and tok.text == ")":
            break
        if tok.depth == depth and tok.text == ",":
            args.append(arg)
            arg = []
        else:
            arg.append(j)
    return [*args, arg], jinja


def _coalesce(src: _Source) -> Iterator[Mutant]:
    for i, tok in enumerate(src.tokens):
        if tok.word not in ("coalesce", "ifnull") or not src.followed_by_paren(i):
            continue
        args, jinja = _call_args(src, i + 1)
        if len(args) >= 2 and all(args) and not jinja:
            start = src.tokens[args[-2][-1]].end
            yield src.mutant("coalesce", start, src.tokens[args[-1][-1]].end, "")


def _case_branches(src: _Source, case: int) -> Iterator[tuple[str, int, int, int]]:
    """(``when``/``else``, first, then-or-else index, last) of each branch of the case at
    ``case``; a branch ends before the next branch, the ``end`` or a Jinja statement."""
    toks, depth, nested = src.tokens, src.tokens[case].depth, 0
    branch: list[int] = []
    for j in range(case + 1, len(toks)):
        tok = toks[j]
        if tok.depth < depth:
            break
        top = tok.depth == depth and nested == 0
        if top and (tok.word in ("when", "else", "end") or tok.kind == "jinja_stmt"):
            if len(branch) >= 2:
                yield _branch(toks, branch)
            branch = [j] if tok.word in ("when", "else") else []
            if tok.word == "end":
                return
            continue
        if tok.depth == depth:
            nested += {"case": 1, "end": -1}.get(tok.word, 0)
        if branch:
            branch.append(j)


def _branch(toks: list[Token], branch: list[int]) -> tuple[str, int, int, int]:
    kind = toks[branch[0]].word
    pivot = (
        branch[0]
        if kind == "else"
        else next(
            (
                j
                for j in branch
                if toks[j].word == "then" and toks[j].depth == toks[branch[0]].depth
            ),
            -1,
        )
    )
    return kind, branch[0], pivot, branch[-1]


def _has_jinja(toks: list[Token], branch: tuple[str, int, int, int]) -> bool:
    return any(t.kind == "jinja_stmt" for t in toks[branch[1] : branch[3] + 1])


def _case_swap(src: _Source) -> Iterator[Mutant]:
    text, toks = src.text, src.tokens
    for i, tok in enumerate(toks):
        if tok.word != "case":
            continue
        branches = [b for b in _case_branches(src, i) if b[2] >= 0 and not _has_jinja(toks, b)]
        for a, b in zip(branches, branches[1:], strict=False):
            if a[0] == "when" and b[0] == "when":
                (s1, e1), (s2, e2) = src.span(a[1], a[3]), src.span(b[1], b[3])
                new = text[s2:e2] + text[e1:s2] + text[s1:e1]
                shown = f"swap {_short(text[s1:e1], 40)} ↔ {_short(text[s2:e2], 40)}"
                yield src.mutant("case_swap", s1, e2, new, shown)
            elif a[0] == "when" and b[0] == "else" and a[2] < a[3]:
                (s1, e1), (s2, e2) = src.span(a[2] + 1, a[3]), src.span(b[2] + 1, b[3])
                new = text[s2:e2] + text[e1:s2] + text[s1:e1]
                shown = f"then {_short(text[s1:e1], 40)} ↔ else {_short(text[s2:e2], 40)}"
                yield src.mutant("case_swap", s1, e2, new, shown)


def _null_check(src: _Source) -> Iterator[Mutant]:
    toks = src.tokens
    for i, tok in enumerate(toks[:-1]):
        if tok.word != "is":
            continue
        if toks[i + 1].word == "null":
            yield src.mutant("null_check", tok.start, toks[i + 1].end, "is not null")
        elif toks[i + 1].word == "not" and i + 2 < len(toks) and toks[i + 2].word == "null":
            yield src.mutant("null_check", tok.start, toks[i + 2].end, "is null")


OPERATORS: dict[str, Callable[[_Source], Iterator[Mutant]]] = {
    "case_swap": _case_swap,
    "drop_conjunct": _drop_conjunct,
    "compare": _compare,
    "logic": _logic,
    "null_check": _null_check,
    "order": _order,
    "min_max": _min_max,
    "coalesce": _coalesce,
}


def mutants_of(path: str, text: str) -> list[Mutant]:
    """Every mutant of one SQL file, in file order; each still parses as a Jinja template.

    >>> sql = "select * from t where a = 1 and b between 1 and 2 order by c"
    >>> for m in mutants_of("q.sql", sql):
    ...     print(m.operator, "|", m.apply(sql))
    drop_conjunct | select * from t where b between 1 and 2 order by c
    compare | select * from t where a <> 1 and b between 1 and 2 order by c
    logic | select * from t where a = 1 or b between 1 and 2 order by c
    drop_conjunct | select * from t where a = 1  order by c
    order | select * from t where a = 1 and b between 1 and 2 order by c desc
    """
    src = _Source(path, text)
    env = jinja2.Environment()
    found: dict[tuple[int, int, str], Mutant] = {}
    for operator in OPERATORS.values():
        for mutant in operator(src):
            key = (mutant.start, mutant.end, mutant.replacement)
            if mutant.replacement != mutant.original and key not in found:
                found[key] = mutant
    result = []
    for mutant in sorted(found.values(), key=lambda m: (m.start, m.end)):
        try:
            env.parse(mutant.apply(text))
        except jinja2.TemplateSyntaxError:
            continue  # an operator's mistake, not a mutant: never run it
        result.append(mutant)
    return result
