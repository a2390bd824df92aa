"""The error a client gets when no upstream answered, in OpenAI's shape."""

from __future__ import annotations

import json

from fastapi.responses import JSONResponse

from truecost.route.gateway.openai_api import error_response, rate_limited
from truecost.route.gateway.resilience import CircuitBreakers
from truecost.route.gateway.upstream import UpstreamFailure


def failure_response(failures: list[UpstreamFailure], breakers: CircuitBreakers,
                     headers: dict[str, str]) -> JSONResponse:
    """An upstream's own refusal (4xx) passed on; 429/503 with Retry-After when every candidate was at its rate
    limit or cooling down; else 504 when all timed out, 502 otherwise."""
    if not failures:
        return error_response(502, "no upstream to call", type_="upstream_error", code="upstream_unavailable")
    last = failures[-1]
    if not last.retryable and last.status_code is not None and last.status_code >= 400:
        try:
            content = json.loads(last.body)
        except ValueError:
            content = None
        if isinstance(content, dict) and isinstance(content.get("error"), dict):
            return JSONResponse(content, status_code=last.status_code, headers=headers)
        return error_response(last.status_code, f"upstream {last.model} refused the request: {last.message}",
                              type_="upstream_error", headers=headers)
    if all(f.reason in ("breaker", "rate_limit") for f in failures):
        limited = [f.retry_after_s or 1.0 for f in failures if f.reason == "rate_limit"]
        if limited:
            response = rate_limited("every upstream for this model is at its rate limit", min(limited),
                                    code="upstream_rate_limited")
        else:
            wait = breakers.reopens_in_s([f.model for f in failures])
            response = rate_limited("every upstream for this model is cooling down after repeated failures",
                                    wait, code="upstream_unavailable", type_="upstream_error", status_code=503)
        response.headers.update(headers)
        return response
    status = 504 if all(f.reason == "timeout" for f in failures) else 502
    summary = "; ".join(str(f) for f in failures)
    return error_response(status, f"no upstream answered: {summary}", type_="upstream_error",
                          code="upstream_timeout" if status == 504 else "upstream_unavailable", headers=headers)
