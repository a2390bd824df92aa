"""Seeded plausible English articles for curate tests: distinct per seed, and passing every quality rule."""

from __future__ import annotations

import random

NOUNS = ("river", "council", "teacher", "market", "garden", "winter", "festival", "clinic", "harbour", "bridge",
         "farmer", "museum", "railway", "village", "student", "orchard", "library", "theatre", "doctor", "baker",
         "station", "forest", "painter", "meadow", "captain", "kitchen", "sailor", "castle", "valley", "engine")
ADJECTIVES = ("quiet", "busy", "ancient", "bright", "careful", "famous", "gentle", "narrow", "patient", "modern")
VERBS = ("visited", "repaired", "described", "welcomed", "painted", "measured", "followed", "admired")


def article(topic: str) -> str:
    """Eight lines of two sentences each, seeded by `topic`, which also appears in the text."""
    rng = random.Random(topic)
    sentences = []
    for _ in range(16):
        a, b, c, d = rng.sample(NOUNS, 4)
        adj1, adj2 = rng.sample(ADJECTIVES, 2)
        sentences.append(f"The {adj1} {a} {rng.choice(VERBS)} the {b} of the {c} with a {adj2} {d}.")
    sentences[3] = f"Everyone in town agreed that the {topic} should stay open all year."
    return "\n".join(" ".join(sentences[i:i + 2]) for i in range(0, len(sentences), 2))


_SYLLABLES = ("ka", "to", "ri", "men", "sa", "lo", "ver", "dan", "pi", "u", "ne", "gor", "li", "ta", "bre", "os",
              "cha", "mi", "zen", "e", "ral", "tu", "fi", "no", "sku", "an", "del", "po", "we", "th")
_FUNCTION_WORDS = ("the", "of", "and", "to", "a", "in", "is", "that", "for", "it", "with", "as", "on", "was", "by")


def _vocabulary(size: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


_VOCAB = _vocabulary(20_000, 7)


def web_page(rng: random.Random, words: int) -> str:
    """A page of `words` words: Zipf-distributed content words between function words, in sentences and lines,
    so that unrelated pages share common words but hardly any word pairs (as real pages do)."""
    out: list[str] = []
    line: list[str] = []
    for _ in range(words):
        if rng.random() < 0.35:
            word = rng.choice(_FUNCTION_WORDS)
        else:
            word = _VOCAB[min(len(_VOCAB) - 1, int(rng.paretovariate(1.1)) - 1 + rng.randrange(40) * 400)]
        line.append(word)
        if len(line) >= 12 and rng.random() < 0.15:
            out.append(" ".join(line).capitalize() + ".")
            line = []
    out.append(" ".join(line).capitalize() + ".")
    return "\n".join(out)


def corpus_lines(n_docs: int, seed: int = 0, prefix: str = "d") -> list[str]:
    """JSONL lines of `n_docs` web-like pages where about one in five is an exact or near copy of an earlier one."""
    import json

    rng = random.Random(seed)
    lines: list[str] = []
    texts: list[str] = []
    for i in range(n_docs):
        roll = rng.random()
        if texts and roll < 0.1:
            text = rng.choice(texts)
        elif texts and roll < 0.2:
            words = rng.choice(texts).split(" ")
            for _ in range(3):
                words[rng.randrange(len(words))] = f"changed{rng.randrange(1000)}"
            text = " ".join(words)
        else:
            text = web_page(rng, rng.randint(150, 900))
            texts.append(text)
        lines.append(json.dumps({"id": f"{prefix}{i}", "text": text, "n": i}))
    return lines
