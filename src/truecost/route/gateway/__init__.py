"""The truecost gateway: an OpenAI-compatible endpoint that routes each request by cost and quality.

    from truecost.route.gateway import create_app, load_gateway_settings
    app = create_app(load_gateway_settings("gateway.yaml"), ledger=Ledger())
"""

from truecost.route.gateway.routing import LengthDecision, LengthRouter, Route, Router, build_routes
from truecost.route.gateway.settings import (
    KNOB_HEADER,
    GatewaySettings,
    KeySettings,
    RouteSettings,
    UpstreamSettings,
    load_gateway_settings,
    parse_gateway_settings,
)

__all__ = ["KNOB_HEADER", "GatewaySettings", "KeySettings", "LengthDecision", "LengthRouter", "Route",
           "RouteSettings", "Router", "UpstreamSettings", "build_routes", "create_app", "load_gateway_settings",
           "parse_gateway_settings", "serve_gateway"]


def __getattr__(name: str) -> object:
    # Starlette, aiohttp and uvicorn load only when the app is built, so `truecost --help` stays fast.
    if name == "create_app":
        from truecost.route.gateway.app import create_app

        return create_app
    if name == "serve_gateway":
        from truecost.route.gateway.serve import serve_gateway

        return serve_gateway
    raise AttributeError(name)
