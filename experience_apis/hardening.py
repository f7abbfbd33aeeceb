"""Limits on a parsed GraphQL document, checked in time linear in its size before anything expands it.

graphql-core's validation and strawberry's limiters walk a fragment again at every place it is
spread: with ``F1 { ...F0 ...F0 }``, ``F2 { ...F1 ...F1 }``... each line doubles their work, and
thirty such lines (1.2 KB) block the event loop for hours. Here every definition is read once and
a fragment's figures once expanded (depth, aliases, selections) are memoised and added up at each
spread, so a document that expands exponentially is refused from its figures alone. What runs
after this check (the repeated-field walk below, then graphql-core's rules) only ever sees
documents whose expansion is small: each fragment spread counts once per place it lands.

* depth: fields on the longest path, introspection fields (``__schema``, ``__type`` and all
  below them) included; ``{ viewer { name } }`` has depth 2.
* aliases and selections (fields, inline fragments, spreads): summed over the document's
  operations, every fragment counted wherever it is spread.
* repeated fields: graphql-core's OverlappingFieldsCanBeMerged compares every pair of fields
  that land under the same response name at the same place, so ``{ viewer { name } }`` written
  500 times costs it 125,000 comparisons (a second); the pairs are counted here first.
* fragments: one name per fragment, no cycle, none unused (an unused fragment would escape the
  figures above while graphql-core still validates it).
* string literals must hold no control character (U+0000 cannot even be stored in PostgreSQL).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
)

from experience_apis.graphql_errors import BAD_USER_INPUT, LIMIT_EXCEEDED, VALIDATION_FAILED, RequestError

__all__ = ["CONTROL_CHARACTERS", "DocumentLimits", "check_document"]

# C0 controls but tab, newline and carriage return, and DEL: the same set REST bodies refuse.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MAX_REPORTED = 10
_SPREAD_NOTE = " (a fragment counts at every place it is spread)"

Definition = OperationDefinitionNode | FragmentDefinitionNode


@dataclass(frozen=True)
class DocumentLimits:
    max_depth: int = 10
    max_aliases: int = 20
    max_selections: int = 2000
    max_repeated_pairs: int = 2000


@dataclass(frozen=True)
class _Figures:
    depth: int
    aliases: int
    selections: int


@dataclass(frozen=True)
class _Own:
    """A definition read without following its spreads: its own figures and where it spreads what."""

    figures: _Figures
    spreads: list[tuple[FragmentSpreadNode, int]]  # each spread, with the field depth it sits at


def check_document(document: DocumentNode, limits: DocumentLimits) -> list[GraphQLError]:
    """What refuses the document before graphql-core validates it; empty when it may go on."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments: dict[str, FragmentDefinitionNode] = {}
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            name = definition.name.value
            if name in fragments:
                message = f"There can be only one fragment named '{name}'."
                return [RequestError(message, VALIDATION_FAILED, nodes=[fragments[name].name, definition.name])]
            fragments[name] = definition
    strings = _control_characters([*operations, *fragments.values()])
    if strings:
        return strings
    own = {name: _read(fragment) for name, fragment in fragments.items()}
    cap = 1 + max(limits.max_depth, limits.max_aliases, limits.max_selections)
    expanded, cycle = _expand(own, cap)
    if cycle:
        return cycle
    read = [(operation, _read(operation)) for operation in operations]
    unused = _unused(read, own, fragments)
    if unused:
        return unused
    return _over_limits(read, fragments, expanded, limits, cap)


def _read(definition: Definition) -> _Own:
    depth = aliases = selections = 0
    spreads: list[tuple[FragmentSpreadNode, int]] = []
    stack: list[tuple[SelectionSetNode, int]] = [(definition.selection_set, 0)]
    while stack:
        selection_set, at = stack.pop()
        for selection in selection_set.selections:
            selections += 1
            if isinstance(selection, FieldNode):
                depth = max(depth, at + 1)
                aliases += selection.alias is not None
                if selection.selection_set is not None:
                    stack.append((selection.selection_set, at + 1))
            elif isinstance(selection, InlineFragmentNode):
                stack.append((selection.selection_set, at))
            elif isinstance(selection, FragmentSpreadNode):
                spreads.append((selection, at))
    return _Own(_Figures(depth, aliases, selections), spreads)


