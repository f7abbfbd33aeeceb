"""Schemathesis hooks, loaded by schemathesis.toml (so `st run` from the repository root behaves the same).

Idempotency-Key: a well-behaved client sends a fresh key per logical request (docs/api.md); the
generator cannot know that and reuses generated values across different bodies, which psbridge
rightly refuses (422 IDEMPOTENCY_KEY_REUSED, tested in tests/integration/test_idempotency.py).
A valid generated key is therefore made unique per call; an invalid one (empty, too long,
non-ASCII), which the negative phase sends on purpose, is left alone so its 422 is still checked.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import schemathesis

_VALID_KEY = re.compile(r"[\x20-\x7e]{1,255}")


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() == "idempotency-key" and isinstance(headers[name], str):
            if _VALID_KEY.fullmatch(headers[name].strip()):
                headers[name] = f"st-{uuid.uuid4().hex}"
