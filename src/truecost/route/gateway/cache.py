"""The response cache: an exact match on the normalised request, and optionally a semantic match on its prompt.

The key is a hash of the request with keys sorted and the fields that do not change the answer left out
(`stream`, `stream_options`, `user`, `metadata`), the route or model asked for, and the caller's key name (unless
`shared_across_keys`), so one key never reads another's answers. Entries live in this process's memory (least
recently used dropped first) or in Redis for a fleet, each with its route's TTL.

The semantic cache embeds a request's messages with MiniLM (the route's router embedder when that is the
transformer MiniLM, so a routed request is embedded once; never static or TF-IDF vectors, which cannot tell
"pounds to kilograms" from "kilograms to pounds") and serves the cached answer of the closest earlier request with
the same other fields and the same numbers when their cosine similarity reaches the threshold (configured, else
0.90), unless the two prompts are the same words but for a short swap (`near_miss`). Its index is per process (the
answers it points to may be in Redis).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Protocol

import numpy as np

IGNORED_FIELDS = frozenset({"stream", "stream_options", "user", "metadata"})
# The cosine to a cached prompt that serves its answer, when the config gives none (MiniLM's transformer vectors;
# measured on paraphrase and near-miss pairs in docs/gateway.md).
DEFAULT_SEMANTIC_THRESHOLD = 0.90


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


# A near-miss guard on top of the embedding: two prompts that are the same words but for a short swap ("Celsius
# to Fahrenheit" / "Fahrenheit to Celsius", "ascending" / "descending", "positive" / "negative" points) embed
# almost alike yet want different answers, and an embedding cannot tell that swap from a synonym. So a hit is
# refused when the prompts differ by a content word replaced in a span of at most NEAR_MISS_SPAN words, a negation
# added or dropped, or a content word moved in a span of at most NEAR_MISS_MOVE words; longer rewordings are left
# to the embedding. Spans, like the 0.90 default threshold, were chosen on bench/data/paraphrases/pairs.jsonl
# (docs/gateway.md gives the figures there and on a held-out set).
NEAR_MISS_SPAN = 4
NEAR_MISS_MOVE = 2


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?|[-+*/=<>^%]")
_NEGATIONS = _word_set("""not no non never without nor none neither cannot can't don't doesn't didn't isn't aren't
wasn't weren't won't wouldn't shouldn't couldn't""")
# Words whose swap rarely changes what is asked (articles, pronouns, auxiliaries, question words, politeness and
# request verbs): a span whose content words are all in here, or are the same words (`_same_word`), is a
# rewording.
_FUNCTION_WORDS = _word_set("""a an the this that these those it its it's i me my we our you your he she they them
their his her is are was were be been being am 's do does did can could would will should may might please kindly
who whom whose which what what's whats when where why how of at by for with about as than then so and or but if
also just some any to give tell show let write make get find list here there following given""")
# Counts written as words: "a fun fact" / "three fun facts" differ as "3" / "5" do (see `semantic_bucket`).
_NUMBER_WORDS = _word_set("""a an one two three four five six seven eight nine ten eleven twelve twenty thirty forty
fifty hundred thousand million billion first second third fourth fifth last single double twice half""")


def words_of(text: str) -> tuple[str, ...]:
    """A prompt's lower-cased words, numbers and arithmetic signs, in order (punctuation dropped)."""
    return tuple(_WORD.findall(text.lower()))


@lru_cache(maxsize=1)
def _vocabulary() -> frozenset[str]:
    """MiniLM's word pieces that are whole words (to tell a typo, which is not one, from another real word)."""
    from truecost.minilm import minilm_dir

    folder = minilm_dir()
    path = folder / "vocab.txt" if folder is not None else None
    if path is None or not path.exists():
        return frozenset()
    return frozenset(w for w in path.read_text(encoding="utf-8").split() if not w.startswith("##"))


_ENDINGS = ("", "s", "es", "ed", "d", "ing", "ly")


def _same_word(x: str, y: str) -> bool:
    """Whether `x` and `y` are one word: another ending ("converts" / "convert") or a misspelling (at most one
    edit apart, two for long words, transpositions counting one) unless both are dictionary words ("ascending" /
    "descending" are two words, not a typo)."""
    from rapidfuzz.distance import OSA

    short, long = sorted((x, y), key=len)
    if any(long == short + ending for ending in _ENDINGS):
        return True
    vocabulary = _vocabulary()
    if x in vocabulary and y in vocabulary:
        return False
    return OSA.distance(x, y) <= (1 if len(long) < 7 else 2)


