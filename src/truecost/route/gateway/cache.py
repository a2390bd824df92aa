"""The response cache: an exact match on the normalised request, and optionally a semantic match on its prompt.

The key is a hash of the request with keys sorted and the fields that do not change the answer left out
(`stream`, `stream_options`, `user`, `metadata`), the route or model asked for, and the caller's key name (unless
`shared_across_keys`), so one key never reads another's answers. Entries live in this process's memory (least
recently used dropped first) or in Redis for a fleet, each with its route's TTL.

The semantic cache embeds a request's messages with MiniLM (the route's router embedder when that is the
transformer MiniLM, so a routed request is embedded once; never static or TF-IDF vectors, which cannot tell
"pounds to kilograms" from "kilograms to pounds") and serves the cached answer of the closest earlier request with
the same other fields and the same numbers when their cosine similarity reaches the threshold (configured, else
0.95). Its index is per process (the answers it points to may be in Redis).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

IGNORED_FIELDS = frozenset({"stream", "stream_options", "user", "metadata"})
# The cosine to a cached prompt that serves its answer, when the config gives none (MiniLM's transformer vectors;
# measured on paraphrase and near-miss pairs in docs/gateway.md).
DEFAULT_SEMANTIC_THRESHOLD = 0.95


@dataclass
class CachedAnswer:
    """A stored answer and what it cost when it was made (what a hit saves)."""

    completion: dict[str, Any]
    model: str
    cost_usd: float
    prompt_tokens: int
    completion_tokens: int

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> CachedAnswer:
        return cls(**json.loads(data))


def normalised(payload: dict[str, Any], *, without_messages: bool = False) -> str:
    """The request as canonical JSON, without the fields that do not change the answer."""
    skip = IGNORED_FIELDS | ({"messages", "input"} if without_messages else set())
    return json.dumps({k: v for k, v in payload.items() if k not in skip}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)


def cache_key(endpoint: str, payload: dict[str, Any], key_name: str, shared: bool, variant: str = "") -> str:
    """The exact-match key: endpoint, caller (unless shared), the normalised request and `variant` (what else
    decides the answer, e.g. a routed route's knob)."""
    owner = "*" if shared else key_name
    digest = hashlib.sha256((normalised(payload) + variant).encode()).hexdigest()
    return f"{endpoint}:{owner}:{digest}"


class CacheStore(Protocol):
    """Where cached answers live."""

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_s: float) -> None: ...


class MemoryCacheStore:
    """Answers in this process, least recently used dropped past `max_entries`."""

    def __init__(self, max_entries: int, clock: Any = time.monotonic) -> None:
        self.max_entries = max_entries
        self.clock = clock
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] <= self.clock():
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return item[1]

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        self._items[key] = (self.clock() + ttl_s, value)
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)


class RedisCacheStore:
    """Answers in Redis (SET with an expiry), shared by every gateway on the server."""

    def __init__(self, redis: Any, prefix: str = "truecost:cache:") -> None:
        self.redis = redis
        self.prefix = prefix

    async def get(self, key: str) -> bytes | None:
        value = await self.redis.get(self.prefix + key)
        return bytes(value) if value is not None else None

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        await self.redis.set(self.prefix + key, value, px=max(1, int(ttl_s * 1000)))


# MiniLM reads the first 256 word pieces of a text, about 1,000 characters of English. A longer prompt is not
# compared whole: few-shot prompts share a long prefix and differ only in the question at the end, so every one of
# them would match every other. Prompts longer than this use only the exact cache.
SEMANTIC_MAX_CHARS = 1000


def semantic_threshold(configured: float | None = None) -> float:
    """The similarity a semantic hit needs: the configured one, else the default."""
    return DEFAULT_SEMANTIC_THRESHOLD if configured is None else configured


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def numbers_in(text: str) -> tuple[str, ...]:
    """The numbers a text writes, in order, thousands commas dropped ("1,000" is "1000")."""
    return tuple(n.replace(",", "") for n in _NUMBER.findall(text))


def semantic_bucket(base: str, text: str) -> str:
    """The index bucket of a prompt: `base` (caller and other fields) and the prompt's numbers. Requests that differ
    only in a number ("45 km in 3 hours" / "in 2 hours") embed almost alike (MiniLM gives digits little weight) but
    want different answers; they never share a bucket, so never serve each other's."""
    return f"{base}|{' '.join(numbers_in(text))}"


def check_semantic_embedder() -> None:
    """Fail before serving, in one line, when the semantic cache is configured but MiniLM is not installed (a
    startup traceback otherwise)."""
    from truecost.errors import UserError
    from truecost.minilm import MINILM_PIP, minilm_dir

    if minilm_dir() is None:
        raise UserError(f"the semantic cache (cache.semantic) embeds prompts with all-MiniLM-L6-v2; install it "
                        f"({MINILM_PIP}) or remove cache.semantic from the config")


class SemanticIndex:
    """Unit vectors of cached prompts per bucket (same caller and same other fields), searched by dot product.

    `threshold` is the configured one (None: the default, see `semantic_threshold`)."""

    def __init__(self, threshold: float | None, max_entries: int) -> None:
        self.threshold = semantic_threshold(threshold)
        self.max_entries = max_entries
        self._buckets: dict[str, tuple[list[str], list[np.ndarray]]] = {}
        self._size = 0

    def nearest(self, bucket: str, vector: np.ndarray) -> tuple[str, float] | None:
        """The exact key of the closest cached prompt at or above the index's threshold, with its similarity."""
        keys, vectors = self._buckets.get(bucket, ([], []))
        if not keys:
            return None
        similarities = np.stack(vectors) @ vector
        best = int(np.argmax(similarities))
        return (keys[best], float(similarities[best])) if similarities[best] >= self.threshold else None

    def add(self, bucket: str, vector: np.ndarray, key: str) -> None:
        if self._size >= self.max_entries:  # full: start over rather than scan for the oldest
            self._buckets.clear()
            self._size = 0
        keys, vectors = self._buckets.setdefault(bucket, ([], []))
        keys.append(key)
        vectors.append(np.asarray(vector, dtype=np.float32))
        self._size += 1


def messages_text(payload: dict[str, Any]) -> str:
    """What the semantic cache compares: every message's role and text, in order."""
    parts = []
    for message in payload.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        parts.append(f"{message.get('role', '') if isinstance(message, dict) else ''}: {content or ''}")
    return "\n".join(parts)
