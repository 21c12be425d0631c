"""The questionnaire as data: load and check the versioned spec file once.

Everything that knows an item id, an option code, a value or a weight reads it from here.
The spec (``reintegration/spec/rss-v1.yaml``) follows ``RSS.md``; a malformed spec fails on
load with a :class:`~reintegration.errors.SpecError` that names the item at fault.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

from reintegration.errors import SpecError

DEFAULT_SPEC = Path(__file__).parent / "spec" / "rss-v1.yaml"

ITEM_TYPES = ("select_one", "select_multiple")
METADATA_KINDS = (
    "identifier",
    "case_number",
    "date",
    "choice",
    "multi_choice",
    "integer",
    "country",
    "text",
    "positive_number",
)
VALUE_RULES = ("one_minus_share",)


def normalise_answer(text: str) -> str:
    """Fold an answer or label for matching: trimmed, lower case, inner spaces collapsed, ’ as '.

    Examples
    --------
    >>> normalise_answer("  Very   Good ")
    'very good'
    >>> normalise_answer("Don’t know")
    "don't know"
    """
    return " ".join(text.replace("\u2019", "'").split()).lower()


@dataclass(frozen=True, eq=False)
class Option:
    """One answer option: its stored code, value in [0, 1] (None for codes without a value)
    and labels by language."""

    code: str
    labels: Mapping[str, str]
    value: float | None = None


@dataclass(frozen=True, eq=False)
class Item:
    """One scored question of the index."""

    id: str
    dimension: str
    type: str
    question: Mapping[str, str]
    weight: float
    options: tuple[Option, ...]
    not_applicable: tuple[Option, ...] = ()
    exclusive: Option | None = None
    value_rule: str | None = None
    scale: str | None = None

    @property
    def is_multiple(self) -> bool:
        return self.type == "select_multiple"


@dataclass(frozen=True, eq=False)
class MetadataField:
    """One metadata column of the canonical batch format."""

    name: str
    kind: str
    required_for: tuple[str, ...]
    labels: Mapping[str, str]
    choices: tuple[Option, ...] = ()
    exclusive: Option | None = None
    minimum: int | None = None
    maximum: int | None = None
    not_after: str | None = None
    rejects_row_on: str | None = None


@dataclass(frozen=True, eq=False)
class IndexDefaults:
    """The parameters of the built-in index version (RSS.md, "Scores")."""

    name: str
    label: str
    dimensions: tuple[str, ...]
    dimension_weights: Mapping[str, float]
    min_coverage: float
    medium_from: float
    high_from: float
    sustainable_from: float
    sustainable_dimension_floor: float


@dataclass(frozen=True, eq=False)
class Questionnaire:
    """The whole spec: items, metadata columns, missing codes and index defaults."""

    spec_version: str
    form_id: str
    form_version: str
    title: Mapping[str, str]
    languages: tuple[str, ...]
    index: IndexDefaults
    groups: Mapping[str, Mapping[str, str]]
    missing_codes: tuple[Option, ...]
    items: tuple[Item, ...]
    metadata: tuple[MetadataField, ...]
    child_age_below: int
    _by_id: Mapping[str, Item] = field(default_factory=dict, repr=False)

    @property
    def item_ids(self) -> tuple[str, ...]:
        return tuple(item.id for item in self.items)

    def item(self, item_id: str) -> Item:
        return self._by_id[item_id]

    def items_of(self, dimension: str) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.dimension == dimension)

    def item_weights(self) -> dict[str, dict[str, float]]:
        """Item weights nested by dimension, in spec order."""
        return {d: {i.id: i.weight for i in self.items_of(d)} for d in self.index.dimensions}

    def metadata_field(self, name: str) -> MetadataField:
        for f in self.metadata:
            if f.name == name:
                return f
        raise KeyError(name)

    def required_columns(self, command: str) -> tuple[str, ...]:
        return tuple(f.name for f in self.metadata if command in f.required_for)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every canonical column: metadata first, then items."""
        return tuple(f.name for f in self.metadata) + self.item_ids


