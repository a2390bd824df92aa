"""What the truecost gateway adds on top of calling an upstream directly, on loopback (127.0.0.1 only).

Starts an OpenAI-compatible upstream (its own process) and the real `truecost gateway` CLI (its own process,
logging every request to a SQLite ledger), then measures from this process, `--runs` times (default 3), and
prints the median of each figure with its range over the runs:

1. latency at concurrency 1 against the zero-latency upstream: direct and via-gateway calls interleaved, so
   drifting machine load hits both alike; added latency = via-gateway minus direct;
2. throughput at concurrency C: N requests direct, then N via the gateway; requests/s and failures;
3. the gateway process's CPU-milliseconds per request (from /proc; wall time is distorted on a shared machine);
4. a realistic upstream: time to first token drawn from a lognormal (median 300 ms, sigma 0.5, seeded by the
   prompt so a direct call and its gateway twin wait the same), then 20 tokens streamed at 50 tokens/s; the
   gateway's overhead as a share of end-to-end latency;
5. the cache's hit path: a repeated request answered from the gateway's cache, against the direct call to the
   zero-latency upstream;
6. the routing decision (`route_ms` in the ledger rows) and losing none: every request the gateway answered
   has its row in the ledger once the gateway has stopped.

Targets (issue 15): routing p50 <= 10 ms, added latency p50 <= 15 ms, >= 100 requests/s, none lost, cache hit
path <= 2 ms added. The peer is the upstream called directly, in the same run.

    .venv/bin/python bench/gateway_load.py [--requests 2000] [--concurrency 16] [--runs 3] [--router DIR]
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


TTFT_MEDIAN_S, TTFT_SIGMA, STREAM_TOKENS, TOKENS_PER_S = 0.3, 0.5, 20, 50.0


def realistic_ttft_s(prompt: bytes) -> float:
    """Time to first token, lognormal around 300 ms, seeded by the prompt (a direct call and its twin match)."""
    import hashlib
    import random

    seed = int.from_bytes(hashlib.sha256(prompt).digest()[:8], "big")
    return random.Random(seed).lognormvariate(0.0, TTFT_SIGMA) * TTFT_MEDIAN_S


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _stream_tokens(send: Any) -> None:
    """20 tokens at a fixed rate, then usage and [DONE], as an OpenAI-compatible server streams."""
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0, "model": "bench"}
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
    for i in range(STREAM_TOKENS):
        if i:
            await asyncio.sleep(1 / TOKENS_PER_S)
        chunk = {**base, "choices": [{"index": 0, "delta": {"content": " tok"}, "finish_reason": None}]}
        await send({"type": "http.response.body", "body": f"data: {json.dumps(chunk)}\n\n".encode(),
                    "more_body": True})
    usage = {**base, "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": STREAM_TOKENS}}
    await send({"type": "http.response.body", "body": f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode()})


async def upstream_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """`/zero/...`: the same small completion at once; `/real/...`: a lognormal wait, then a token stream."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["path"].startswith("/real/"):
        await asyncio.sleep(realistic_ttft_s(json.loads(body)["messages"][-1]["content"].encode()))
        await _stream_tokens(send)
        return
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


def median_range(values: list[float]) -> tuple[float, float, float]:
    """(median, min, max) over repeated runs."""
    import statistics

    return (statistics.median(values), min(values), max(values)) if values else (float("nan"),) * 3


async def one(client: httpx.AsyncClient, url: str, model: str, prompt: str | None = None) -> tuple[bool, float]:
    started = time.perf_counter()
    body = BODY if prompt is None else {"messages": [{"role": "user", "content": prompt}]}
    try:
        response = await client.post(url, json={**body, "model": model})
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


