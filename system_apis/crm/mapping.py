"""Vendor CRM JSON -> canonical contract, driven by one data file per vendor in ``mappings/``.

The engine knows no vendor field: each rule of the mapping file (``mapping_spec``) reads one
vendor field, converts it by its declared type and puts it at its canonical place, recording
where every canonical location came from. ``ContractIn`` (and ``ContractEvent``) then validate
the result, and each of their errors is reported at the vendor's location
(``["body", "OpportunityLineItems", 0, "TotalPrice"]``). Amounts are read from the JSON text
itself (``json.loads(..., parse_float=Decimal)``), never through a float. Work is linear in the
payload: the body is parsed once, each rule walks its own path, and lists longer than the
canonical limit are refused before any item is read. Nothing raises for bad input.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from app.canonical.contract import ContractIn
from app.canonical.intake import ContractState, MappingFailure
from app.errors import FIELD_ERROR, FieldError
from system_apis.crm.mapping_spec import ContractEvent, FieldRule, ListRule, VendorMapping, parse_mapping
from system_apis.crm.port import MappedEvent

__all__ = ["MAPPINGS_DIR", "VendorMappings"]

MAPPINGS_DIR = Path(__file__).with_name("mappings")

M = TypeVar("M", bound=BaseModel)
VendorLoc = tuple[str | int, ...]
Loc = tuple[str | int, ...]

# C0 controls but tab/newline/CR (as app.http refuses in every body), and lone surrogates, which
# json.loads lets through ("\ud800") but PostgreSQL cannot store.
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MSG_MAX = 500
_SUBJECT_MAX = 200  # an ExternalId's limit: a longer "id" is not one
_EXPECTED = {"text": "text", "keys": "text", "date": "a date (YYYY-MM-DD)", "date_at_midnight_utc": "a date"}


class VendorMappings:
    """Every vendor mapping under ``mappings/``; implements ``system_apis.crm.port.CrmEvents``."""

    def __init__(self, mappings: Mapping[str, VendorMapping]) -> None:
        self._mappings = dict(mappings)

    @classmethod
    def load(cls, directory: Path | None = None) -> VendorMappings:
        """Read every ``*.toml`` of ``directory`` (the packaged ``mappings/`` by default); the vendor is its name."""
        found = {}
        for path in sorted((directory or MAPPINGS_DIR).glob("*.toml")):
            with path.open("rb") as file:
                found[path.stem] = parse_mapping(path.stem, tomllib.load(file))
        return cls(found)

    def vendors(self) -> list[str]:
        return sorted(self._mappings)

    def read_contract_event(self, vendor: str, body: bytes) -> MappedEvent:
        mapping = self._mappings.get(vendor)
        if mapping is None:
            return _failed(vendor, None, [FieldError(["path", "vendor"], f"no mapping for vendor {vendor!r}")])
        try:
            document = json.loads(body, parse_float=Decimal, parse_int=Decimal, parse_constant=_no_constant)
        except RecursionError:
            return _failed(vendor, None, [FieldError(["body"], "the JSON is nested too deeply")])
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError both are
            return _failed(vendor, None, [FieldError(["body"], f"not valid JSON: {exc}")])
        if not isinstance(document, dict):
            return _failed(vendor, None, [FieldError(["body"], "must be a JSON object")])
        return _Reading(mapping, document).result()


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")  # json.loads would make NaN / Infinity floats


def _failed(vendor: str, subject: str | None, errors: list[FieldError]) -> MappedEvent:
    count = f"{len(errors)} error" + ("s" if len(errors) != 1 else "")
    record = f" for {subject}" if subject else ""
    detail = f"the {vendor} event{record} cannot be mapped to a canonical contract ({count})"
    return MappedEvent(subject, MappingFailure(detail, errors))


class _Refused(Exception):
    """A vendor value its rule cannot take; ``str(self)`` says why."""


class _Reading:
    """One event read through one mapping: the canonical data, where each location came from, the errors."""

    def __init__(self, mapping: VendorMapping, document: dict[str, Any]) -> None:
        self.mapping, self.document = mapping, document
        self.errors: list[FieldError] = []
        self._seen: set[tuple[VendorLoc, str]] = set()
        self._refused: set[VendorLoc] = set()

    def result(self) -> MappedEvent:
        subject = self._subject()
        contract_origin: dict[Loc, VendorLoc] = {}
        contract = self._record(self.mapping.contract, self.mapping.objects, self.document, (), (), contract_origin)
        contract.update(self.mapping.constants)
        for rule in self.mapping.lists:
            items = self._items(rule, contract_origin)
            if items is not None:
                contract[rule.target] = [
                    self._item(rule, index, item, contract_origin) for index, item in enumerate(items)
                ]
        event_origin: dict[Loc, VendorLoc] = {}
        event = self._record(self.mapping.event, (), self.document, (), (), event_origin)
        # Errors of the canonical models that only echo a value refused above would say it twice.
        refused = frozenset(self._refused)
        checked_contract = self._validate(ContractIn, contract, contract_origin, refused)
        checked_event = self._validate(ContractEvent, event, event_origin, refused)
        if self.errors or checked_contract is None or checked_event is None:
            return _failed(self.mapping.vendor, subject, self.errors)
        state = ContractState(
            checked_contract, checked_event.version, checked_event.effective_date, checked_event.reason
        )
        return MappedEvent(subject, state)

    def _subject(self) -> str | None:
        value = self._lookup(self.document, self.mapping.subject, (), report=False)
        if not isinstance(value, str):
            return None
        value = value.strip()  # as the canonical ExternalId reads it, so both name the record alike
        return value if 0 < len(value) <= _SUBJECT_MAX and not _UNSAFE.search(value) else None

    def _record(
        self,
        rules: Iterable[FieldRule],
        objects: Iterable[tuple[str, ...]],
        source: Mapping[str, Any],
        at: VendorLoc,
        target: Loc,
        origin: dict[Loc, VendorLoc],
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for path in objects:  # so that "Field required" lands on each missing leaf, not on the object
            _place(out, path, None)
        for rule in rules:
            where = (*at, *rule.source)
            origin[(*target, *rule.target)] = where
            value = self._lookup(source, rule.source, at)
            if value is None:
                continue  # missing or null: the canonical default, or "Field required" at the vendor's field
            try:
                _place(out, rule.target, _convert(rule, value))
            except _Refused as refusal:
                self._refuse(where, str(refusal))
        return out

    def _items(self, rule: ListRule, origin: dict[Loc, VendorLoc]) -> list[Any] | None:
        origin[(rule.target,)] = rule.source
        value = self._lookup(self.document, rule.source, ())
        if value is None:
            return None
        if not isinstance(value, list):
            self._refuse(rule.source, "must be a list")
            return None
        if rule.max_items is not None and len(value) > rule.max_items:
            # The canonical list's own limit, before any item is read: a huge list costs one len().
            self._refuse(rule.source, f"at most {rule.max_items} items, not {len(value)}")
            return None
        return value

    def _item(self, rule: ListRule, index: int, item: Any, origin: dict[Loc, VendorLoc]) -> dict[str, Any]:
        at: VendorLoc = (*rule.source, index)
        origin[(rule.target, index)] = at
        if not isinstance(item, dict):
            self._refuse(at, "must be an object")
            return {}  # a placeholder keeps the indexes of the items after it
        return self._record(rule.fields, rule.objects, item, at, (rule.target, index), origin)

    def _lookup(self, record: Mapping[str, Any], path: tuple[str, ...], at: VendorLoc, report: bool = True) -> Any:
        node: Any = record
        for depth, key in enumerate(path):
            if not isinstance(node, dict):
                if report:
                    self._refuse((*at, *path[:depth]), "must be an object")
                return None
            node = node.get(key)
            if node is None:
                return None
        return node

    def _refuse(self, loc: VendorLoc, msg: str) -> None:
        self._refused.add(loc)
        self._add(loc, msg)

    def _add(self, loc: VendorLoc, msg: str) -> None:
        msg = msg if len(msg) <= _MSG_MAX else msg[:_MSG_MAX] + "…"  # "depends on unknown: <150,000 keys>"
        if (loc, msg) not in self._seen:  # one bad object under several rules is one error
            self._seen.add((loc, msg))
            self.errors.append(FieldError(["body", *loc], msg))

    def _validate(
        self, model: type[M], data: dict[str, Any], origin: Mapping[Loc, VendorLoc], refused: frozenset[VendorLoc]
    ) -> M | None:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                loc: Loc = tuple(error["loc"])
                if error["type"] == FIELD_ERROR:  # a model validator naming its field (app.errors.field_error)
                    loc += tuple(error.get("ctx", {}).get("field_loc", ()))
                where = _origin_of(loc, origin)
                if not any(where[:end] in refused for end in range(len(where) + 1)):
                    self._add(where, error["msg"].removeprefix("Value error, "))
            return None


def _origin_of(loc: Loc, origin: Mapping[Loc, VendorLoc]) -> VendorLoc:
    """The vendor location of a canonical one: its own, or its nearest enclosing one's (a key of depends_on)."""
    for end in range(len(loc), 0, -1):
        found = origin.get(loc[:end])
        if found is not None:
            return found
    return ()