def _combine(own: _Own, expanded: dict[str, _Figures], cap: int) -> _Figures:
    depth, aliases, selections = own.figures.depth, own.figures.aliases, own.figures.selections
    for spread, at in own.spreads:
        # An unknown fragment adds nothing here; graphql-core's KnownFragmentNames reports it.
        figures = expanded.get(spread.name.value)
        if figures is not None:
            depth = max(depth, at + figures.depth)
            aliases += figures.aliases
            selections += figures.selections
    # Capped just past every limit: the numbers of a doubling chain stay small.
    return _Figures(min(depth, cap), min(aliases, cap), min(selections, cap))


def _expand(own: dict[str, _Own], cap: int) -> tuple[dict[str, _Figures], list[GraphQLError]]:
    """Each fragment's figures once expanded, in one depth-first pass (no recursion, cycles refused)."""
    expanded: dict[str, _Figures] = {}
    on_path: set[str] = set()
    for root in own:
        if root in expanded:
            continue
        stack = [(root, iter(own[root].spreads))]
        on_path.add(root)
        while stack:
            name, pending = stack[-1]
            for spread, _ in pending:
                target = spread.name.value
                if target in on_path:
                    message = f"Cannot spread fragment '{target}' within itself (via '{name}')."
                    return {}, [RequestError(message, VALIDATION_FAILED, nodes=[spread])]
                if target in own and target not in expanded:
                    on_path.add(target)
                    stack.append((target, iter(own[target].spreads)))
                    break
            else:
                stack.pop()
                on_path.discard(name)
                expanded[name] = _combine(own[name], expanded, cap)
    return expanded, []


def _unused(
    read: list[tuple[OperationDefinitionNode, _Own]], own: dict[str, _Own], fragments: dict[str, FragmentDefinitionNode]
) -> list[GraphQLError]:
    reached: set[str] = set()
    pending = [spread.name.value for _, operation in read for spread, _ in operation.spreads]
    while pending:
        name = pending.pop()
        if name in own and name not in reached:
            reached.add(name)
            pending.extend(spread.name.value for spread, _ in own[name].spreads)
    unused: list[GraphQLError] = [
        RequestError(f"Fragment '{name}' is never used.", VALIDATION_FAILED, nodes=[fragments[name].name])
        for name in own
        if name not in reached
    ]
    return unused[:_MAX_REPORTED]


def _over_limits(
    read: list[tuple[OperationDefinitionNode, _Own]],
    fragments: dict[str, FragmentDefinitionNode],
    expanded: dict[str, _Figures],
    limits: DocumentLimits,
    cap: int,
) -> list[GraphQLError]:
    errors: list[GraphQLError] = []
    aliases = selections = 0
    for operation, own in read:
        figures = _combine(own, expanded, cap)
        if figures.depth > limits.max_depth:
            errors.append(_limit(f"{_name(operation)} is deeper than {limits.max_depth} fields", [operation]))
        aliases += figures.aliases
        selections += figures.selections
    if aliases > limits.max_aliases:
        errors.append(_limit(f"the document uses more than {limits.max_aliases} aliases{_SPREAD_NOTE}"))
    if selections > limits.max_selections:
        errors.append(_limit(f"the document expands to more than {limits.max_selections} selections{_SPREAD_NOTE}"))
        return errors  # too big to walk for repeated fields
    pairs, worst = 0, ""
    for operation, _ in read:
        found, worst = _repeated_pairs(operation, fragments, limits.max_repeated_pairs - pairs)
        pairs += found
        if pairs > limits.max_repeated_pairs:
            message = (
                f"fields such as '{worst}' are selected repeatedly at one place: more than "
                f"{limits.max_repeated_pairs} same-named pairs to compare; select each field once"
            )
            errors.append(_limit(message))
            break
    return errors


