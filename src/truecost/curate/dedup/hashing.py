"""Vectorised hashing for dedup: word hashes, word-shingle hashes and MinHash signatures, all in numpy.

Every function is pure and deterministic across processes and machines (no Python `hash()`), so signatures
computed on Ray workers equal those computed locally.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# uint64 arithmetic wraps modulo 2**64 on purpose; silence numpy's overflow warnings for these ops only.
_U64 = np.uint64
_MASK64 = (1 << 64) - 1
# Odd 64-bit constants (from splitmix64 / golden ratio); any odd constants would do.
_POLY_BASE = 0x100000001B3  # odd, so it is invertible modulo 2**64
_POLY_BASE_INV = pow(_POLY_BASE, -1, 1 << 64)
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB

_powers = np.ones(1, dtype=_U64)
_inv_powers = np.ones(1, dtype=_U64)


def _power_tables(n: int) -> tuple[np.ndarray, np.ndarray]:
    """base**i and base**-i modulo 2**64 for i < n (grown on demand, cached for the process)."""
    global _powers, _inv_powers
    if len(_powers) < n:
        size = max(n, 2 * len(_powers), 4096)
        with np.errstate(over="ignore"):
            _powers = np.cumprod(np.full(size, _POLY_BASE, dtype=_U64), dtype=_U64)
            _inv_powers = np.cumprod(np.full(size, _POLY_BASE_INV, dtype=_U64), dtype=_U64)
        # cumprod starts at base**1; shift so index i holds base**i.
        _powers = np.concatenate([np.ones(1, dtype=_U64), _powers[:-1]])
        _inv_powers = np.concatenate([np.ones(1, dtype=_U64), _inv_powers[:-1]])
    return _powers, _inv_powers


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads every input bit over the whole 64-bit output (bijective)."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> _U64(30))
        x = x * _U64(_MIX1)
        x = x ^ (x >> _U64(27))
        x = x * _U64(_MIX2)
        return x ^ (x >> _U64(31))


_WINDOW_BYTES = 1 << 20  # bytes hashed per prefix-sum pass, so the power tables stay small (8 MB each)


def word_hashes(words: Sequence[str], lower: bool = True) -> np.ndarray:
    """64-bit hash of each word (case-insensitive unless `lower=False`), for many words in a few numpy calls.

    The one word hash of curate (dedup and the n-gram quality rules): deterministic across processes and
    machines. The words are joined with single spaces (a word never contains a space) and hashed by
    `hash_word_bytes`.
    """
    if not words:
        return np.zeros(0, dtype=_U64)
    joined = " ".join(words)
    return hash_word_bytes((joined.lower() if lower else joined).encode("utf-8", "surrogatepass"))


def hash_word_bytes(text: bytes) -> np.ndarray:
    """The `word_hashes` of words given as UTF-8 bytes separated by single spaces (`Document.normalised_words`).

    Each word's polynomial hash (relative to its first byte) is read off a prefix sum over the bytes, one window
    of about a megabyte at a time.
    """
    if not text:
        return np.zeros(0, dtype=_U64)
    data = np.frombuffer(text, dtype=np.uint8)
    spaces = np.flatnonzero(data == 0x20)
    starts = np.concatenate([np.zeros(1, dtype=np.int64), spaces + 1])
    ends = np.concatenate([spaces, np.array([len(data)], dtype=np.int64)])
    raw = np.empty(len(starts), dtype=_U64)
    first = 0
    with np.errstate(over="ignore"):
        while first < len(starts):
            base = int(starts[first])
            last = max(int(np.searchsorted(ends, base + _WINDOW_BYTES, side="right")), first + 1)
            window = data[base : int(ends[last - 1])]
            powers, inv_powers = _power_tables(len(window) + 1)
            # +1 so that a zero byte still contributes; prefix[i] = sum over bytes before i of (byte+1)*base**i.
            weighted = (window.astype(_U64) + _U64(1)) * powers[: len(window)]
            prefix = np.concatenate([np.zeros(1, dtype=_U64), np.cumsum(weighted, dtype=_U64)])
            s, e = starts[first:last] - base, ends[first:last] - base
            raw[first:last] = (prefix[e] - prefix[s]) * inv_powers[s] + (e - s).astype(_U64) * _U64(_GOLDEN)
            first = last
    return mix64(raw)


def shingle_hashes(word_hash: np.ndarray, k: int) -> np.ndarray:
    """Hash of every run of `k` consecutive words (a document shorter than k gives one shingle of all its words)."""
    n = len(word_hash)
    if n == 0:
        return np.zeros(0, dtype=_U64)
    k = min(k, n)
    count = n - k + 1
    with np.errstate(over="ignore"):
        acc = word_hash[:count].copy()
        for j in range(1, k):
            # Position-dependent rotation-free combination: multiply by a distinct odd constant per offset.
            acc = acc * _U64(_GOLDEN) + word_hash[j : j + count]
    return mix64(acc)


def permutation_params(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients (a odd, b) of `num_perm` affine permutations x -> a*x + b of the 64-bit integers."""
    rng = np.random.Generator(np.random.PCG64(seed))
    a = rng.integers(0, 1 << 63, size=num_perm, dtype=np.uint64) * _U64(2) + _U64(1)
    b = rng.integers(0, 1 << 63, size=num_perm, dtype=np.uint64)
    return a, b


