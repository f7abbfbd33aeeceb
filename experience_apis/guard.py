"""The strawberry extension that stops a hostile or mistaken GraphQL request before it costs anything.

strawberry drives the request (parse, validate, execute); at each step the guard acts first:

* parse: strawberry parses once, with the token limit of ``MaxTokensLimiter`` and a length limit
  set here, so an over-long document is refused by the lexer before any AST is built; the
  errors are then tagged (``GRAPHQL_PARSE_FAILED``, or ``GRAPHQL_LIMIT_EXCEEDED``).
* validate: ``hardening.check_document`` runs on the parsed document in linear time; when it
  refuses, graphql-core's rules never run (some of them are super-linear in what it bounds).
* execute: the variables are refused up front when they hold control characters or too many
  values, and are coerced to their declared types here (graphql-core would do it inside
  ``execute``, where a failure looks like an execution result), with the arguments that use
  each bad variable named.

A refusal is a strawberry ``PreExecutionError`` whose errors carry ``extensions.code``
(``experience_apis.graphql_errors``): the route answers it 400.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_operation_ast,
    get_variable_values,
)
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import PreExecutionError

from experience_apis.graphql_errors import (
    BAD_USER_INPUT,
    LIMIT_EXCEEDED,
    PARSE_FAILED,
    VALIDATION_FAILED,
    RequestError,
    tag,
)
from experience_apis.hardening import CONTROL_CHARACTERS, DocumentLimits, check_document

__all__ = ["MAX_VARIABLE_VALUES", "RequestGuard", "check_variables"]

# Strings, numbers, lists and objects all count: ids, filters and a page of ids fit many times over,
# and the walk that counts them stops here, so a body of a million list items costs no more.
MAX_VARIABLE_VALUES = 10_000
_MAX_REPORTED = 10
# graphql-core's messages for documents over its parser's limits (token count, source length).
_PARSER_LIMITS = ("tokens. Parsing aborted.", "code points. Parsing aborted.")

_ValuePath = tuple[Any, str | int] | None  # (parent path, key): O(1) per value, unrolled only on error


class RequestGuard(SchemaExtension):
    def __init__(self, limits: DocumentLimits, *, max_source_chars: int, hide_suggestions: bool) -> None:
        self.limits = limits
        self.max_source_chars = max_source_chars
        self.hide_suggestions = hide_suggestions

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        # graphql-core reads the option; strawberry's ParseOptions type does not list it.
        context.parse_options["max_source_length"] = self.max_source_chars  # type: ignore[typeddict-unknown-key]
        yield
        for error in context.pre_execution_errors or ():
            tag(error, LIMIT_EXCEEDED if error.message.endswith(_PARSER_LIMITS) else PARSE_FAILED)

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is not None and context.pre_execution_errors is None:
            refused = check_document(context.graphql_document, self.limits)
            if refused:
                context.pre_execution_errors = refused  # strawberry then skips its validation
        yield
        for error in context.pre_execution_errors or ():
            tag(error, VALIDATION_FAILED)

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        assert context.graphql_document is not None
        refused = check_variables(
            context.schema._schema,
            context.graphql_document,
            context.operation_name,
            context.variables or {},
            hide_suggestions=self.hide_suggestions,
        )
        if refused:
            context.result = PreExecutionError(data=None, errors=refused)  # strawberry then does not execute
        yield


def check_variables(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any],
    *,
    hide_suggestions: bool = False,
) -> list[GraphQLError]:
    """Why the variables cannot be used for the operation; empty when they can."""
    hostile = _hostile_values(variables)
    if hostile:
        return hostile
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return []  # graphql-core's execute reports the operation it cannot find
    coerced = get_variable_values(
        schema,
        operation.variable_definitions or (),
        variables,
        max_errors=_MAX_REPORTED,
        hide_suggestions=hide_suggestions,
    )
    if not isinstance(coerced, list):
        return []
    usages = _variable_usages(document, operation)
    errors: list[GraphQLError] = []
    for error in coerced:
        name = _variable_name(error)
        used = usages.get(name or "", [])
        message = f"{error.message} (used by {', '.join(used)})" if used else error.message
        loc = ["variables", name] if name else ["variables"]
        errors.append(RequestError(message, BAD_USER_INPUT, loc, nodes=error.nodes))
    return errors


def _hostile_values(variables: dict[str, Any]) -> list[GraphQLError]:
    """Control characters (in keys too) and a value count over the limit, in one iterative walk.

    Values are counted as their containers are opened, so a list of a million items is refused
    from its length, before any of it is walked.
    """
    errors: list[GraphQLError] = []
    counted = len(variables)
    stack: list[tuple[Any, _ValuePath]] = [(value, (None, key)) for key, value in variables.items()]
    while stack and counted <= MAX_VARIABLE_VALUES:
        value, path = stack.pop()
        key = path[1] if path else None
        bad_key = isinstance(key, str) and CONTROL_CHARACTERS.search(key)
        if bad_key or (isinstance(value, str) and CONTROL_CHARACTERS.search(value)):
            if len(errors) < _MAX_REPORTED:
                loc = _unroll(path)
                message = f"Variable '${loc[0]}' must not contain control characters (at {_dotted(loc)})"
                errors.append(RequestError(message, BAD_USER_INPUT, ["variables", *loc]))
        elif isinstance(value, dict | list):
            counted += len(value)
            if counted <= MAX_VARIABLE_VALUES:
                items = value.items() if isinstance(value, dict) else enumerate(value)
                stack.extend((item, (path, k)) for k, item in items)
    if counted > MAX_VARIABLE_VALUES:
        message = f"the variables hold more than {MAX_VARIABLE_VALUES} values"
        return [RequestError(message, LIMIT_EXCEEDED, ["variables"])]
    return errors


def _unroll(path: _ValuePath) -> list[str | int]:
    out: list[str | int] = []
    while path is not None:
        path, key = path
        out.append(key)
    return out[::-1]


def _dotted(loc: list[str | int]) -> str:
    return "".join(f"[{k}]" if isinstance(k, int) else (f".{k}" if i else k) for i, k in enumerate(loc))


def _variable_name(error: GraphQLError) -> str | None:
    for node in error.nodes or ():
        variable = getattr(node, "variable", None)
        if variable is not None:
            return str(variable.name.value)
    return None


def _variable_usages(document: DocumentNode, operation: OperationDefinitionNode) -> dict[str, list[str]]:
    """Which arguments use each variable (``contract(id:)``), in the operation and the fragments it reaches."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    usages: dict[str, list[str]] = {}
    visited: set[str] = set()
    stack: list[SelectionSetNode] = [operation.selection_set]
    while stack:
        for selection in stack.pop().selections:
            if isinstance(selection, FieldNode):
                for argument in selection.arguments or ():
                    _record(usages, f"{selection.name.value}({argument.name.value}:)", argument)
                if selection.selection_set is not None:
                    stack.append(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                stack.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in fragments and name not in visited:
                    visited.add(name)
                    stack.append(fragments[name].selection_set)
    return usages


def _record(usages: dict[str, list[str]], where: str, argument: ArgumentNode) -> None:
    values: list[ValueNode] = [argument.value]
    while values:
        value = values.pop()
        if isinstance(value, VariableNode):
            found = usages.setdefault(value.name.value, [])
            if where not in found:
                found.append(where)
        elif isinstance(value, ListValueNode):
            values.extend(value.values)
        elif isinstance(value, ObjectValueNode):
            values.extend(field.value for field in value.fields)
