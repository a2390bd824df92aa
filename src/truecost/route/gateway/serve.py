"""Run the gateway under uvicorn for as long as it serves, metered as one `serve` run in the ledger."""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING, Any

from truecost.errors import UserError
from truecost.route.gateway.settings import GatewaySettings

if TYPE_CHECKING:
    from truecost.config import Config
    from truecost.ledger import Ledger


def serve_gateway(settings: GatewaySettings, *, ledger: Ledger, config: Config, routers: dict[str, Any] | None = None,
                  host: str | None = None, port: int | None = None, log_level: str = "warning") -> dict[str, Any]:
    """Serve until stopped (Ctrl-C or SIGTERM); returns the run's summary (requests, tokens, upstream spend).

    The run's own cost is the gateway's CPU time; what the upstreams cost is summed per request and kept in
    `results["upstream_cost_usd"]`, since the requests table already prices each call.
    """
    import uvicorn

    from truecost.route.gateway.app import create_app

    host = host or settings.listen.host
    port = settings.listen.port if port is None else port
    params = {"listen": f"{host}:{port}", "upstreams": [u.name for u in settings.upstreams],
              "routes": {name: route.model_dump(mode="json") for name, route in settings.routes.items()},
              "keys": [k.name for k in settings.keys], "log_text": settings.log_text}
    with ledger.run("serve", settings.name, params=params, prices=config.compute_prices()) as run:
        app = create_app(settings, routers=routers, ledger=ledger, run_id=run.id, config=config)
        gateway = app.state.gateway
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                                               timeout_graceful_shutdown=10))
        _serve_until_stopped(server, host, port)
        if not server.started:
            raise UserError(f"gateway could not start on {host}:{port} (is the port in use?)")
        stats = gateway.stats
        run.tokens = int(stats["prompt_tokens"] + stats["completion_tokens"])
        run.results.update({"requests": int(stats["requests"]), "ok": int(stats["ok"]),
                            "errors": int(stats["errors"]), "rejected": int(stats["rejected"]),
                            "fallbacks": int(stats["fallbacks"]), "prompt_tokens": int(stats["prompt_tokens"]),
                            "completion_tokens": int(stats["completion_tokens"]),
                            "upstream_cost_usd": float(stats["cost_usd"]),
                            "cache_hits": int(stats["cache_hits"]), "cache_saved_usd": float(stats["saved_usd"]),
                            "ledger_write_failures": gateway.recorder.failed if gateway.recorder else 0})
        return dict(run.results)


class _Stop(Exception):
    """SIGTERM, turned into an exception so the run record is closed and the summary printed."""


def _serve_until_stopped(server: Any, host: str, port: int) -> None:
    """Run uvicorn; Ctrl-C and SIGTERM (which uvicorn re-raises once it has shut down) end it normally."""

    def _on_term(_signum: int, _frame: Any) -> None:
        raise _Stop()

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_term) if in_main else None
    try:
        server.run()
    except (KeyboardInterrupt, _Stop):
        pass
    except OSError as exc:
        raise UserError(f"gateway cannot listen on {host}:{port}: {exc}") from exc
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
