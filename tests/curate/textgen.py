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


def corpus_lines(n_docs: int, seed: int = 0, prefix: str = "d") -> list[str]:
    """JSONL lines of `n_docs` articles where about one in five is an exact or near copy of an earlier one."""
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
            text = article(f"{prefix}{seed}-{i}")
            texts.append(text)
        lines.append(json.dumps({"id": f"{prefix}{i}", "text": text, "n": i}))
    return lines