async def stream_one(client: httpx.AsyncClient, url: str, model: str, prompt: str) -> tuple[bool, float]:
    """One streamed request read to its end; (all tokens arrived, end-to-end ms)."""
    started = time.perf_counter()
    tokens = 0
    try:
        async with client.stream("POST", url, json={"model": model, "stream": True,
                                                    "messages": [{"role": "user", "content": prompt}]}) as response:
            async for line in response.aiter_lines():
                tokens += line.startswith("data: {") and '"content"' in line
    except httpx.HTTPError:
        return False, 0.0
    return tokens == STREAM_TOKENS, (time.perf_counter() - started) * 1000


async def realistic_phase(direct: str, via: str, pairs: int, concurrency: int, run: int) -> dict[str, list[float]]:
    """Streamed calls to the realistic upstream; each prompt once direct and once via the gateway (same wait)."""
    out: dict[str, list[float]] = {"direct": [], "gateway": [], "failed": []}
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=60, trust_env=False) as client:

        async def pair(i: int) -> None:
            async with limit:
                prompt = f"run {run} question {i}: what is two plus two?"
                ok_d, ms_d = await stream_one(client, direct, "bench", prompt)
                ok_g, ms_g = await stream_one(client, via, "auto-real", prompt)
                if ok_d and ok_g:
                    out["direct"].append(ms_d)
                    out["gateway"].append(ms_g)
                else:
                    out["failed"].append(1.0)

        await asyncio.gather(*(pair(i) for i in range(pairs)))
    return out


async def cache_phase(direct: str, via: str, count: int) -> dict[str, list[float]]:
    """A repeated request answered from the cache, paired with a direct call to the zero-latency upstream."""
    out: dict[str, list[float]] = {"direct": [], "gateway": []}
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
        await one(client, via, "cached")  # the miss that fills the cache
        for _ in range(10):
            await one(client, direct, "bench")
        for _ in range(count):
            ok_d, ms_d = await one(client, direct, "bench")
            ok_g, ms_g = await one(client, via, "cached")
            if ok_d and ok_g:
                out["direct"].append(ms_d)
                out["gateway"].append(ms_g)
    return out


# -- the run -------------------------------------------------------------------------------------------------

def gateway_config(work: Path, upstream_port: int, gateway_port: int, router: Path | None) -> None:
    """gateway.yaml: the zero-latency pair behind `auto` (and `cached`), the realistic pair behind `auto-real`."""
    models = ["small", "large"]
    route: dict[str, Any] = {"length_router": {"threshold_chars": 400}, "models": models}
    if router:
        from truecost.route import load_router

        models = load_router(router).models
        route = {"router": str(router.resolve())}
    zero, real = f"http://{HOST}:{upstream_port}/zero/v1", f"http://{HOST}:{upstream_port}/real/v1"
    upstreams = [{"name": name, "base_url": zero, "input_usd_per_1m": 0.15 * 10 ** i,
                  "output_usd_per_1m": 0.6 * 10 ** i} for i, name in enumerate(models)]
    upstreams += [{"name": f"real-{i}", "base_url": real, "input_usd_per_1m": 0.15, "output_usd_per_1m": 0.6}
                  for i in range(2)]
    (work / "gateway.yaml").write_text(json.dumps({
        "listen": {"host": HOST, "port": gateway_port}, "name": "gateway-load-bench", "upstreams": upstreams,
        "cache": {"enabled": True, "ttl_s": 3600},
        "routes": {"auto": {**route, "cache_ttl_s": 0},
                   "auto-real": {"length_router": {"threshold_chars": 400}, "models": ["real-0", "real-1"],
                                 "cache_ttl_s": 0},
                   "cached": {"models": [models[0]]}}}))


