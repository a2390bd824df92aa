"""Plain records that the ledger stores and returns; the public shape of a run and a request."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

RUN_KINDS = ("estimate", "curate", "train", "tune", "serve", "route", "review", "monitor", "demo", "synth", "other")
# `lost`: the process died without closing the run (kill -9, OOM, preemption); the spend is what it last flushed.
RUN_STATUSES = ("running", "completed", "failed", "stopped", "lost")


@dataclass
class RunRecord:
    """A metered unit of work: what it was, how long it ran, what it used and what it cost."""

    id: str
    kind: str
    name: str
    started_at: datetime
    status: str = "running"
    ended_at: datetime | None = None
    hardware: str = ""
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    gpu_hours: float = 0.0
    energy_kwh: float = 0.0
    cost_usd: float = 0.0
    tokens: int = 0
    parent_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    host: str = ""
    pid: int | None = None
    heartbeat_at: datetime | None = None  # last time the running process proved alive (and flushed its spend)
    heartbeat_seconds: float | None = None  # how often it promised to; None: it sends no heartbeat

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (datetimes as ISO 8601 strings)."""
        data = asdict(self)
        for key in ("started_at", "ended_at", "heartbeat_at"):
            if data[key] is not None:
                data[key] = data[key].isoformat()
        return data


@dataclass
class RequestRecord:
    """One gateway request: where it went, what it used, what it cost and how long it took."""

    timestamp: datetime
    model: str
    route: str = ""
    api_key: str = ""
    status: str = "ok"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    router_score: float | None = None
    quality: float | None = None
    prompt: str | None = None
    output: str | None = None
    run_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    team: str = ""
    user: str = ""  # the end user the client named (`user` field or header)
    tags: list[str] = field(default_factory=list)
    cache_hit: bool = False  # answered from the gateway's cache: cost 0, `saved_usd` what the call would have cost
    saved_usd: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (timestamp as ISO 8601)."""
        data = asdict(self)
        data["timestamp"] = self.timestamp.isoformat()
        return data
