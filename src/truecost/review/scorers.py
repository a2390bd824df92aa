"""Scorers for the user's evaluation set: each maps (response, expected item) to 1.0 (right) or 0.0 (wrong)."""

from __future__ import annotations

import re
import string

SCORERS = ("exact", "choice", "numeric", "regex", "contains")
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?")
_LETTERS = string.ascii_uppercase


def normalise(text: str) -> str:
    """Lower case, no surrounding punctuation, single spaces: the SQuAD-style answer normalisation."""
    text = text.lower().strip()
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    text = "".join(ch for ch in text if ch not in string.punctuation)
    return " ".join(text.split())


def exact_match(response: str, expected: str) -> float:
    """1.0 when the normalised response equals the normalised expected answer."""
    return float(normalise(response) == normalise(expected))


def contains(response: str, expected: str) -> float:
    """1.0 when the normalised expected answer occurs in the normalised response as whole words
    ("au" is found in "symbol is au", not in "because")."""
    want = normalise(expected)
    return float(bool(want) and f" {want} " in f" {normalise(response)} ")


def regex_match(response: str, pattern: str) -> float:
    """1.0 when the pattern (Python regex, case-insensitive) is found in the response."""
    return float(re.search(pattern, response, flags=re.IGNORECASE) is not None)


def first_number(text: str) -> float | None:
    """The first number written in the text (commas as thousands separators), or None."""
    for match in _NUMBER.finditer(text):
        token = match.group(0)
        if any(ch.isdigit() for ch in token):
            try:
                return float(token.replace(",", ""))
            except ValueError:
                continue
    return None


def numeric(response: str, expected: str, tolerance: float = 1e-6) -> float:
    """1.0 when the first number in the response is within `tolerance` (relative) of the expected number."""
    got, want = first_number(response), first_number(expected)
    if got is None or want is None:
        return 0.0
    return float(abs(got - want) <= tolerance * max(1.0, abs(want)))


def picked_choice(response: str, choices: list[str]) -> int | None:
    """Which option a free-text answer picks: a leading letter (`B`, `(B)`, `B.`, `Answer: B`) or the option text."""
    text = response.strip()
    letters = _LETTERS[: len(choices)]
    match = re.match(rf"^\s*(?:answer\s*[:\-]?\s*)?\(?([{letters}])\)?(?:[\s.:)]|$)", text, flags=re.IGNORECASE)
    if match:
        return letters.index(match.group(1).upper())
    hits = [i for i, choice in enumerate(choices) if normalise(choice) and normalise(choice) in normalise(text)]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:  # several options named: take the one named first
        return min(hits, key=lambda i: normalise(text).index(normalise(choices[i])))
    return None


def choice_index(expected: str, choices: list[str]) -> int:
    """The index of the expected option, given as a letter or as the option's text."""
    letters = _LETTERS[: len(choices)]
    if len(expected.strip()) == 1 and expected.strip().upper() in letters:
        return letters.index(expected.strip().upper())
    for i, choice in enumerate(choices):
        if normalise(choice) == normalise(expected):
            return i
    raise ValueError(f"expected answer {expected!r} is not one of the choices")


def score(scorer: str, response: str, expected: str, *, choices: list[str] | None = None,
          tolerance: float = 1e-6, picked: int | None = None) -> float:
    """Dispatch to one scorer by name; `picked` is a choice already made by log-likelihood."""
    if scorer == "exact":
        return exact_match(response, expected)
    if scorer == "contains":
        return contains(response, expected)
    if scorer == "regex":
        return regex_match(response, expected)
    if scorer == "numeric":
        return numeric(response, expected, tolerance)
    if scorer == "choice":
        options = choices or []
        chosen = picked if picked is not None else picked_choice(response, options)
        return float(chosen is not None and chosen == choice_index(expected, options))
    raise ValueError(f"unknown scorer {scorer!r}; expected one of {', '.join(SCORERS)}")
