"""A circuit breaker shared by every process through Redis, opened by a failure *rate*.

It watches the outcomes of the last ``window`` calls to one backend (every API process and worker
records into the same Redis list, forgotten after ``memory`` seconds without a call). Once at least
``min_calls`` are known and ``failure_ratio`` of them failed, it opens: calls stop for ``cooldown``
seconds (callers get the time left). Then it is half open: calls go again, and the first outcome
decides — a success closes it, a failure opens it again. A rate, not a count of consecutive
failures, and a high one by default (16 of the last 20): a backend failing 30 % of the time reaches
it about once in two hundred thousand windows (each of its failed calls is simply retried), an
outage within 16 calls. Refusals (4xx) are successes here: the backend answered.

Each step is one Lua script, so two processes recording at once never lose an outcome.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import redis.asyncio

from app.errors import BackendRejected, BackendUnavailable

T = TypeVar("T")

__all__ = ["CircuitSettings", "CircuitState", "SharedCircuit"]

CircuitState = Literal["closed", "open", "half_open"]

_RECORD = """
local outcomes, opened, probing = KEYS[1], KEYS[2], KEYS[3]
local failed, window, min_calls = ARGV[1] == '1', tonumber(ARGV[2]), tonumber(ARGV[3])
local ratio, cooldown, memory = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
if redis.call('EXISTS', opened) == 1 then
  return 'open'
end
if not failed then
  redis.call('DEL', probing)
  redis.call('LPUSH', outcomes, '0')
  redis.call('LTRIM', outcomes, 0, window - 1)
  redis.call('PEXPIRE', outcomes, memory)
  return 'closed'
end
if redis.call('EXISTS', probing) == 1 then
  redis.call('SET', opened, '1', 'PX', cooldown)
  redis.call('DEL', outcomes)
  return 'opened'
end
redis.call('LPUSH', outcomes, '1')
redis.call('LTRIM', outcomes, 0, window - 1)
redis.call('PEXPIRE', outcomes, memory)
local seen = redis.call('LRANGE', outcomes, 0, -1)
if #seen >= min_calls then
  local failures = 0
  for _, v in ipairs(seen) do
    if v == '1' then failures = failures + 1 end
  end
  if failures >= ratio * #seen then
    redis.call('SET', opened, '1', 'PX', cooldown)
    redis.call('SET', probing, '1')
    redis.call('DEL', outcomes)
    return 'opened'
  end
end
return 'closed'
"""


@dataclass(frozen=True)
class CircuitSettings:
    window: int = 20
    min_calls: int = 20
    failure_ratio: float = 0.8
    cooldown: float = 30.0
    memory: float = 300.0  # outcomes older than this (with no call since) are forgotten: a quiet backend starts afresh


class SharedCircuit:
    def __init__(self, client: redis.asyncio.Redis, name: str, settings: CircuitSettings | None = None) -> None:
        self.client, self.name = client, name
        self.settings = settings or CircuitSettings()
        prefix = f"psbridge:circuit:{name}"
        self._keys = [f"{prefix}:outcomes", f"{prefix}:open", f"{prefix}:probing"]
        self._record = client.register_script(_RECORD)

    async def wait(self) -> float | None:
        """Seconds until calls may go again while it is open; None when calls may go now."""
        left = await self.client.pttl(self._keys[1])
        return left / 1000 if left and left > 0 else None

    async def state(self) -> CircuitState:
        if await self.wait() is not None:
            return "open"
        return "half_open" if await self.client.exists(self._keys[2]) else "closed"

    async def record(self, failed: bool) -> bool:
        """Record one call's outcome; True when this outcome opened the circuit."""
        s = self.settings
        outcome = "1" if failed else "0"
        args: list[str | int | float] = [
            outcome, s.window, s.min_calls, s.failure_ratio, int(s.cooldown * 1000), int(s.memory * 1000),
        ]  # fmt: skip
        result = await self._record(keys=self._keys, args=args)
        return (result.decode() if isinstance(result, bytes) else str(result)) == "opened"

    async def guard(self, system: str, call: Callable[[], Awaitable[T]]) -> T:
        """Make the call unless the circuit is open (then ``BackendUnavailable`` with ``circuit_open``
        and the time left), and record how it went: unreachable or failing counts against the
        backend, an answer (a refusal included) for it."""
        wait = await self.wait()
        if wait is not None:
            raise BackendUnavailable(system, "circuit open", retry_after=wait, circuit_open=True)
        try:
            result = await call()
        except BackendUnavailable:
            await self.record(failed=True)
            raise
        except BackendRejected:
            await self.record(failed=False)
            raise
        await self.record(failed=False)
        return result
