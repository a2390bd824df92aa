"""Requests- and tokens-per-minute limits per key and per upstream, over a sliding 60-second window.

The window is kept as per-second buckets of (requests, tokens); a request is admitted when the last 60 seconds
plus this request stay within the limit. A refusal says how long until enough of the window has passed
(`Retry-After`). In one process the buckets live in memory; with Redis the check and the count run as one
script on the server, so a fleet of gateways shares one limit exactly.

Tokens are counted twice over a request's life: its prompt estimate when admitted (so a burst of big prompts is
seen at once), then the difference to the real usage when it is done.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Protocol

WINDOW_S = 60


class Limiter(Protocol):
    """Where the windows live."""

    async def admit(self, key: str, rpm: int | None, tpm: int | None, tokens: int, now_s: float) -> float | None:
        """Count one request of `tokens` if within limits (None), else seconds until it would be (Retry-After)."""
        ...

    async def add_tokens(self, key: str, tokens: int, now_s: float) -> None:
        """Correct the window's token count once the real usage is known."""
        ...


def _retry_after(buckets: list[tuple[int, int, int]], now: int, need_requests: int, need_tokens: int) -> float:
    """Seconds until the oldest buckets leave the window and free `need_*` (buckets: second, requests, tokens)."""
    freed_r = freed_t = 0
    for second, requests, tokens in sorted(buckets):
        freed_r += requests
        freed_t += tokens
        if freed_r >= need_requests and freed_t >= need_tokens:
            return float(max(1, second + WINDOW_S - now))
    return float(WINDOW_S)


def decide(buckets: list[tuple[int, int, int]], now: int, rpm: int | None, tpm: int | None, tokens: int
           ) -> float | None:
    """The limit decision over the window's buckets: None to admit, else Retry-After seconds."""
    requests = sum(b[1] for b in buckets)
    used = sum(b[2] for b in buckets)
    over_requests = requests + 1 - rpm if rpm is not None else 0
    # A request larger than the whole limit still goes through an empty window, or it could never be served.
    over_tokens = used + tokens - tpm if tpm is not None and used > 0 else 0
    if over_requests <= 0 and over_tokens <= 0:
        return None
    return _retry_after(buckets, now, max(over_requests, 0), max(over_tokens, 0))


class MemoryLimiter:
    """Windows in this process."""

    def __init__(self) -> None:
        self._buckets: dict[str, dict[int, list[int]]] = defaultdict(dict)

    def _window(self, key: str, now: int) -> dict[int, list[int]]:
        buckets = self._buckets[key]
        for second in [s for s in buckets if s <= now - WINDOW_S]:
            del buckets[second]
        return buckets

    async def admit(self, key: str, rpm: int | None, tpm: int | None, tokens: int, now_s: float) -> float | None:
        now = math.floor(now_s)
        buckets = self._window(key, now)
        wait = decide([(s, r, t) for s, (r, t) in buckets.items()], now, rpm, tpm, tokens)
        if wait is None:
            bucket = buckets.setdefault(now, [0, 0])
            bucket[0] += 1
            bucket[1] += tokens
        return wait

    async def add_tokens(self, key: str, tokens: int, now_s: float) -> None:
        if tokens:
            self._window(key, math.floor(now_s)).setdefault(math.floor(now_s), [0, 0])[1] += tokens


# One hash per limited key: fields r<second> and t<second>. Old seconds are dropped as they are read.
_ADMIT_LUA = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local rpm, tpm, tokens = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local data = redis.call('HGETALL', KEYS[1])
local buckets, requests, used = {}, 0, 0
for i = 1, #data, 2 do
  local kind, second, value = string.sub(data[i], 1, 1), tonumber(string.sub(data[i], 2)), tonumber(data[i + 1])
  if second <= now - window then
    redis.call('HDEL', KEYS[1], data[i])
  else
    buckets[second] = buckets[second] or {0, 0}
    if kind == 'r' then requests = requests + value; buckets[second][1] = buckets[second][1] + value
    else used = used + value; buckets[second][2] = buckets[second][2] + value end
  end
end
local over_r, over_t = 0, 0
if rpm > 0 then over_r = requests + 1 - rpm end
if tpm > 0 and used > 0 then over_t = used + tokens - tpm end
if over_r <= 0 and over_t <= 0 then
  redis.call('HINCRBY', KEYS[1], 'r' .. now, 1)
  redis.call('HINCRBY', KEYS[1], 't' .. now, tokens)
  redis.call('EXPIRE', KEYS[1], window + 5)
  return -1
end
local seconds = {}
for second in pairs(buckets) do table.insert(seconds, second) end
table.sort(seconds)
local freed_r, freed_t = 0, 0
for _, second in ipairs(seconds) do
  freed_r = freed_r + buckets[second][1]; freed_t = freed_t + buckets[second][2]
  if freed_r >= over_r and freed_t >= over_t then return math.max(1, second + window - now) end
end
return window
"""


class RedisLimiter:
    """Windows in Redis, shared by every gateway on the same server."""

    def __init__(self, redis: Any, prefix: str = "truecost:limit:") -> None:
        self.redis = redis
        self.prefix = prefix
        self._admit = redis.register_script(_ADMIT_LUA)

    async def admit(self, key: str, rpm: int | None, tpm: int | None, tokens: int, now_s: float) -> float | None:
        wait = int(await self._admit(keys=[self.prefix + key],
                                     args=[math.floor(now_s), WINDOW_S, rpm or 0, tpm or 0, tokens]))
        return None if wait < 0 else float(wait)

    async def add_tokens(self, key: str, tokens: int, now_s: float) -> None:
        if tokens:
            await self.redis.hincrby(self.prefix + key, f"t{math.floor(now_s)}", tokens)


class RateLimits:
    """The limits of one gateway: per key (refuse with 429) and per upstream (skip to the next candidate)."""

    def __init__(self, limiter: Limiter, clock: Callable[[], float]) -> None:
        self.limiter = limiter
        self.clock = clock

    async def admit(self, kind: str, name: str, rpm: int | None, tpm: int | None, tokens: int) -> float | None:
        """None when `name` (a key or an upstream) may send this request now; else Retry-After seconds."""
        if rpm is None and tpm is None:
            return None
        return await self.limiter.admit(f"{kind}:{name}", rpm, tpm, tokens, self.clock())

    async def settle(self, kind: str, name: str, tpm: int | None, estimated: int, actual: int) -> None:
        """Replace a request's estimated tokens by its real ones."""
        if tpm is not None and actual != estimated:
            await self.limiter.add_tokens(f"{kind}:{name}", actual - estimated, self.clock())
