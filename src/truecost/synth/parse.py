"""Reading what a model wrote: Q/A pairs, a new instruction, a paraphrase, a judge's score.

Tolerant of the decorations small models add (bold markers, numbering, a leading "Sure!"), strict about
substance: a reply that does not hold what the template asked for yields nothing, and is counted as a `parse`
rejection rather than guessed at.
"""

from __future__ import annotations

import re

_LABEL = r"[ \t]*(?:\*\*|__)?[ \t]*{word}[ \t]*\d*[ \t]*(?:\*\*|__)?[ \t]*[:.)-][ \t]*(?:\*\*|__)?"
_Q = _LABEL.format(word=r"(?:question|q)")
_A = _LABEL.format(word=r"(?:answer|a)")
_QA_RE = re.compile(rf"(?:^|\n){_Q}(?P<q>.+?)\n+{_A}(?P<a>.+?)(?=\n{_Q}|\Z)", re.IGNORECASE | re.DOTALL)
_INSTRUCTION_RE = re.compile(r"(?:^|\n)[ \t]*(?:\*\*)?(?:new )?(?:instruction|task)[ \t]*\d*[ \t]*(?:\*\*)?[ \t]*:"
                             r"[ \t]*(?:\*\*)?[ \t]*(?P<i>.+?)(?=\n\s*\n|\n[ \t]*(?:\*\*)?(?:instruction|task|output|"
                             r"answer|response)\b|\Z)", re.IGNORECASE | re.DOTALL)
_PREAMBLE_RE = re.compile(r"^(?:sure|certainly|of course|here(?:'s| is| are)|okay|ok)\b[^\n]*[:!.]\s*$", re.IGNORECASE)
_SCORE_RE = re.compile(r"(?<![\d.])(10|[1-9])(?![\d.]\d)")
_QUOTES = "\"'\u201c\u201d\u2018\u2019`"


def _clean(text: str) -> str:
    return text.strip().strip("*_").strip().strip(_QUOTES).strip()


def parse_qa(text: str) -> list[tuple[str, str]]:
    """Every `Question: ... Answer: ...` pair in `text`, both parts non-empty."""
    pairs = []
    for match in _QA_RE.finditer(text.strip()):
        question, answer = _clean(match.group("q")), _clean(match.group("a"))
        if question and answer:
            pairs.append((question, answer))
    return pairs


def parse_instruction(text: str) -> str | None:
    """The new instruction: what follows `Instruction:`, else the first line that is not a preamble."""
    match = _INSTRUCTION_RE.search(text.strip())
    if match:
        found = _clean(match.group("i"))
        return found or None
    return parse_paraphrase(text)


def parse_paraphrase(text: str) -> str | None:
    """The rewritten text, without a leading "Sure, here it is:" line or surrounding quotes."""
    lines = [line for line in text.strip().splitlines()]
    while lines and (not lines[0].strip() or _PREAMBLE_RE.match(lines[0].strip())):
        lines.pop(0)
    body = _clean("\n".join(lines))
    body = re.sub(r"^(?:rewritten|paraphrased)(?: request| text)?\s*:\s*", "", body, flags=re.IGNORECASE)
    return _clean(body) or None


def parse_score(text: str) -> int | None:
    """The first whole number from 1 to 10 in a judge's reply."""
    match = _SCORE_RE.search(text)
    return int(match.group(1)) if match else None