def _repeated_pairs(
    operation: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode], budget: int
) -> tuple[int, str]:
    """Pairs of same-named fields that land at one place once fragments are expanded (stops past ``budget``).

    Costs one step per selection of the expanded operation, which the selections limit bounds.
    """
    pairs, worst, worst_count = 0, "", 0
    stack: list[list[SelectionSetNode]] = [[operation.selection_set]]
    while stack:
        merged = stack.pop()
        counts: dict[str, int] = {}
        below: dict[str, list[SelectionSetNode]] = {}
        while merged:
            for selection in merged.pop().selections:
                if isinstance(selection, FieldNode):
                    key = (selection.alias or selection.name).value
                    counts[key] = counts.get(key, 0) + 1
                    if selection.selection_set is not None:
                        below.setdefault(key, []).append(selection.selection_set)
                elif isinstance(selection, InlineFragmentNode):
                    merged.append(selection.selection_set)
                elif isinstance(selection, FragmentSpreadNode) and selection.name.value in fragments:
                    merged.append(fragments[selection.name.value].selection_set)
        for key, count in counts.items():
            pairs += count * (count - 1) // 2
            if count > worst_count:
                worst, worst_count = key, count
        if pairs > budget:
            break
        stack.extend(below.values())
    return pairs, worst


def _control_characters(definitions: list[Definition]) -> list[GraphQLError]:
    errors: list[GraphQLError] = []
    for where, value in _string_literals(definitions):
        if CONTROL_CHARACTERS.search(value.value):
            message = f"{where} must not contain control characters"
            errors.append(RequestError(message, BAD_USER_INPUT, nodes=[value]))
            if len(errors) == _MAX_REPORTED:
                break
    return errors


def _string_literals(definitions: list[Definition]) -> Iterator[tuple[str, StringValueNode]]:
    """Every string literal in arguments, directives and variable defaults, and where it is."""
    for definition in definitions:
        directives: list[tuple[str, DirectiveNode]] = [(_name(definition), d) for d in definition.directives or ()]
        if isinstance(definition, OperationDefinitionNode):
            for variable in definition.variable_definitions or ():
                owner = f"variable '${variable.variable.name.value}'"
                if variable.default_value is not None:
                    yield from _strings(f"the default value of {owner}", variable.default_value)
                directives += [(owner, d) for d in variable.directives or ()]
        stack = [definition.selection_set]
        while stack:
            for selection in stack.pop().selections:
                if isinstance(selection, FieldNode):
                    owner = f"field '{selection.name.value}'"
                    for argument in selection.arguments or ():
                        yield from _strings(f"argument '{argument.name.value}' of {owner}", argument.value)
                    if selection.selection_set is not None:
                        stack.append(selection.selection_set)
                elif isinstance(selection, InlineFragmentNode):
                    stack.append(selection.selection_set)
                    owner = "an inline fragment"
                elif isinstance(selection, FragmentSpreadNode):
                    owner = f"spread '...{selection.name.value}'"
                directives += [(owner, d) for d in selection.directives or ()]
        for owner, directive in directives:
            for argument in directive.arguments or ():
                where = f"argument '{argument.name.value}' of @{directive.name.value} on {owner}"
                yield from _strings(where, argument.value)


def _strings(where: str, value: ValueNode) -> Iterator[tuple[str, StringValueNode]]:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, StringValueNode):
            yield where, node
        elif isinstance(node, ListValueNode):
            stack.extend(node.values)
        elif isinstance(node, ObjectValueNode):
            stack.extend(field.value for field in node.fields)


def _name(definition: Definition) -> str:
    kind = "operation" if isinstance(definition, OperationDefinitionNode) else "fragment"
    return f"{kind} '{definition.name.value}'" if definition.name else f"the anonymous {kind}"


def _limit(message: str, nodes: list[Definition] | None = None) -> GraphQLError:
    return RequestError(message, LIMIT_EXCEEDED, nodes=[n.name or n for n in nodes] if nodes else None)