@functools.cache
def load_questionnaire(path: Path | str = DEFAULT_SPEC) -> Questionnaire:
    """Load and check a questionnaire spec; cached, so the file is read once per process.

    Parameters
    ----------
    path : path-like
        A YAML spec file; the default is the spec that ships with the package.

    Returns
    -------
    Questionnaire

    Raises
    ------
    SpecError
        When the file is unreadable or any part of it breaks the rules of ``RSS.md``; the
        message names the item (or section) at fault.

    Examples
    --------
    >>> q = load_questionnaire()
    >>> len(q.items), q.index.label
    (26, 'rss-v1-provisional')
    """
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"the questionnaire spec {path} cannot be read: {exc}") from exc
    if not isinstance(raw, dict):
        raise SpecError(f"the questionnaire spec {path} is not a mapping")
    return _build(raw)


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _build(raw: dict[str, Any]) -> Questionnaire:
    languages = tuple(_require(raw, "languages", "the spec"))
    if "en" not in languages:
        raise SpecError("the spec must carry English labels (languages lacks 'en')")
    index = _index(_require(raw, "index", "the spec"))
    missing = tuple(
        _option(o, "missing_codes", languages, valued=False)
        for o in _require(raw, "missing_codes", "the spec")
    )
    scales = {
        name: tuple(_option(o, f"scale {name}", languages, valued=True) for o in options)
        for name, options in _require(raw, "scales", "the spec").items()
    }
    groups = _require(raw, "groups", "the spec")
    items = tuple(
        _item(r, scales, index, languages, missing) for r in _require(raw, "items", "the spec")
    )
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise SpecError(f"item {item.id}: the id appears twice in the spec")
        seen.add(item.id)
    for dimension in index.dimensions:
        if dimension not in groups:
            raise SpecError(f"dimension {dimension}: no group label in the spec")
        if not any(item.dimension == dimension for item in items):
            raise SpecError(f"dimension {dimension}: no item belongs to it")
    metadata = tuple(_metadata(r, languages) for r in _require(raw, "metadata", "the spec"))
    clash = seen & {f.name for f in metadata}
    if clash:
        raise SpecError(f"item {sorted(clash)[0]}: the id is also a metadata column")
    return Questionnaire(
        spec_version=str(_require(raw, "spec_version", "the spec")),
        form_id=str(_require(raw, "form_id", "the spec")),
        form_version=str(_require(raw, "form_version", "the spec")),
        title=_labels(_require(raw, "title", "the spec"), "the spec title", languages),
        languages=languages,
        index=index,
        groups={g: _labels(v, f"group {g}", languages) for g, v in groups.items()},
        missing_codes=missing,
        items=items,
        metadata=metadata,
        child_age_below=int(_require(raw, "child_age_below", "the spec")),
        _by_id={item.id: item for item in items},
    )


def _require(raw: Mapping[str, Any], key: str, where: str) -> Any:
    if not isinstance(raw, Mapping) or key not in raw or raw[key] is None:
        raise SpecError(f"{where}: '{key}' is missing")
    return raw[key]


def _number(value: Any, where: str) -> float:
    """A number, or a fraction written as text ("1/3"), as float."""
    if isinstance(value, bool):
        raise SpecError(f"{where}: {value!r} is not a number")
    try:
        return float(Fraction(str(value)))
    except (ValueError, ZeroDivisionError) as exc:
        raise SpecError(f"{where}: {value!r} is not a number") from exc


def _labels(raw: Any, where: str, languages: tuple[str, ...]) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise SpecError(f"{where}: labels must be a mapping of language to text")
    for lang in languages:
        text = raw.get(lang)
        if not isinstance(text, str) or not text.strip():
            raise SpecError(f"{where}: the {lang} label is missing or not text")
    return {lang: raw[lang] for lang in languages}


def _option(raw: Any, where: str, languages: tuple[str, ...], *, valued: bool) -> Option:
    code = raw.get("code") if isinstance(raw, Mapping) else None
    if not isinstance(code, str) or not code or code != code.strip() or " " in code:
        # YAML reads a bare yes/no as a boolean: the message says to quote it.
        raise SpecError(f"{where}: option code {code!r} must be text without spaces (quote yes/no)")
    value = None
    if valued:
        value = _number(
            _require(raw, "value", f"{where}, option {code}"), f"{where}, option {code}"
        )
        if not 0.0 <= value <= 1.0:
            raise SpecError(f"{where}, option {code}: value {value} is outside [0, 1]")
    return Option(
        code=code,
        labels=_labels(raw.get("label"), f"{where}, option {code}", languages),
        value=value,
    )


def _index(raw: Mapping[str, Any]) -> IndexDefaults:
    dims = tuple(_require(raw, "dimensions", "index"))
    weights = {
        d: _number(w, f"index, dimension weight {d}")
        for d, w in _require(raw, "dimension_weights", "index").items()
    }
    if set(weights) != set(dims):
        raise SpecError("index: dimension_weights must name exactly the dimensions")
    if any(w < 0 for w in weights.values()) or abs(sum(weights.values()) - 1.0) > 1e-9:
        raise SpecError("index: dimension weights must be non-negative and sum to 1")
    fields = (
        "min_coverage",
        "medium_from",
        "high_from",
        "sustainable_from",
        "sustainable_dimension_floor",
    )
    numbers = {f: _number(_require(raw, f, "index"), f"index, {f}") for f in fields}
    for f, v in numbers.items():
        if not 0.0 <= v <= 1.0:
            raise SpecError(f"index: {f} = {v} is outside [0, 1]")
    if numbers["medium_from"] > numbers["high_from"]:
        raise SpecError("index: medium_from must not exceed high_from")
    return IndexDefaults(
        name=str(_require(raw, "name", "index")),
        label=str(_require(raw, "label", "index")),
        dimensions=dims,
        dimension_weights=weights,
        **numbers,
    )


