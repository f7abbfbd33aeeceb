"""The mapping file format (``mappings/<vendor>.toml``), read into typed rules and checked at load.

The format is documented at the top of ``mappings/salesforce.toml``. Loading checks every
canonical target against the canonical models, so a typo in a mapping fails at startup with
the file and entry named, never as a confusing 422 on the first event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.fields import FieldInfo

from app.canonical.contract import ContractIn
from app.errors import field_error
from app.types import BusinessDate

__all__ = [
    "ContractEvent",
    "FieldRule",
    "Kind",
    "ListRule",
    "MappingFileError",
    "VendorMapping",
    "parse_mapping",
]

Kind = Literal["text", "decimal", "integer", "date", "date_at_midnight_utc", "keys"]
KINDS: tuple[Kind, ...] = get_args(Kind)
Path = tuple[str, ...]


class ContractEvent(BaseModel):
    """The event around a contract state: its version and, for an amendment, when and why."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=100_000)
    effective_date: BusinessDate | None = None
    reason: str | None = Field(default=None, max_length=1000)

    @model_validator(mode="after")
    def _amendment_dated(self) -> ContractEvent:
        if self.version > 1 and self.effective_date is None:
            raise field_error("effective_date", "an amendment (a version above 1) needs its effective date")
        return self


class MappingFileError(ValueError):
    """A mapping file that cannot be used: raised at load, naming the file's entry."""


@dataclass(frozen=True)
class FieldRule:
    target: Path  # canonical, within its record (the contract, an item of a list, the event)
    source: Path  # vendor, within its record (the event's root, an item of the vendor list)
    kind: Kind = "text"
    values: Mapping[str, str] | None = None
    separator: str = ";"


@dataclass(frozen=True)
class ListRule:
    target: str
    source: Path
    fields: tuple[FieldRule, ...]
    objects: tuple[Path, ...]  # nested objects of an item, created even when empty (errors land on leaves)
    max_items: int | None  # the canonical list's own limit, checked before any item is read


@dataclass(frozen=True)
class VendorMapping:
    vendor: str
    subject: Path
    constants: Mapping[str, str]
    contract: tuple[FieldRule, ...]
    objects: tuple[Path, ...]  # nested contract objects created even when empty: all but the optional ones
    lists: tuple[ListRule, ...]
    event: tuple[FieldRule, ...]


def parse_mapping(vendor: str, document: Mapping[str, Any]) -> VendorMapping:
    """Typed rules from one mapping file's TOML document; ``MappingFileError`` when it is unusable."""
    _only(document, {"subject", "optional_objects", "constants", "contract", "lists", "event"}, vendor)
    optional = document.get("optional_objects", [])
    if not isinstance(optional, list) or not all(isinstance(o, str) for o in optional):
        raise MappingFileError(f"{vendor}: optional_objects must be a list of canonical object names")
    constants = _table(document, "constants", vendor)
    for name, value in constants.items():
        _check_target(ContractIn, (name,), f"{vendor}: constants.{name}")
        if not isinstance(value, str):
            raise MappingFileError(f"{vendor}: constants.{name} must be a string")
    contract = _rules(_table(document, "contract", vendor), ContractIn, f"{vendor}: contract")
    lists = tuple(
        _list_rule(name, spec, f"{vendor}: lists.{name}") for name, spec in _table(document, "lists", vendor).items()
    )
    event = _rules(_table(document, "event", vendor), ContractEvent, f"{vendor}: event")
    if not any(rule.target == ("version",) for rule in event):
        raise MappingFileError(f"{vendor}: event.version must say where the version comes from")
    return VendorMapping(
        vendor=vendor,
        subject=_path(document.get("subject"), f"{vendor}: subject"),
        constants=dict(constants),
        contract=contract,
        objects=_objects(contract, frozenset(optional)),
        lists=lists,
        event=event,
    )


def _only(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise MappingFileError(f"{where}: unknown entries {', '.join(unknown)}")


def _table(document: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any]:
    table = document.get(name, {})
    if not isinstance(table, dict):
        raise MappingFileError(f"{where}: {name} must be a table")
    return table


def _path(value: Any, where: str) -> Path:
    if not isinstance(value, str) or not all(value.split(".")):
        raise MappingFileError(f"{where}: expected a dotted field path such as Contract.Id")
    return tuple(value.split("."))


def _rules(table: Mapping[str, Any], model: type[BaseModel], where: str) -> tuple[FieldRule, ...]:
    return tuple(_field_rule(target, spec, model, f"{where}.{target}") for target, spec in table.items())


def _field_rule(target: str, spec: Any, model: type[BaseModel], where: str) -> FieldRule:
    path = _path(target, where)
    _check_target(model, path, where)
    if isinstance(spec, str):
        return FieldRule(path, _path(spec, where))
    if not isinstance(spec, dict):
        raise MappingFileError(f"{where}: expected a vendor field path or a table with `from`")
    _only(spec, {"from", "type", "values", "separator"}, where)
    kind = spec.get("type", "text")
    if kind not in KINDS:
        raise MappingFileError(f"{where}: type must be one of {', '.join(KINDS)}")
    values = spec.get("values")
    if values is not None and (
        kind != "text" or not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values())
    ):
        raise MappingFileError(f"{where}: values must be a table of text to text, on a text field")
    separator = spec.get("separator", ";")
    if not isinstance(separator, str) or not separator:
        raise MappingFileError(f"{where}: separator must be a non-empty string")
    return FieldRule(path, _path(spec.get("from"), where), kind, values, separator)


def _list_rule(name: str, spec: Any, where: str) -> ListRule:
    if not isinstance(spec, dict):
        raise MappingFileError(f"{where}: expected a table with `from` and `fields`")
    _only(spec, {"from", "fields"}, where)
    info = ContractIn.model_fields.get(name)
    item = _model_in(info.annotation) if info is not None else None
    if info is None or item is None:
        raise MappingFileError(f"{where}: ContractIn has no list of objects named {name}")
    fields = _rules(_table(spec, "fields", where), item, f"{where}.fields")
    return ListRule(name, _path(spec.get("from"), where), fields, _objects(fields, frozenset()), _max_length(info))


def _objects(rules: tuple[FieldRule, ...], optional: frozenset[str]) -> tuple[Path, ...]:
    found = {rule.target[:end] for rule in rules for end in range(1, len(rule.target))}
    return tuple(sorted(path for path in found if path[0] not in optional))


def _check_target(model: type[BaseModel], path: Path, where: str) -> None:
    current: type[BaseModel] | None = model
    for depth, name in enumerate(path):
        info = current.model_fields.get(name) if current is not None else None
        if info is None:
            raise MappingFileError(f"{where}: the canonical model has no field {'.'.join(path[: depth + 1])}")
        current = _model_in(info.annotation)
    if current is not None:
        raise MappingFileError(f"{where}: {'.'.join(path)} is an object; map its fields one by one")


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (``CustomerRef``, ``DocumentRef | None``, ``list[MilestoneIn]``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _max_length(info: FieldInfo) -> int | None:
    for constraint in info.metadata:
        limit = getattr(constraint, "max_length", None)
        if isinstance(limit, int):
            return limit
    return None
