"""``python -m bench`` (what ``make bench`` runs): every benchmark in turn, or one by name.

* ``python -m bench``: the posting bench, then the ingestion bench, each with its defaults;
* ``python -m bench posting|ingestion [options]``: that one alone (``--help`` lists its options);
* ``python -m bench --invoices 200 ...`` (options without a name): the posting bench, as before.

The exit status is the first non-zero one of the benches run (all of them run).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from bench import ingestion, posting

BENCHES: dict[str, Callable[[list[str] | None], int]] = {"posting": posting.main, "ingestion": ingestion.main}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in BENCHES:
        return BENCHES[args[0]](args[1:])
    if args:
        return posting.main(args)
    status = 0
    for name, run in BENCHES.items():
        print(f"== bench {name}", file=sys.stderr, flush=True)
        status = status or run([])
    return status


if __name__ == "__main__":
    raise SystemExit(main())