def minhash(shingles: np.ndarray, a: np.ndarray, b: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """MinHash signature: for each permutation, the smallest permuted shingle hash (chunked to bound memory).

    Repeated shingles are not removed first: they cannot change a minimum, and de-duplicating costs more.
    """
    sig = np.full(len(a), np.iinfo(np.uint64).max, dtype=_U64)
    with np.errstate(over="ignore"):
        for start in range(0, len(shingles), chunk):
            block = np.multiply.outer(shingles[start : start + chunk], a)
            block += b
            np.minimum(sig, block.min(axis=0), out=sig)
    return sig


def minhash_many(shingles: np.ndarray, lengths: np.ndarray, a: np.ndarray, b: np.ndarray,
                 chunk: int = 4096) -> np.ndarray:
    """MinHash signatures of many documents at once: `shingles` holds each document's run, `lengths` (all >= 1)
    their sizes; returns one row per document, equal to `minhash` of each run.

    The shingles are taken `chunk` at a time, whatever documents they belong to: one (permutations x chunk)
    block, each document's part of it reduced along the contiguous axis with one reduceat, and folded into the
    documents' minima (a document cut by a chunk edge gets a minimum from each side).
    """
    out = np.full((len(a), len(lengths)), np.iinfo(np.uint64).max, dtype=_U64)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    column_b = b[:, None]
    with np.errstate(over="ignore"):
        for lo in range(0, len(shingles), chunk):
            hi = min(lo + chunk, len(shingles))
            block = np.multiply.outer(a, shingles[lo:hi])
            block += column_b
            first = int(np.searchsorted(ends, lo, side="right"))  # documents that overlap [lo, hi)
            last = int(np.searchsorted(starts, hi, side="left"))
            part = np.minimum.reduceat(block, np.maximum(starts[first:last], lo) - lo, axis=1)
            np.minimum(out[:, first:last], part, out=out[:, first:last])
    return np.ascontiguousarray(out.T)


def band_keys(signature: np.ndarray, num_bands: int, rows_per_band: int, salt: int) -> np.ndarray:
    """One 64-bit key per LSH band: equal keys mean the band's rows all agree (up to a 2**-64 collision).

    `signature` is one signature or a 2-D array of them (one per row); the keys have the same leading shape.
    """
    lead = signature.shape[:-1]
    rows = signature[..., : num_bands * rows_per_band].reshape(*lead, num_bands, rows_per_band)
    with np.errstate(over="ignore"):
        # Mix each row value with its position in the band before summing, so rows cannot cancel or swap.
        weights = _row_weights(rows_per_band)
        combined = (mix64(rows ^ weights) * weights).sum(axis=-1, dtype=_U64)
        combined += np.arange(num_bands, dtype=_U64) * _U64(_MIX1) + _U64(salt & _MASK64) * _U64(_MIX2)
    return mix64(combined)


def _row_weights(rows_per_band: int) -> np.ndarray:
    """Distinct odd 64-bit weights, one per row position in a band."""
    with np.errstate(over="ignore"):
        return mix64(np.arange(1, rows_per_band + 1, dtype=_U64) * _U64(_GOLDEN)) | _U64(1)


def sequence_hash(word_hash: np.ndarray) -> int:
    """One 64-bit hash of the whole word sequence (equal sequences, equal hash)."""
    import xxhash

    return int(xxhash.xxh3_64_intdigest(word_hash.tobytes()))
