"""The checks a cascade route runs on the cheap model's answer before accepting it (FrugalGPT-style).

Rules are pure functions of the answer; `verifier: true` asks the route's fitted cascade router
(`truecost.route.routers.CascadeRouter.escalate`), which reads the prompt and the answer.
"""

from __future__ import annotations

import json
import re
from typing import Any

from truecost.route.gateway.settings import CascadeSettings


def answer_text(completion: dict[str, Any]) -> str:
    """The first choice's message text."""
    choices = completion.get("choices") or [{}]
    content = (choices[0].get("message") or {}).get("content") if isinstance(choices[0], dict) else None
    return content if isinstance(content, str) else ""


def mean_logprob(completion: dict[str, Any]) -> float | None:
    """The mean token log-probability of the first choice, when the upstream returned logprobs."""
    choices = completion.get("choices") or [{}]
    tokens = ((choices[0].get("logprobs") or {}).get("content") or []) if isinstance(choices[0], dict) else []
    values = [float(t["logprob"]) for t in tokens if isinstance(t, dict) and "logprob" in t]
    return sum(values) / len(values) if values else None


def rule_failure(check: CascadeSettings, completion: dict[str, Any]) -> str | None:
    """Why the answer fails the route's rules, or None when it passes them all."""
    text = answer_text(completion)
    if check.min_chars is not None and len(text.strip()) < check.min_chars:
        return f"shorter than {check.min_chars} characters"
    if check.max_chars is not None and len(text) > check.max_chars:
        return f"longer than {check.max_chars} characters"
    if check.pattern is not None and re.search(check.pattern, text) is None:
        return f"does not match {check.pattern!r}"
    if check.json_object:
        try:
            if not isinstance(json.loads(text), dict):
                return "is not a JSON object"
        except ValueError:
            return "is not JSON"
    if check.min_mean_logprob is not None:
        logprob = mean_logprob(completion)
        if logprob is not None and logprob < check.min_mean_logprob:
            return f"mean log-probability {logprob:.3f} below {check.min_mean_logprob:g}"
    return None


def verifier_failure(router: Any, prompt: str, completion: dict[str, Any], knob: float) -> str | None:
    """Why the route's cascade router would escalate this answer, or None to keep it."""
    decision = router.escalate(prompt, answer_text(completion), knob)
    return None if decision is None else f"verifier escalates to {decision.model}"
