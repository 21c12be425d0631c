"""What a page shows, as text, and which of it is English: shared by the i18n page tests.

Visible text is collected from a layout or a callback's answer the way a reader meets it:
components' children, labels, placeholders and titles, dropdown and checklist options, table
headers and cells, and every text of a figure (titles, axis titles, annotations, legend names,
tick texts, category labels, hover templates' words). A word counts as English when it occurs in
the English side of the catalogues or of the questionnaire (or is a common English word) and
never in the language's own texts; names and codes (words with digits or underscores, acronyms,
user names, item ids, country codes) are never English.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from typing import Any

from reintegration.i18n import catalogue
from reintegration.i18n_catalogues import extract
from reintegration.questionnaire import load_questionnaire

_COMPONENT_TEXT = ("children", "label", "placeholder", "title")
_FIGURE_TEXT = ("text", "name", "hovertemplate", "texttemplate", "ticktext")
_FIGURE_CATEGORIES = ("x", "y", "labels")
STOP_WORDS = frozenset(
    """the of and to in is are for with by not or on at from this that these those be been has
    have was were will can may each every all any more less than no yes none which who whose
    what when where how why here there their its it they them we you your our only also
    returnee returnees score scores mean share page figure figures survey surveys round rounds
    month months country countries download upload filter filters select choose show shows
    showing loading rows row column columns file files batch batches model models version user
    users token level levels dimension interviews interview enumerators weighted unweighted
    please click log out overview breakdowns trajectories worklist quality admin""".split()
)
_NAMES = frozenset({"admin", "analyst", "manager", "enumerator", "scoped"})
# Components whose content is stored data written by people or by training, not the interface
# (a model card is a document of its model version).
DATA_IDS = frozenset({"models-card"})
_WORD = re.compile(r"[A-Za-z][A-Za-z’']*[A-Za-z]|[A-Za-z]")
_TEMPLATE = re.compile(r"%\{[^}]*\}|<[^>]+>|\{[^}]*\}")


def visible_texts(node: Any) -> list[str]:
    """Every string a reader sees in a Dash layout (JSON) or in a callback's outputs."""
    found: list[str] = []
    _walk(node, found)
    return [s for s in found if s.strip()]


def output_texts(
    response: dict[str, Any], known: dict[str, dict[str, Any]] | None = None
) -> list[str]:
    """:func:`visible_texts` of a callback answer (``{"response": {id: {prop: value}}}``);
    ``known`` holds the page's components' props (a table's columns say which cells are
    dropdowns when an answer sends only the rows)."""
    found: list[str] = []
    for element, props in (response.get("response") or {}).items():
        if element not in DATA_IDS:
            columns = (known or {}).get(element, {}).get("columns")
            _props(props, found, table=True, columns=columns)
    return [s for s in found if s.strip()]


def _walk(node: Any, found: list[str]) -> None:
    if isinstance(node, dict):
        if isinstance(node.get("props"), dict) and "type" in node:
            if node["props"].get("id") not in DATA_IDS:
                _props(node["props"], found, table=node["type"] == "DataTable")
            return
        for value in node.values():
            _walk(value, found)
    elif isinstance(node, list):
        for value in node:
            _walk(value, found)


def _strings(value: Any, found: list[str]) -> None:
    if isinstance(value, str):
        found.append(value)
    elif isinstance(value, int | float):
        return
    else:
        _walk(value, found)


def _props(props: dict[str, Any], found: list[str], *, table: bool, columns: Any = None) -> None:
    for key, value in props.items():
        if key in _COMPONENT_TEXT:
            _strings(value, found)
        elif key == "options" and isinstance(value, list):
            for option in value:
                if isinstance(option, dict):
                    _strings(option.get("label"), found)
                elif isinstance(option, str):
                    found.append(option)
        elif key == "figure" and isinstance(value, dict):
            found.extend(figure_texts(value))
        elif key == "columns" and isinstance(value, list):
            for column in value:
                if isinstance(column, dict):
                    name = column.get("name")
                    found.extend([name] if isinstance(name, str) else list(name or []))
        elif key == "data" and table and isinstance(value, list):
            # A dropdown cell shows its option's label (collected with the table's dropdown
            # options), not the canonical code it holds.
            dropdowns = {
                c.get("id")
                for c in props.get("columns") or columns or []
                if isinstance(c, dict) and c.get("presentation") == "dropdown"
            }
            for row in value:
                if isinstance(row, dict):
                    found.extend(
                        v for k, v in row.items() if isinstance(v, str) and k not in dropdowns
                    )
        elif key == "marks" and isinstance(value, dict):
            found.extend(str(v) for v in value.values() if isinstance(v, str))
        elif isinstance(value, dict | list):
            _walk(value, found)


