"""Sentence templates: what a rule says, in words, about the values it observed.

Pure: no I/O, no clock of its own.  A template is text with placeholders ``{field}``,
``{field|filter}`` or ``{field?words when it has none}`` (a dotted path into the item, or
``value``, ``limit``, ``count``) and optional segments ``[...]`` that are left out when a
placeholder inside has no value.  Shared by the centre
(findings, incidents, notifications) and the agent (``tillsyn-agent check``).  Format:
docs/policy.md ("Sentences").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from evidence.model import parse_utc
from evidence.operators import parse_duration

SPECIAL = ("value", "limit", "count")
"""Placeholders that are not fields of an item: the item (or checked value) itself, the rule's
threshold (a duration in words), and the number of items checked."""
KINDS = ("failing", "passing", "unknown", "resolved", "empty")
"""failing/unknown/resolved: one sentence per item (of a list) or for the value; passing and empty:
one sentence for the whole check (empty: a list with nothing in it)."""
ITEMS_NAMED = 3
"""A sentence names at most this many items, then says how many more."""


@dataclass(frozen=True)
class Slot:
    path: str
    filters: Tuple[Tuple[str, str], ...] = ()
    """(name, argument) pairs: ``{count|plural:socket}``."""
    otherwise: Optional[str] = None
    """Said when the field has no value: ``{process.name?a process not seen}``."""


Part = Union[str, Slot, Tuple[Union[str, Slot], ...]]
"""A literal, a placeholder, or an optional segment of literals and placeholders."""


@dataclass(frozen=True)
class Template:
    text: str
    parts: Tuple[Part, ...]

    def fields(self) -> List[str]:
        """The item fields the template reads (not the special names)."""
        out: List[str] = []
        for part in self.parts:
            for piece in part if isinstance(part, tuple) else (part,):
                if isinstance(piece, Slot) and piece.path not in SPECIAL:
                    out.append(piece.path)
        return out


def _age(seconds: float) -> str:
    if seconds < 90 * 60:
        return f"{max(0, round(seconds / 60))} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def duration_words(seconds: float) -> str:
    """``26 h``, ``31 days``, ``15 min``, ``90 s``: a threshold as a person writes it."""
    if seconds >= 3 * 86400 and seconds % 86400 == 0:
        return f"{seconds / 86400:g} days"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def _moment(value: Any) -> Optional[datetime]:
    if not isinstance(value, str):
        return None
    text = value + "T00:00:00Z" if len(value) == 10 else value
    try:
        return parse_utc(text)
    except ValueError:
        return None


def _ago(value: Any, now: datetime) -> Optional[str]:
    moment = _moment(value)
    if moment is None:
        return None
    seconds = (now - moment).total_seconds()
    return f"{_age(seconds)} ago" if seconds >= 0 else f"{_age(-seconds)} in the future"


def _date(value: Any, _now: datetime) -> Optional[str]:
    moment = _moment(value)
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%d") if len(str(value)) == 10 else moment.strftime("%Y-%m-%d %H:%M UTC")


def _minutes(value: Any, _now: datetime) -> Optional[str]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return f"{round(value / 60)} min"


def _duration(value: Any, _now: datetime) -> Optional[str]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return _age(float(value))


def _pct(value: Any, _now: datetime) -> Optional[str]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return f"{value:g} %"


def _list(value: Any, _now: datetime) -> Optional[str]:
    if not isinstance(value, list):
        return None
    shown = [words(v) for v in value if v is not None]
    return ", ".join(shown) if shown else None


def _names(value: Any, _now: datetime) -> Optional[str]:
    """The ``name`` of each item of a list: ``ClamAV, Defender``."""
    if not isinstance(value, list):
        return None
    shown = [str(v.get("name")) for v in value if isinstance(v, Mapping) and v.get("name") is not None]
    return ", ".join(shown) if shown else None


def _addr(value: Any, _now: datetime) -> Optional[str]:
    """An IPv6 address in brackets, so ``{address|addr}:{port}`` reads ``[::]:23``."""
    if not isinstance(value, str):
        return None
    return f"[{value}]" if ":" in value else value


CHANGE_WORDS = {"attributes": "given a new owner, group or mode"}
"""A file_integrity change kind after "was": created, modified and deleted read as they are."""


def _change(value: Any, _now: datetime) -> Optional[str]:
    """A file change kind in words: ``/etc/shadow was given a new owner, group or mode``."""
    if not isinstance(value, str):
        return None
    return CHANGE_WORDS.get(value, value)


FILTERS: Dict[str, Callable[[Any, datetime], Optional[str]]] = {
    "ago": _ago,
    "date": _date,
    "minutes": _minutes,
    "duration": _duration,
    "pct": _pct,
    "list": _list,
    "addr": _addr,
    "names": _names,
    "change": _change,
}
PLURAL = "plural"
"""``{count|plural:socket}``: ``1 socket``, ``2 sockets`` (an ``s`` added; ``plural:UPS:UPS`` for
a word that does not change)."""


def _plural(value: Any, arg: str) -> Optional[str]:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    one, _, many = arg.partition(":")
    return f"{value} {one if value == 1 else (many or one + 's')}"


def words(value: Any) -> str:
    """A fact in words: yes/no for booleans, ``g`` for numbers, lists joined, mappings as ``k v``."""
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(words(v) for v in value if v is not None) or "none"
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {words(v)}" for k, v in value.items() if v is not None) or "none"
    return str(value)


def _slot(inner: str, text: str) -> Slot:
    body, question, otherwise = inner.partition("?")
    path, *names = [piece.strip() for piece in body.split("|")]
    if not path or not all(p.isidentifier() for p in path.split(".")):
        raise ValueError(f"{{{inner}}}: expected a field such as {{name}} or {{runtime_s|minutes}} in {text!r}")
    filters = []
    for spec in names:
        name, _, arg = spec.partition(":")
        if name not in FILTERS and name != PLURAL:
            known = ", ".join(sorted([*FILTERS, PLURAL]))
            raise ValueError(f"{{{inner}}}: unknown filter {name!r} (known: {known})")
        if (name == PLURAL) != bool(arg):
            raise ValueError(f"{{{inner}}}: only plural takes a word (plural:socket)")
        filters.append((name, arg))
    return Slot(path, tuple(filters), otherwise if question else None)


def parse_template(text: Any) -> Template:
    """Parse ``text``; ``ValueError`` says what is wrong.  ``{{``, ``}}``, ``[[``, ``]]`` are literal."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("expected a non-empty sentence")
    parts: List[Part] = []
    group: Optional[List[Union[str, Slot]]] = None
    literal = ""
    i = 0
    while i < len(text):
        char = text[i]
        pair = text[i : i + 2]
        if pair in ("{{", "}}", "[[", "]]"):
            literal += char
            i += 2
            continue
        if char in "{[]}":
            target = group if group is not None else parts
            if literal:
                target.append(literal)
                literal = ""
            if char == "{":
                end = text.find("}", i)
                if end < 0:
                    raise ValueError(f"unclosed {{ in {text!r}")
                target.append(_slot(text[i + 1 : end], text))
                i = end + 1
                continue
            if char == "[":
                if group is not None:
                    raise ValueError(f"optional segments [...] do not nest, in {text!r}")
                group = []
            elif char == "]":
                if group is None:
                    raise ValueError(f"] without [ in {text!r}")
                parts.append(tuple(group))
                group = None
            else:
                raise ValueError(f"}} without {{ in {text!r}")
            i += 1
            continue
        literal += char
        i += 1
    if group is not None:
        raise ValueError(f"unclosed [ in {text!r}")
    if literal:
        parts.append(literal)
    return Template(text, tuple(parts))


