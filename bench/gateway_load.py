"""What the truecost gateway adds on top of calling an upstream directly, on loopback (127.0.0.1 only).

Starts a minimal OpenAI-compatible upstream (its own process) and the real `truecost gateway` CLI (its own
process, logging every request to a SQLite ledger), then measures from this process:

1. latency at concurrency 1: direct and via-gateway calls interleaved, so drifting machine load hits both alike;
   added latency = via-gateway minus direct (p50 and p95 of the paired differences too);
2. throughput at concurrency C: N requests direct, then N via the gateway; requests/s and failures;
3. the gateway process's CPU-milliseconds per request (from /proc; wall time is distorted on a shared machine);
4. losing none: every request the gateway answered has its row in the ledger once the gateway has stopped.

Targets (issue 6): the gateway adds <= 15 ms p50 and holds >= 100 requests/s losing none.
The peer is the upstream called directly; the ratio column compares the two in the same run.

    .venv/bin/python bench/gateway_load.py [--requests 2000] [--concurrency 16] [--latency-requests 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[1]

# -- the upstream: a bare ASGI app, so the machine's CPU goes to what is measured ----------------------------

_REPLY = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "bench",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Four."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14},
}).encode()


async def upstream_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer every POST with the same small chat completion."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(_REPLY)).encode())]})
    await send({"type": "http.response.body", "body": _REPLY})


def serve_upstream(port: int) -> None:
    import uvicorn

    uvicorn.run(upstream_app, host=HOST, port=port, log_level="warning", access_log=False)


# -- helpers -----------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {timeout_s:.0f} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else float("nan")


BODY = {"model": "auto", "messages": [{"role": "user", "content": "What is two plus two?"}]}


async def one(client: httpx.AsyncClient, url: str, model: str) -> tuple[bool, float]:
    started = time.perf_counter()
    try:
        response = await client.post(url, json={**BODY, "model": model})
        ok = response.status_code == 200 and response.json()["choices"][0]["message"]["content"] == "Four."
    except httpx.HTTPError:
        ok = False
    return ok, (time.perf_counter() - started) * 1000


async def latency_phase(direct: str, gateway: str, count: int, deadline: float) -> dict[str, list[float]]:
    """Concurrency 1, direct and gateway calls alternating."""
    out: dict[str, list[float]] = {"direct": [], "gateway": [], "failed": []}
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
        for _ in range(20):  # warm both connection pools
            await one(client, direct, "bench")
            await one(client, gateway, "auto")
        for _ in range(count):
            if time.monotonic() > deadline:
                break
            ok_d, ms_d = await one(client, direct, "bench")
            ok_g, ms_g = await one(client, gateway, "auto")
            if ok_d and ok_g:
                out["direct"].append(ms_d)
                out["gateway"].append(ms_g)
            else:
                out["failed"].append(1.0)
    return out


async def throughput_phase(url: str, model: str, count: int, concurrency: int, deadline: float) -> dict[str, Any]:
    """`count` requests from `concurrency` workers; stops issuing new ones at the deadline."""
    latencies: list[float] = []
    failed = 0
    sent = 0
    # One small client per worker: httpx spends CPU per request in proportion to its pool's size, and the load
    # generator shares the CPUs with what it measures.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [httpx.AsyncClient(timeout=30, limits=limits, trust_env=False) for _ in range(concurrency)]

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal sent, failed
        while sent < count and time.monotonic() < deadline:
            sent += 1
            ok, ms = await one(client, url, model)
            if ok:
                latencies.append(ms)
            else:
                failed += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(client) for client in clients))
    wall_s = time.perf_counter() - started
    for client in clients:
        await client.aclose()
    return {"sent": sent, "ok": len(latencies), "failed": failed, "wall_s": wall_s,
            "rps": len(latencies) / wall_s if wall_s else 0.0, "p50_ms": pct(latencies, 50),
            "p95_ms": pct(latencies, 95)}


# -- the run -------------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per throughput run")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency-requests", type=int, default=300, help="pairs in the latency phase")
    parser.add_argument("--time-cap-s", type=float, default=60.0, help="cap per phase")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--router", type=Path, help="route `auto` with this fitted two-model router (saved by "
                        "`truecost route fit`) instead of the built-in length router; its models name the upstreams")
    parser.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream:
        serve_upstream(args.serve_upstream)
        return 0

    work = Path(tempfile.mkdtemp(prefix="truecost-gateway-bench-"))
    upstream_port, gateway_port = free_port(), free_port()
    ledger_url = f"sqlite:///{work / 'ledger.db'}"
    models = ["small", "large"]
    route: dict[str, Any] = {"length_router": {"threshold_chars": 400}, "models": models}
    if args.router:
        from truecost.route import load_router

        models = load_router(args.router).models
        route = {"router": str(args.router.resolve())}
    (work / "gateway.yaml").write_text(json.dumps({
        "listen": {"host": HOST, "port": gateway_port}, "name": "gateway-load-bench",
        "upstreams": [{"name": name, "base_url": f"http://{HOST}:{upstream_port}/v1",
                       "prompt_usd_per_1m_tokens": 0.15 * 10 ** i, "completion_usd_per_1m_tokens": 0.6 * 10 ** i}
                      for i, name in enumerate(models)],
        "routes": {"auto": route},
    }))
    upstream = subprocess.Popen([sys.executable, __file__, "--serve-upstream", str(upstream_port)])
    gateway = subprocess.Popen([sys.executable, "-m", "truecost", "--ledger", ledger_url, "gateway", "--config",
                                str(work / "gateway.yaml"), "--json"], cwd=work, stdout=subprocess.PIPE)
    try:
        wait_ready(f"http://{HOST}:{upstream_port}/", upstream)
        wait_ready(f"http://{HOST}:{gateway_port}/healthz", gateway)
        direct = f"http://{HOST}:{upstream_port}/v1/chat/completions"
        via = f"http://{HOST}:{gateway_port}/v1/chat/completions"
        lat = asyncio.run(latency_phase(direct, via, args.latency_requests, time.monotonic() + args.time_cap_s))
        cpu0 = cpu_seconds(gateway.pid)
        thr_direct = asyncio.run(throughput_phase(direct, "bench", args.requests, args.concurrency,
                                                  time.monotonic() + args.time_cap_s))
        cpu1 = cpu_seconds(gateway.pid)
        thr_gateway = asyncio.run(throughput_phase(via, "auto", args.requests, args.concurrency,
                                                   time.monotonic() + args.time_cap_s))
        gateway_cpu_ms = (cpu_seconds(gateway.pid) - cpu1) * 1000 / max(1, thr_gateway["sent"])
        idle_cpu_ms = (cpu1 - cpu0) * 1000  # the gateway's own CPU while only the upstream was loaded
    finally:
        gateway.send_signal(signal.SIGINT)
        summary_out, _ = gateway.communicate(timeout=120)
        upstream.send_signal(signal.SIGINT)
        upstream.wait(timeout=30)

    from truecost.ledger import Ledger

    ledger = Ledger(ledger_url)
    (run,) = ledger.list_runs(kind="serve")
    rows = len(ledger.list_requests(run_id=run.id))
    summary = json.loads(summary_out or "{}")
    answered = summary.get("requests", -1)
    pairs = list(zip(lat["gateway"], lat["direct"], strict=True))
    added = [g - d for g, d in pairs]
    results = {
        "latency": {"pairs": len(pairs), "failed": len(lat["failed"]),
                    "direct_p50_ms": pct(lat["direct"], 50), "direct_p95_ms": pct(lat["direct"], 95),
                    "gateway_p50_ms": pct(lat["gateway"], 50), "gateway_p95_ms": pct(lat["gateway"], 95),
                    "added_p50_ms": pct(lat["gateway"], 50) - pct(lat["direct"], 50),
                    "added_p95_ms": pct(lat["gateway"], 95) - pct(lat["direct"], 95),
                    "paired_added_p50_ms": pct(added, 50), "paired_added_p95_ms": pct(added, 95)},
        "throughput": {"concurrency": args.concurrency, "direct": thr_direct, "gateway": thr_gateway},
        "gateway_cpu_ms_per_request": gateway_cpu_ms, "gateway_idle_cpu_ms": idle_cpu_ms,
        "ledger": {"gateway_answered": answered, "ledger_rows": rows, "serve_run_status": run.status},
        "cpu_count": os.cpu_count(), "load_avg_1m": os.getloadavg()[0],
    }
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print_table(results)
    lost = answered - rows
    ok = (results["latency"]["added_p50_ms"] <= 15 and thr_gateway["rps"] >= 100
          and thr_gateway["failed"] == 0 and lost == 0 and thr_gateway["ok"] == args.requests)
    print(f"targets (added p50 <= 15 ms, >= 100 req/s, none lost): {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


def print_table(r: dict[str, Any]) -> None:
    lat, thr = r["latency"], r["throughput"]
    d, g = thr["direct"], thr["gateway"]
    rows = [
        ("latency p50, concurrency 1 (ms)", lat["direct_p50_ms"], lat["gateway_p50_ms"]),
        ("latency p95, concurrency 1 (ms)", lat["direct_p95_ms"], lat["gateway_p95_ms"]),
        (f"requests/s, concurrency {thr['concurrency']}", d["rps"], g["rps"]),
        (f"latency p50, concurrency {thr['concurrency']} (ms)", d["p50_ms"], g["p50_ms"]),
        (f"latency p95, concurrency {thr['concurrency']} (ms)", d["p95_ms"], g["p95_ms"]),
        ("requests ok / sent", f"{d['ok']}/{d['sent']}", f"{g['ok']}/{g['sent']}"),
    ]
    print(f"\ngateway load on {HOST} ({r['cpu_count']} CPUs, load {r['load_avg_1m']:.1f})")
    print(f"{'measure':<36}{'direct (peer)':>16}{'via gateway':>16}{'ratio':>9}")
    for name, peer, ours in rows:
        if isinstance(peer, float):
            ratio = f"{ours / peer:.2f}x" if peer else "-"
            print(f"{name:<36}{peer:>16.2f}{ours:>16.2f}{ratio:>9}")
        else:
            print(f"{name:<36}{peer:>16}{ours:>16}{'':>9}")
    print(f"{'added latency p50 / p95 (ms)':<36}{'':>16}{lat['added_p50_ms']:>7.2f} / {lat['added_p95_ms']:<6.2f}")
    print(f"{'  same, median of paired differences':<36}{'':>16}"
          f"{lat['paired_added_p50_ms']:>7.2f} / {lat['paired_added_p95_ms']:<6.2f}")
    print(f"{'gateway CPU per request (ms)':<36}{'':>16}{r['gateway_cpu_ms_per_request']:>16.2f}")
    # What one otherwise idle core could carry, from CPU time: comparable across runs on a busy machine.
    print(f"{'requests/s per free core (from CPU)':<36}{'':>16}{1000 / r['gateway_cpu_ms_per_request']:>16.0f}")
    ledger = r["ledger"]
    print(f"{'ledger rows / requests answered':<36}{'':>16}"
          f"{str(ledger['ledger_rows']) + '/' + str(ledger['gateway_answered']):>16}")


if __name__ == "__main__":
    sys.exit(main())
