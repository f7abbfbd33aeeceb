"""GraphQL validation cost: fragment fan-out documents against flat ones of the same size, and against parsing.

A fan-out document of n levels (``fragment F_i { ...F_{i-1} ...F_{i-1} }``) is about 40 bytes a level
and expands to 2^n fields; before the guard, validating 20 levels blocked the event loop for 5.6 s.
For each size the bench times, in-process and with no I/O:

* parse: graphql-core's ``parse`` with the app's token and length limits (the bare baseline);
* check + validate: the guard's linear check (``experience_apis.hardening.check_document``) and,
  when the document passes it, strawberry's validation (graphql-core's specified rules plus
  strawberry's own), exactly what a POST /graphql meets before execution.

The flat document of each size selects distinct fields under at most 20 aliases, so it passes
the check and pays for full validation. Validation must cost time linear in the document's
bytes, so fan-out/flat should stay near (or below) 1 and the ratio to parsing bounded at every size.

It also times the smaller fan-outs under strawberry's former depth and alias limiters (no guard),
to show the doubling the guard removed.

Run: ``.venv/bin/python -m bench.graphql_validation [--levels 10 20 29 100] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from graphql import DocumentNode, GraphQLError, parse, specified_rules
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter
from strawberry.schema.schema import validate_document

from app.settings import Settings
from experience_apis.hardening import DocumentLimits, check_document
from experience_apis.schema import build_schema

__all__ = ["fan_out", "flat", "main"]

CONTRACT_UNITS = "id number status currency billingModel version projectId customerExternalId".split() + [
    "milestones { key name amount status dueDate acceptedAt }",
    "invoices { id contractId kind status currency invoiceDate net tax total erpRef postedAt }",
]
MIN_SAMPLE_SECONDS = 0.02


def fan_out(levels: int) -> str:
    lines = ["fragment F0 on Viewer { name }"]
    lines += [f"fragment F{i} on Viewer {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels)]
    return "\n".join([*lines, f"query {{ viewer {{ ...F{levels - 1} }} }}"])


def flat(target_bytes: int, max_aliases: int) -> str:
    """A valid document of at least ``target_bytes`` that selects each field once (aliased contract lists)."""
    blocks: list[list[str]] = []
    while True:
        if not blocks or len(blocks[-1]) == len(CONTRACT_UNITS):
            if len(blocks) == max_aliases:
                raise SystemExit(f"a flat document of {target_bytes} bytes needs more than {max_aliases} aliases")
            blocks.append([])
        blocks[-1].append(CONTRACT_UNITS[len(blocks[-1])])
        text = "{ " + " ".join(f"c{i}: contracts(first: 1) {{ {' '.join(b)} }}" for i, b in enumerate(blocks)) + " }"
        if len(text.encode()) >= target_bytes:
            return text


@dataclass(frozen=True)
class Timing:
    label: str
    size: int
    parse_s: float
    check_s: float
    outcome: str

    @property
    def ratio_to_parse(self) -> float:
        return self.check_s / self.parse_s


def best_time(run: Callable[[], object], repeat: int) -> float:
    """Seconds per call: the best of ``repeat`` samples, each long enough to read the clock reliably."""
    number = 1
    while True:
        started = time.perf_counter()
        for _ in range(number):
            run()
        if time.perf_counter() - started >= MIN_SAMPLE_SECONDS:
            break
        number *= 2
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(number):
            run()
        samples.append((time.perf_counter() - started) / number)
    return min(samples)


def measure(label: str, text: str, repeat: int, settings: Settings) -> Timing:
    schema = build_schema(settings.graphql_max_depth, settings.graphql_max_aliases, settings.graphql_max_tokens)
    limits = DocumentLimits(
        max_depth=settings.graphql_max_depth,
        max_aliases=settings.graphql_max_aliases,
        max_selections=settings.graphql_max_tokens,
        max_repeated_pairs=settings.graphql_max_tokens,
    )
    rules = tuple(specified_rules)

    def parsed() -> DocumentNode:
        return parse(text, max_tokens=settings.graphql_max_tokens, max_source_length=64 * settings.graphql_max_tokens)

    document = parsed()

    def check_and_validate() -> list[GraphQLError]:
        return check_document(document, limits) or validate_document(schema._schema, document, rules)

    errors = check_and_validate()
    outcome = "valid" if not errors else f"refused: {errors[0].message[:60]}"
    return Timing(label, len(text.encode()), best_time(parsed, repeat), best_time(check_and_validate, repeat), outcome)


def report(rows: list[tuple[Timing, Timing]]) -> str:
    header = f"{'document':<22} {'bytes':>6} {'parse µs':>10} {'check+validate µs':>18} {'×parse':>8}  outcome"
    lines = [header, "-" * len(header)]
    for pair in rows:
        for t in pair:
            lines.append(
                f"{t.label:<22} {t.size:>6} {t.parse_s * 1e6:>10.1f} {t.check_s * 1e6:>18.1f}"
                f" {t.ratio_to_parse:>7.2f}x  {t.outcome}"
            )
    lines.append("")
    lines.append("fan-out / flat (check+validate), per size: " + ", ".join(
        f"{fan.label.split()[1]} levels {fan.check_s / flat_.check_s:.2f}x" for fan, flat_ in rows
    ))  # fmt: skip
    for kind, index in (("fan-out", 0), ("flat", 1)):
        per_byte = ", ".join(
            f"{pair[index].size} B {pair[index].check_s / pair[index].size * 1e9:.0f} ns" for pair in rows
        )
        lines.append(f"{kind} check+validate per byte (flat across sizes = linear): {per_byte}")
    return "\n".join(lines)


def former(levels: list[int], repeat: int, settings: Settings) -> str:
    """The same fan-out documents under strawberry's depth and alias limiters, as /graphql ran them before."""
    schema = build_schema()._schema
    rules = (
        *specified_rules,
        *QueryDepthLimiter(max_depth=settings.graphql_max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases).validation_rules,
    )
    cells = []
    for n in levels:
        seconds = best_time(partial(validate_document, schema, parse(fan_out(n)), rules), repeat)
        cells.append(f"{n} levels {seconds * 1e3:.1f} ms")
    return "former validation (strawberry limiters, no guard), doubling per level: " + ", ".join(cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.graphql_validation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[10, 20, 29, 100], help="fan-out levels")
    parser.add_argument("--repeat", type=int, default=5, help="samples per measurement (the best is kept)")
    parser.add_argument(
        "--former-levels", type=int, nargs="*", default=[8, 10, 12, 14], help="fan-out levels to time the old way"
    )
    args = parser.parse_args(argv)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    rows = []
    for levels in args.levels:
        text = fan_out(levels)
        fan = measure(f"fan-out {levels} levels", text, args.repeat, settings)
        same = measure(f"flat {len(text.encode())} B", flat(len(text.encode()), settings.graphql_max_aliases),
                       args.repeat, settings)  # fmt: skip
        rows.append((fan, same))
    print(report(rows), flush=True)
    if args.former_levels:
        print(former(args.former_levels, args.repeat, settings), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
