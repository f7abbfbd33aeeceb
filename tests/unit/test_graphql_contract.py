"""graphql/ is the experience contract: the checked-in SDL matches the code, and portal operations validate."""

from __future__ import annotations

from pathlib import Path

from graphql import parse, validate

from experience_apis.routes import portal_operations
from experience_apis.schema import build_schema

SDL = Path(__file__).resolve().parents[2] / "graphql" / "schema.graphql"


def test_checked_in_sdl_matches_the_schema() -> None:
    # On drift: `make schema` rewrites graphql/schema.graphql; review the diff like an API change.
    assert SDL.read_text() == str(build_schema()).rstrip() + "\n"


def test_every_portal_operation_is_valid_against_the_schema() -> None:
    schema = build_schema()._schema
    operations = portal_operations()
    assert operations, "the customer portal needs at least one persisted operation"
    for document_id, text in operations.items():
        assert document_id.startswith("sha256:")
        assert validate(schema, parse(text)) == [], document_id