def _item(
    raw: Mapping[str, Any],
    scales: Mapping[str, tuple[Option, ...]],
    index: IndexDefaults,
    languages: tuple[str, ...],
    missing: tuple[Option, ...],
) -> Item:
    item_id = raw.get("id") if isinstance(raw, Mapping) else None
    if not isinstance(item_id, str) or not item_id.isidentifier():
        raise SpecError(f"item {item_id!r}: the id must be a lower-case identifier")
    where = f"item {item_id}"
    dimension = _require(raw, "dimension", where)
    if dimension not in index.dimensions:
        raise SpecError(
            f"{where}: dimension {dimension!r} is not one of {', '.join(index.dimensions)}"
        )
    item_type = _require(raw, "type", where)
    if item_type not in ITEM_TYPES:
        raise SpecError(f"{where}: type {item_type!r} is not one of {', '.join(ITEM_TYPES)}")
    weight = _number(_require(raw, "weight", where), f"{where}, weight")
    if weight <= 0:
        raise SpecError(f"{where}: weight must be positive")
    question = _labels(_require(raw, "question", where), f"{where}, question", languages)
    not_applicable = tuple(
        _option(o, where, languages, valued=False) for o in raw.get("not_applicable") or ()
    )
    exclusive = None
    value_rule = None
    scale = None
    if item_type == "select_one":
        scale = _require(raw, "scale", where)
        if scale not in scales:
            raise SpecError(f"{where}: scale {scale!r} is not defined")
        options = scales[scale]
    else:
        options = tuple(
            _option(o, where, languages, valued=False) for o in _require(raw, "choices", where)
        )
        exclusive = _option(_require(raw, "exclusive", where), where, languages, valued=False)
        value_rule = _require(raw, "value_rule", where)
        if value_rule not in VALUE_RULES:
            raise SpecError(
                f"{where}: value_rule {value_rule!r} is not one of {', '.join(VALUE_RULES)}"
            )
        if not_applicable:
            raise SpecError(f"{where}: a select-multiple item cannot have not-applicable codes")
    codes = [o.code for o in options] + [o.code for o in not_applicable] + [o.code for o in missing]
    if exclusive is not None:
        codes.append(exclusive.code)
    duplicated = {c for c in codes if codes.count(c) > 1}
    if duplicated:
        raise SpecError(f"{where}: option code {sorted(duplicated)[0]!r} appears twice")
    if not options:
        raise SpecError(f"{where}: no options")
    return Item(
        id=item_id,
        dimension=dimension,
        type=item_type,
        question=question,
        weight=weight,
        options=options,
        not_applicable=not_applicable,
        exclusive=exclusive,
        value_rule=value_rule,
        scale=scale,
    )


def _metadata(raw: Mapping[str, Any], languages: tuple[str, ...]) -> MetadataField:
    name = raw.get("name") if isinstance(raw, Mapping) else None
    if not isinstance(name, str) or not name.isidentifier():
        raise SpecError(f"metadata column {name!r}: the name must be an identifier")
    where = f"metadata column {name}"
    kind = _require(raw, "kind", where)
    if kind not in METADATA_KINDS:
        raise SpecError(f"{where}: kind {kind!r} is not one of {', '.join(METADATA_KINDS)}")
    choices = tuple(_option(o, where, languages, valued=False) for o in raw.get("choices") or ())
    if kind in ("choice", "multi_choice") and not choices:
        raise SpecError(f"{where}: a {kind} column needs choices")
    exclusive = raw.get("exclusive")
    rejects = raw.get("rejects_row_on")
    if rejects is not None and rejects not in {c.code for c in choices}:
        raise SpecError(f"{where}: rejects_row_on {rejects!r} is not one of its choices")
    return MetadataField(
        name=name,
        kind=kind,
        required_for=tuple(raw.get("required_for") or ()),
        labels=_labels(_require(raw, "label", where), f"{where}, label", languages),
        choices=choices,
        exclusive=_option(exclusive, where, languages, valued=False) if exclusive else None,
        minimum=raw.get("min"),
        maximum=raw.get("max"),
        not_after=raw.get("not_after"),
        rejects_row_on=rejects,
    )
