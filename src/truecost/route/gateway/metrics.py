"""Prometheus metrics of one gateway, in its own registry so several gateways (or tests) never collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class GatewayMetrics:
    """Counters and histograms exposed at /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("truecost_gateway_requests", "Chat completion requests answered, by outcome.",
                                ["route", "model", "status"], registry=r)
        self.rejected = Counter("truecost_gateway_rejected", "Requests refused before any upstream call.",
                                ["reason"], registry=r)
        self.latency = Histogram("truecost_gateway_request_seconds", "Time from request to last byte sent.",
                                 ["route"], registry=r,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
        self.upstream_errors = Counter("truecost_gateway_upstream_errors", "Failed upstream calls, by reason.",
                                       ["model", "reason"], registry=r)
        self.fallbacks = Counter("truecost_gateway_fallbacks", "Requests served by a model after another failed.",
                                 ["route", "model"], registry=r)
        self.tokens = Counter("truecost_gateway_tokens", "Tokens used, by model and kind (prompt/completion).",
                              ["model", "kind"], registry=r)
        self.cost = Counter("truecost_gateway_cost_usd", "Upstream spend in USD, by model.", ["model"], registry=r)
        self.budget_spent = Gauge("truecost_gateway_key_spent_usd", "USD spent per API key name.", ["key"],
                                  registry=r)
        self.cache_hits = Counter("truecost_gateway_cache_hits", "Requests answered from the cache.", ["route"],
                                  registry=r)
        self.saved = Counter("truecost_gateway_saved_usd", "USD the cache saved (what the hits would have cost).",
                             ["route"], registry=r)
        self.ledger_pending = Gauge("truecost_gateway_ledger_pending", "Request records queued for the ledger.",
                                    registry=r)