@dataclass(frozen=True)
class Context:
    """What a template is rendered with besides the item: the threshold and the count."""

    now: datetime
    limit: Any = None
    count: Optional[int] = None
    value: Any = None
    """The checked value, when the item is the whole observed mapping (a rule on one value)."""
    whole: bool = False


def _lookup(item: Any, path: str, ctx: Context) -> Any:
    if path == "value":
        return ctx.value if ctx.whole else item
    if path == "limit":
        return ctx.limit
    if path == "count":
        return ctx.count
    if isinstance(item, Mapping) and path in item:  # a field shown as ``process.name`` keeps its dotted key
        return item[path]
    for step in path.split("."):
        if not isinstance(item, Mapping) or step not in item:
            return None
        item = item[step]
    return item


def _fill(slot: Slot, item: Any, ctx: Context) -> Optional[str]:
    value = _lookup(item, slot.path, ctx)
    for name, arg in slot.filters:
        value = _plural(value, arg) if name == PLURAL else FILTERS[name](value, ctx.now)
        if value is None:
            break
    if value is None or value == []:
        return slot.otherwise
    return value if isinstance(value, str) else words(value)


def render(template: Template, item: Any, ctx: Context) -> str:
    """The sentence for ``item``; a placeholder without a value reads ``unknown`` unless it is in
    an optional segment, which is then left out whole."""
    out = ""
    for part in template.parts:
        if isinstance(part, str):
            out += part
        elif isinstance(part, Slot):
            filled = _fill(part, item, ctx)
            out += "unknown" if filled is None else filled
        else:
            pieces = [p if isinstance(p, str) else _fill(p, item, ctx) for p in part]
            if all(p is not None for p in pieces):
                out += "".join(str(p) for p in pieces)
    return " ".join(out.split())


def limit_of(op: Optional[str], value: Any) -> Any:
    """A rule's threshold as it is said: a duration in words for a time limit, else the value."""
    if op == "max_age" and value is not None:
        try:
            return duration_words(parse_duration(value))
        except ValueError:
            return value
    return value


def label(item: Any) -> str:
    """A readable default name of an item for a rule without a sentence: its shown values."""
    if isinstance(item, Mapping):
        values = [words(v) for v in item.values() if v is not None and v != []]
        return ", ".join(values)[:200] or "an item"
    return words(item)


def join(sentences: Sequence[str]) -> str:
    """At most :data:`ITEMS_NAMED` sentences, then how many more."""
    named = [s for s in sentences if s][:ITEMS_NAMED]
    rest = len([s for s in sentences if s]) - len(named)
    return "; ".join(named) + (f"; and {rest} more" if rest > 0 else "")


def parse_say(data: Any, where: str, shown: Sequence[str]) -> Dict[str, Template]:
    """The ``say`` mapping of a rule; ``shown`` (the check's ``show``, empty: any field) bounds the
    fields a template may read, so a sentence never names a fact the finding does not keep."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected a mapping of {', '.join(KINDS)} to sentences")
    out: Dict[str, Template] = {}
    for kind, text in data.items():
        if kind not in KINDS:
            raise ValueError(f"{where}.{kind}: unknown key (known: {', '.join(KINDS)})")
        try:
            template = parse_template(text)
        except ValueError as err:
            raise ValueError(f"{where}.{kind}: {err}") from err
        if shown and kind in ("failing", "unknown", "resolved"):
            for path in template.fields():
                if path.split(".")[0] not in {s.split(".")[0] for s in shown}:
                    raise ValueError(f"{where}.{kind}: {{{path}}} is not among the fields shown ({', '.join(shown)})")
        out[str(kind)] = template
    return out
