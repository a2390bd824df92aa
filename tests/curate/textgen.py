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