def one_run(args: argparse.Namespace, direct: str, via: str, real_direct: str, gateway_pid: int,
            run: int) -> dict[str, Any]:
    """Every phase once; the figures of this run."""
    cap = args.time_cap_s
    lat = asyncio.run(latency_phase(direct, via, args.latency_requests, time.monotonic() + cap))
    thr_direct = asyncio.run(throughput_phase(direct, "bench", args.requests, args.concurrency, time.monotonic() + cap))
    cpu1 = cpu_seconds(gateway_pid)
    thr_gateway = asyncio.run(throughput_phase(via, "auto", args.requests, args.concurrency, time.monotonic() + cap))
    cpu_ms = (cpu_seconds(gateway_pid) - cpu1) * 1000 / max(1, thr_gateway["sent"])
    real = asyncio.run(realistic_phase(real_direct, via, args.realistic_pairs, 8, run))
    hits = asyncio.run(cache_phase(direct, via, args.latency_requests // 2))
    # Each prompt waits the same upstream time direct and via the gateway: the paired difference is the overhead.
    added_real = pct([g - d for g, d in zip(real["gateway"], real["direct"], strict=True)], 50)
    return {
        "direct_p50_ms": pct(lat["direct"], 50), "gateway_p50_ms": pct(lat["gateway"], 50),
        "added_p50_ms": pct([g - d for g, d in zip(lat["gateway"], lat["direct"], strict=True)], 50),
        "added_p95_ms": pct(lat["gateway"], 95) - pct(lat["direct"], 95),
        "direct_rps": thr_direct["rps"], "gateway_rps": thr_gateway["rps"],
        "gateway_c_p50_ms": thr_gateway["p50_ms"], "direct_c_p50_ms": thr_direct["p50_ms"],
        "gateway_ok": thr_gateway["ok"], "gateway_sent": thr_gateway["sent"], "gateway_failed": thr_gateway["failed"],
        "cpu_ms_per_request": cpu_ms,
        "real_direct_p50_ms": pct(real["direct"], 50), "real_gateway_p50_ms": pct(real["gateway"], 50),
        "real_added_p50_ms": added_real, "real_overhead_share": added_real / pct(real["gateway"], 50),
        "real_failed": len(real["failed"]),
        "cache_hit_p50_ms": pct(hits["gateway"], 50), "cache_direct_p50_ms": pct(hits["direct"], 50),
        "cache_added_p50_ms": pct([g - d for g, d in zip(hits["gateway"], hits["direct"], strict=True)], 50),
        "load_avg_1m": os.getloadavg()[0],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per throughput run")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency-requests", type=int, default=200, help="pairs in the latency phase")
    parser.add_argument("--realistic-pairs", type=int, default=48, help="pairs of streamed realistic calls")
    parser.add_argument("--runs", type=int, default=3, help="repeat every phase; medians and ranges are printed")
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
    gateway_config(work, upstream_port, gateway_port, args.router)
    upstream = subprocess.Popen([sys.executable, __file__, "--serve-upstream", str(upstream_port)])
    gateway = subprocess.Popen([sys.executable, "-m", "truecost", "--ledger", ledger_url, "gateway", "--config",
                                str(work / "gateway.yaml"), "--json"], cwd=work, stdout=subprocess.PIPE)
    try:
        wait_ready(f"http://{HOST}:{upstream_port}/", upstream)
        wait_ready(f"http://{HOST}:{gateway_port}/healthz", gateway)
        direct = f"http://{HOST}:{upstream_port}/zero/v1/chat/completions"
        real_direct = f"http://{HOST}:{upstream_port}/real/v1/chat/completions"
        via = f"http://{HOST}:{gateway_port}/v1/chat/completions"
        runs = [one_run(args, direct, via, real_direct, gateway.pid, run) for run in range(args.runs)]
    finally:
        gateway.send_signal(signal.SIGINT)
        summary_out, _ = gateway.communicate(timeout=120)
        upstream.send_signal(signal.SIGINT)
        upstream.wait(timeout=30)
    return report(args, runs, ledger_url, json.loads(summary_out or "{}"))


def report(args: argparse.Namespace, runs: list[dict[str, Any]], ledger_url: str, summary: dict[str, Any]) -> int:
    """Medians and ranges over the runs, the ledger check and the targets."""
    from truecost.ledger import Ledger

    ledger = Ledger(ledger_url)
    (run,) = ledger.list_runs(kind="serve")
    rows = ledger.list_requests(run_id=run.id)
    route_ms = [float(r.extra["route_ms"]) for r in rows if r.route == "auto" and "route_ms" in r.extra]
    figures = {key: median_range([float(r[key]) for r in runs]) for key in runs[0]}
    results = {"runs": runs, "median_range": figures, "routing_p50_ms": pct(route_ms, 50),
               "routing_p95_ms": pct(route_ms, 95), "ledger_rows": len(rows),
               "gateway_answered": summary.get("requests", -1), "serve_run_status": run.status,
               "router": str(args.router) if args.router else "length", "cpu_count": os.cpu_count()}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print_table(results, args)
    lost = results["gateway_answered"] - len(rows) + sum(r["gateway_failed"] + r["real_failed"] for r in runs)
    targets = {"routing p50 <= 10 ms": results["routing_p50_ms"] <= 10,
               "added latency p50 <= 15 ms": figures["added_p50_ms"][0] <= 15,
               ">= 100 req/s": figures["gateway_rps"][0] >= 100, "none lost": lost == 0,
               "cache hit path adds <= 2 ms": figures["cache_added_p50_ms"][0] <= 2}
    for name, met in targets.items():
        print(f"  target {name}: {'met' if met else 'NOT met'}")
    return 0 if all(targets.values()) else 1


def print_table(r: dict[str, Any], args: argparse.Namespace) -> None:
    f = r["median_range"]
    loads = f["load_avg_1m"]
    print(f"\ngateway load on {HOST}: {args.runs} runs, median [min-max]; {r['cpu_count']} CPUs, "
          f"load {loads[1]:.1f}-{loads[2]:.1f}; router: {r['router']}")
    print(f"{'measure':<46}{'direct (peer)':>24}{'via gateway':>24}")

    def cell(key: str) -> str:
        median, low, high = f[key]
        return f"{median:.2f} [{low:.2f}-{high:.2f}]"

    for name, peer, ours in [
        ("zero upstream: latency p50, conc. 1 (ms)", "direct_p50_ms", "gateway_p50_ms"),
        (f"zero upstream: requests/s, conc. {args.concurrency}", "direct_rps", "gateway_rps"),
        (f"zero upstream: latency p50, conc. {args.concurrency} (ms)", "direct_c_p50_ms", "gateway_c_p50_ms"),
        ("realistic upstream: streamed end-to-end p50 (ms)", "real_direct_p50_ms", "real_gateway_p50_ms"),
        ("cache hit vs zero upstream: p50 (ms)", "cache_direct_p50_ms", "cache_hit_p50_ms"),
    ]:
        print(f"{name:<46}{cell(peer):>24}{cell(ours):>24}")
    for name, key in [("added latency p50, zero upstream (ms)", "added_p50_ms"),
                      ("added latency p95, zero upstream (ms)", "added_p95_ms"),
                      ("added latency p50, realistic upstream (ms)", "real_added_p50_ms"),
                      ("overhead share of end-to-end, realistic", "real_overhead_share"),
                      ("cache hit path added p50 (ms)", "cache_added_p50_ms"),
                      ("gateway CPU per request (ms)", "cpu_ms_per_request")]:
        print(f"{name:<46}{'':>24}{cell(key):>24}")
    print(f"{'routing decision p50 / p95 (ms, ledger)':<46}{'':>24}"
          f"{r['routing_p50_ms']:>11.3f} / {r['routing_p95_ms']:<10.3f}")
    rows = f"{r['ledger_rows']}/{r['gateway_answered']}"
    print(f"{'ledger rows / requests answered':<46}{'':>24}{rows:>24}")


if __name__ == "__main__":
    sys.exit(main())