def near_miss(cached: tuple[str, ...], asked: tuple[str, ...]) -> str | None:
    """Why a prompt with words `asked` must not get the cached answer of one with words `cached` although they
    embed alike ("another count", "swapped word", "negation", "moved word"), or None. See NEAR_MISS_SPAN."""
    import difflib

    inserted: list[str] = []
    deleted: list[str] = []
    moved_in: set[str] = set()
    moved_out: set[str] = set()
    matcher = difflib.SequenceMatcher(None, cached, asked, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        old, new = cached[i1:i2], asked[j1:j2]
        deleted += old
        inserted += new
        old_content = [w for w in old if w not in _FUNCTION_WORDS]
        new_content = [w for w in new if w not in _FUNCTION_WORDS]
        if op == "replace" and max(len(old), len(new)) <= NEAR_MISS_SPAN:
            if (set(old) ^ set(new)) & _NUMBER_WORDS:
                return "another count"
            if old_content and new_content and not (
                    len(old_content) == len(new_content) and all(map(_same_word, old_content, new_content))):
                return "swapped word"
        if len(old) <= NEAR_MISS_MOVE:
            moved_out |= set(old_content)
        if len(new) <= NEAR_MISS_MOVE:
            moved_in |= set(new_content)
    if _NEGATIONS & (set(inserted) ^ set(deleted)):
        return "negation"
    if moved_in & set(deleted) or moved_out & set(inserted):
        return "moved word"
    return None


def check_semantic_embedder() -> None:
    """Fail before serving, in one line, when the semantic cache is configured but MiniLM is not installed (a
    startup traceback otherwise)."""
    from truecost.errors import UserError
    from truecost.minilm import MINILM_PIP, minilm_dir

    if minilm_dir() is None:
        raise UserError(f"the semantic cache (cache.semantic) embeds prompts with all-MiniLM-L6-v2; install it "
                        f"({MINILM_PIP}) or remove cache.semantic from the config")


@dataclass(frozen=True)
class SemanticMatch:
    """The closest cached prompt: its exact cache key, similarity and words (for `SemanticIndex.refusal`)."""

    key: str
    similarity: float
    words: tuple[str, ...]


class SemanticIndex:
    """Unit vectors (and words) of cached prompts per bucket (same caller, other fields and numbers), searched by
    dot product.

    `threshold` is the configured one (None: the default, see `semantic_threshold`); `guard` refuses near-misses
    (see `near_miss`)."""

    def __init__(self, threshold: float | None, max_entries: int, guard: bool = True) -> None:
        self.threshold = semantic_threshold(threshold)
        self.max_entries = max_entries
        self.guard = guard
        self._buckets: dict[str, tuple[list[str], list[np.ndarray], list[tuple[str, ...]]]] = {}
        self._size = 0

    def nearest(self, bucket: str, vector: np.ndarray) -> SemanticMatch | None:
        """The closest cached prompt at or above the index's threshold (None below it)."""
        keys, vectors, texts = self._buckets.get(bucket, ([], [], []))
        if not keys:
            return None
        similarities = np.stack(vectors) @ vector
        best = int(np.argmax(similarities))
        if similarities[best] < self.threshold:
            return None
        return SemanticMatch(keys[best], float(similarities[best]), texts[best])

    def refusal(self, match: SemanticMatch, words: tuple[str, ...]) -> str | None:
        """Why a prompt of `words` must not be served `match`'s answer although it embeds alike (None: serve it).
        Pure over its arguments, so it can run off the event loop: the word alignment is quadratic in the worst
        case (about 0.1 s for 240 repeated words)."""
        return near_miss(match.words, words) if self.guard else None

    def add(self, bucket: str, vector: np.ndarray, key: str, words: tuple[str, ...]) -> None:
        if self._size >= self.max_entries:  # full: start over rather than scan for the oldest
            self._buckets.clear()
            self._size = 0
        keys, vectors, texts = self._buckets.setdefault(bucket, ([], [], []))
        keys.append(key)
        vectors.append(np.asarray(vector, dtype=np.float32))
        texts.append(words)
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
