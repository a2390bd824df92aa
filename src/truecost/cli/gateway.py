"""`truecost gateway`: serve an OpenAI-compatible endpoint that routes each request by cost and quality."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from truecost.cli._common import JSON_OPTION, console, err_console, load_config, open_ledger, print_json


def register(app: typer.Typer) -> None:
    """Add the gateway command to the root app."""

    @app.command("gateway")
    def gateway(
        config_path: Path = typer.Option(Path("gateway.yaml"), "--config", "-c",
                                         help="Gateway file: upstreams, routes, keys and budgets (YAML)."),
        host: str | None = typer.Option(None, "--host", help="Listen address (default: listen.host in the file)."),
        port: int | None = typer.Option(None, "--port", help="Listen port (default: listen.port in the file)."),
        check: bool = typer.Option(False, "--check", help="Validate the file and load the routers, then exit."),
        as_json: bool = JSON_OPTION,
    ) -> None:
        """Serve an OpenAI-compatible gateway that routes each request by cost and quality.

        Clients send POST /v1/chat/completions with model "auto", another route, or an upstream's name.

        The route's router picks the upstream per request; the knob comes from the file or the X-Truecost-Knob
        header. Every request is priced and written to the ledger.

        Anthropic clients use POST /v1/messages; embeddings POST /v1/embeddings. /metrics (Prometheus) and
        /v1/spend need the admin key; /healthz is open. Ctrl-C stops it and prints a summary.
        """
        from truecost.route.gateway.routing import build_routes
        from truecost.route.gateway.serve import serve_gateway
        from truecost.route.gateway.settings import load_gateway_settings

        settings = load_gateway_settings(config_path)
        routes = build_routes(settings)
        if settings.cache.enabled and settings.cache.semantic is not None:
            from truecost.route.gateway.cache import check_semantic_embedder

            check_semantic_embedder()
        summary_routes: dict[str, dict[str, Any]] = {
            name: {"router": type(r.router).__name__ if r.router is not None else None, "models": r.models,
                   "knob": r.knob} for name, r in routes.items()}
        if check:
            doc = {"config": str(config_path), "listen": f"{host or settings.listen.host}:"
                   f"{settings.listen.port if port is None else port}", "routes": summary_routes,
                   "upstreams": {u.name: u.base_url for u in settings.upstreams}}
            if as_json:
                print_json(doc)
            else:
                console.print(f"{config_path}: valid; routes: " + ", ".join(
                    f"{n} -> {', '.join(r['models'])}" for n, r in summary_routes.items()), markup=False)
            return
        ledger = open_ledger(settings.ledger)
        listen = f"http://{host or settings.listen.host}:{settings.listen.port if port is None else port}"
        err_console.print(f"truecost gateway on {listen}/v1 (routes: {', '.join(routes)}); Ctrl-C stops it",
                          markup=False)
        results = serve_gateway(settings, ledger=ledger, config=load_config(),
                                routers={n: r.router for n, r in routes.items() if r.router is not None},
                                host=host, port=port)
        if as_json:
            print_json(results)
        else:
            console.print(f"served {results['requests']} requests ({results['ok']} ok, {results['errors']} failed, "
                          f"{results['rejected']} refused, {results['cache_hits']} from the cache), upstream spend "
                          f"${results['upstream_cost_usd']:.4f}, saved by the cache ${results['cache_saved_usd']:.4f}",
                          markup=False)
