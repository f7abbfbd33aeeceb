"""A batch reads only the part of a capped pool it can move: the answer must be the one a full
re-allocation gives. Random rounds of new entries, corrections up and down, moved dates, voids and
re-sent voids on one capped contract; after each round every entry is what the greedy rule says."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from tests.work import get_entry, money, new_contract, post_time, time_entry, tm

CAP = Decimal("5000.00")
RATE = Decimal("200.00")


def _expected(live: dict[str, tuple[str, Decimal]]) -> dict[str, tuple[Decimal, Decimal]]:
    """(billable, held) per live entry: room in (work date, external id by code point) order."""
    room, out = CAP, {}
    for ext, (_day, hours) in sorted(live.items(), key=lambda kv: (kv[1][0], kv[0])):
        value = hours * RATE
        part = min(value, max(room, Decimal(0)))
        room -= part
        out[ext] = (part, value - part)
    return out


@pytest.mark.parametrize("seed", [7, 11, 23])
async def test_windowed_allocation_equals_a_full_reallocation_round_after_round(api, keys, seed):
    contract_id = await new_contract(api, keys, tm(time_cap=str(CAP)))
    rng = random.Random(seed)
    crossed = False
    live: dict[str, tuple[str, Decimal]] = {}
    voided: set[str] = set()
    n = 0
    for _ in range(14):
        batch = []
        for _ in range(rng.randint(3, 8)):
            choice = rng.random()
            day = f"2026-03-{rng.randint(2, 27):02d}"
            hours = Decimal(rng.choice(["0.5", "1", "2.5", "4", "7.5", "8"]))
            if choice < 0.45 or not live:
                n += 1
                ext = f"TE-{n}"
            elif choice < 0.85:
                ext = rng.choice(sorted(live))  # a correction: hours and maybe the date
                if rng.random() < 0.5:
                    day = live[ext][0]
            elif choice < 0.95:
                ext = rng.choice(sorted(live))
                batch.append({"external_id": ext, "void": True})
                live.pop(ext)
                voided.add(ext)
                continue
            elif voided:
                ext = rng.choice(sorted(voided))  # re-sent after its void: a correction of the void
            else:
                continue
            if any(e.get("external_id") == ext for e in batch):
                continue
            voided.discard(ext)
            live[ext] = (day, hours)
            batch.append(time_entry(ext, contract_id, day, str(hours)))
        await post_time(api, keys, batch)
        expected = _expected(live)
        for ext, (billable, held) in expected.items():
            got = money(await get_entry(api, keys, ext))
            assert (Decimal(got[1]), Decimal(got[2] or 0)) == (billable, held), (ext, got, live[ext])
        for ext in voided:
            assert money(await get_entry(api, keys, ext)) == ("non_billable", "0.00", None, ["VOIDED"])
        crossed = crossed or any(h > 0 for _, h in expected.values())
        total = sum((b for b, _ in expected.values()), Decimal(0))
        assert total == min(CAP, sum((h * RATE for _, h in live.values()), Decimal(0)))
    assert crossed  # the rounds did cross the cap: the windows were exercised