def _place(out: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Put ``value`` at ``path``, creating the objects on the way; ``None`` only creates them."""
    for name in path[:-1] if value is not None else path:
        out = out.setdefault(name, {})
    if value is not None:
        out[path[-1]] = value


def _convert(rule: FieldRule, value: Any) -> Any:
    if rule.kind == "decimal":
        if isinstance(value, Decimal):
            # The exact text as sent (300000.00 stays 300000.00); "-0" would not read back as an amount.
            return value.copy_abs() if value.is_zero() else value
        if isinstance(value, str) and not _UNSAFE.search(value):
            return value  # a decimal string: the canonical amount type checks its shape
        raise _Refused(f"must be a number, not {_describe(value)}")
    if rule.kind == "integer":
        # adjusted() first: comparing or converting 1E+999999999 would build a huge integer.
        if isinstance(value, Decimal) and value.adjusted() < 9 and value == value.to_integral_value():
            return int(value)
        raise _Refused(f"must be a whole number, not {_describe(value)}")
    if not isinstance(value, str):
        raise _Refused(f"must be {_EXPECTED[rule.kind]}, not {_describe(value)}")
    if _UNSAFE.search(value):
        raise _Refused("must not contain control characters")
    if rule.values is not None:
        if value not in rule.values:
            allowed = ", ".join(repr(v) for v in rule.values)
            raise _Refused(f"{_excerpt(value)} is not a known value; expected one of {allowed}")
        return rule.values[value]
    if rule.kind == "date_at_midnight_utc":
        if not _DATE.fullmatch(value):
            raise _Refused(f"must be a date (YYYY-MM-DD), not {_excerpt(value)}")
        return f"{value}T00:00:00Z"
    if rule.kind == "keys":
        return [key for key in (part.strip() for part in value.split(rule.separator)) if key]
    return value


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return "a number"
    if isinstance(value, str):
        return f"the text {_excerpt(value)}"
    return "an object" if isinstance(value, dict) else "a list"


def _excerpt(text: str) -> str:
    # Echo enough to recognise the value, never a megabyte of it.
    return repr(text if len(text) <= 40 else text[:40] + "…")
