"""``python -m bench`` (what ``make bench`` runs)."""

from __future__ import annotations

from bench.posting import main

if __name__ == "__main__":
    raise SystemExit(main())