def figure_texts(figure: dict[str, Any]) -> list[str]:
    """The words of a Plotly figure: titles, axis titles, annotations, legend names, tick texts,
    categories on its axes, hover templates."""
    found: list[str] = []

    def walk(node: Any, key: str | None = None) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            if key in _FIGURE_CATEGORIES or key in _FIGURE_TEXT:
                found.extend(v for v in node if isinstance(v, str))
            for v in node:
                if isinstance(v, dict | list):
                    walk(v, key)
        elif isinstance(node, str) and key in _FIGURE_TEXT:
            found.append(node)

    walk(figure)
    return found


@functools.cache
def english_words() -> frozenset[str]:
    """Words of the platform's English texts: the catalogues' msgids, the questionnaire."""
    words: set[str] = set(STOP_WORDS)
    for message in extract():
        if not message.id:
            continue
        for text in message.id if isinstance(message.id, tuple) else [message.id]:
            words |= _words(text)
    q = load_questionnaire()
    for text in _questionnaire_texts(q, "en"):
        words |= _words(text)
    return frozenset(words)


@functools.cache
def own_words(language: str) -> frozenset[str]:
    """Latin-script words the language's own texts use (``ROC``, ``JSON``, ``Dakar``, French
    words that English shares)."""
    words: set[str] = set()
    for translation in catalogue(language).values():
        for text in translation if isinstance(translation, tuple) else [translation]:
            words |= _words(text)
    for text in _questionnaire_texts(load_questionnaire(), language):
        words |= _words(text)
    return frozenset(words)


def _questionnaire_texts(q: Any, language: str) -> Iterator[str]:
    yield q.title.get(language, "")
    for labels in q.groups.values():
        yield labels.get(language, "")
    for option in q.missing_codes:
        yield option.labels.get(language, "")
    for item in q.items:
        yield item.question.get(language, "")
        for option in item.options:
            yield option.labels.get(language, "")
    for field in q.metadata:
        yield field.labels.get(language, "")
        for option in (*field.choices, *((field.exclusive,) if field.exclusive else ())):
            yield option.labels.get(language, "")


def _words(text: str) -> set[str]:
    out = set()
    for token in _TEMPLATE.sub(" ", text).split():
        if re.search(r"[\d_@/=]|[A-Za-z]-[A-Za-z]", token) or "." in token.strip(".,;:!?)("):
            continue  # a code, an id, a name (reintegration-risk), a number, a file, an address
        for word in _WORD.findall(token):
            if (word.isupper() and len(word) > 1) or len(word) == 1:
                continue  # an acronym or a country code; a lone letter (n = 12) says nothing
            out.add(word.lower().replace("’", "'"))
    return out


@functools.cache
def codes() -> frozenset[str]:
    """Canonical column names and answer codes, which files and messages keep in English (a
    common English word among them, such as ``no``, still counts as English)."""
    q = load_questionnaire()
    found = {f.name for f in q.metadata} | set(q.item_ids)
    for field in q.metadata:
        found |= {
            o.code for o in (*field.choices, *((field.exclusive,) if field.exclusive else ()))
        }
    for item in q.items:
        found |= {o.code for o in item.options}
    found |= {o.code for o in q.missing_codes}
    return frozenset(c.lower() for c in found) - STOP_WORDS


def english_in(texts: Iterable[str], language: str, names: Iterable[str] = ()) -> list[str]:
    """The texts holding a word that is English and not ``language``'s (names excepted)."""
    english = english_words() - own_words(language) - _NAMES - codes()
    english -= {n.lower() for n in names}
    flagged = []
    for text in texts:
        hits = sorted(w for w in _words(text) if w in english)
        if hits:
            flagged.append(f"{text[:120]!r} ({', '.join(hits)})")
    return sorted(set(flagged))
