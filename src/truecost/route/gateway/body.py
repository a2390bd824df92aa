"""Request bodies read within a size limit, and parsed off the event loop when large.

A body over the limit is refused with 413 before it is buffered: a declared Content-Length over the limit is
refused without reading a byte, and a body sent without one (chunked) is counted as it streams in and refused as
soon as it passes the limit. So one client's 50 MB upload can neither grow the gateway's memory nor stall the
event loop that serves everyone else.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
from fastapi import Request
from fastapi.responses import JSONResponse

from truecost.route.gateway.openai_api import error_response

# Bodies above this many bytes are parsed on a worker thread: json.loads of a few MB holds the loop for ms.
PARSE_OFF_LOOP_BYTES = 256 * 1024


class BodyTooLarge(Exception):
    """The request body passed the gateway's limit."""


def too_large(limit_bytes: int) -> JSONResponse:
    """413 in OpenAI's error shape."""
    return error_response(413, f"request body is larger than the gateway's limit of {limit_bytes} bytes "
                          "(max_body_bytes in gateway.yaml)", code="request_too_large")


async def read_body(request: Request, limit_bytes: int) -> bytes:
    """The whole body, or BodyTooLarge as soon as it is known to pass `limit_bytes`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit_bytes:
        raise BodyTooLarge()
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit_bytes:
            raise BodyTooLarge()
        parts.append(chunk)
    return b"".join(parts)


async def parse_json_object(body: bytes) -> dict[str, Any] | JSONResponse:
    """The body as a JSON object, or a 400 naming what is wrong; large bodies are parsed off the event loop."""
    try:
        if len(body) > PARSE_OFF_LOOP_BYTES:
            payload = await anyio.to_thread.run_sync(json.loads, body)
        else:
            payload = json.loads(body)
    except ValueError:
        return error_response(400, "request body is not valid JSON", code="invalid_json")
    if not isinstance(payload, dict):
        return error_response(400, "request body must be a JSON object", code="invalid_json")
    return payload


async def read_json_object(request: Request, limit_bytes: int) -> dict[str, Any] | JSONResponse:
    """`read_body` then `parse_json_object`, with the 413 as a response."""
    try:
        body = await read_body(request, limit_bytes)
    except BodyTooLarge:
        return too_large(limit_bytes)
    return await parse_json_object(body)
