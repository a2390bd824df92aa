"""What the truecost gateway adds on top of calling an upstream directly, on loopback (127.0.0.1 only).

Starts an OpenAI-compatible upstream (its own process) and the real `truecost gateway` CLI (its own process,
logging every request to a SQLite ledger), then measures from this process, `--runs` times (default 3), and
prints the median of each figure with its range over the runs:

1. latency at concurrency 1 against the zero-latency upstream: direct and via-gateway calls interleaved, so
   drifting machine load hits both alike; added latency = via-gateway minus direct;
2. throughput at concurrency C: N requests direct, then N via the gateway; requests/s and failures;
3. CPU-milliseconds per request of the gateway, the upstream and this load generator (from /proc; wall time
   is distorted on a shared machine), and what one core sustains at the gateway's CPU cost;
4. a realistic upstream (every streamed request): time to first token drawn from a lognormal (median 300 ms,
   sigma 0.5, seeded by the prompt so a direct call and its gateway twin wait the same), then 20 tokens
   streamed at 50 tokens/s; the gateway's overhead as a share of end-to-end latency;
5. the cache's hit path: a repeated request to a cached route (same router as `auto`) answered from the
   gateway's cache, against the direct call to the zero-latency upstream;
6. the routing decision (`route_ms` in the ledger rows) at concurrency 1 and at concurrency C, and losing none:
   every request the gateway answered has its row in the ledger once the gateway has stopped.

Every prompt is new (a counter and varied words, 100-400 characters like MMLU's), so a learned router embeds
each one instead of finding it in its embedding cache. Targets (issue 15): routing p50 <= 10 ms, added latency
p50 <= 15 ms, >= 100 requests/s, none lost, cache hit path <= 2 ms added. The peer is the upstream called
directly, in the same run. `--profile FILE` samples the gateway with py-spy during the first throughput phase.

    .venv/bin/python bench/gateway_load.py [--requests 2000] [--concurrency 16] [--runs 3] [--router DIR]
        [--fit minilm-static|minilm|gated [--band 0.05]] [--strong-share 0.5]

`--fit EMBEDDER` first fits the classifier router on half the shared RouteLLM MMLU sample with that embedder (as
`truecost route fit --router classifier --embedder EMBEDDER` would; `gated`: `--router gated`) and routes the other
half's prompts with it, each behind a number no other has, at the knob that sends `--strong-share` of the
training prompts to the strong model; the fitting is not timed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
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
    """A plain request gets the same small completion at once (zero latency); a streamed one is the realistic
    upstream: a lognormal wait, then a token stream. One server, so the same upstreams serve both phases."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if b'"stream": true' in body or b'"stream":true' in body:
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


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float = 300) -> None:
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


def median_range(values: list[float]) -> tuple[float, float, float]:
    """(median, min, max) over repeated runs."""
    import statistics

    return (statistics.median(values), min(values), max(values)) if values else (float("nan"),) * 3


_WORDS = ("the of and to in is that for it as with was on be by at this which from or an are not have had but "
          "what all were when we there can been one do will their if would about how many much energy force mass "
          "law court market price cell gene protein theory value number function equation prime field group "
          "ring model country war treaty empire patient disease drug acid enzyme voltage current circuit "
          "contract liability tax income capital ethics virtue duty argument premise conclusion")


class Prompts:
    """New prompts, 100-400 characters (MMLU's middle 80% run 124-397), each with a number no other has; with
    `pool`, real prompts (the held-out MMLU half for a fitted router) taken in turn behind that number."""

    def __init__(self, tag: str, pool: list[str] | None = None) -> None:
        self.tag = tag
        self.count = 0
        self.rng = random.Random(tag)
        self.words = _WORDS.split()
        self.pool = pool

    def __call__(self) -> str:
        self.count += 1
        if self.pool:
            return f"Question {self.tag}-{self.count}: {self.pool[self.count % len(self.pool)]}"
        words = " ".join(self.rng.choice(self.words) for _ in range(self.rng.randint(16, 70)))
        return f"Question {self.tag}-{self.count}: {words}?"


async def one(client: httpx.AsyncClient, url: str, model: str, prompt: str, tag: str) -> tuple[bool, float]:
    started = time.perf_counter()
    body = {"model": model, "messages": [{"role": "user", "content": prompt}]}
    try:
        response = await client.post(url, json=body, headers={"X-Truecost-Tags": tag})
        ok = response.status_code == 200 and response.json()["choices"][0]["message"]["content"] == "Four."
    except httpx.HTTPError:
        ok = False
    return ok, (time.perf_counter() - started) * 1000


async def latency_phase(direct: str, gateway: str, count: int, deadline: float, prompts: Prompts
                        ) -> dict[str, list[float]]:
    """Concurrency 1, direct and gateway calls alternating, each gateway call with a new prompt."""
    out: dict[str, list[float]] = {"direct": [], "gateway": [], "failed": []}
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
        for _ in range(20):  # warm both connection pools
            await one(client, direct, "bench", prompts(), "warm")
            await one(client, gateway, "auto", prompts(), "warm")
        for _ in range(count):
            if time.monotonic() > deadline:
                break
            ok_d, ms_d = await one(client, direct, "bench", prompts(), "latency")
            ok_g, ms_g = await one(client, gateway, "auto", prompts(), "latency")
            if ok_d and ok_g:
                out["direct"].append(ms_d)
                out["gateway"].append(ms_g)
            else:
                out["failed"].append(1.0)
    return out


async def throughput_phase(url: str, model: str, count: int, concurrency: int, deadline: float,
                           prompts: Prompts) -> dict[str, Any]:
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
            ok, ms = await one(client, url, model, prompts(), "throughput")
            if ok:
                latencies.append(ms)
            else:
                failed += 1

    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(client) for client in clients))
    wall_s = time.perf_counter() - started
    client_cpu_s = time.process_time() - cpu_started
    for client in clients:
        await client.aclose()
    return {"sent": sent, "ok": len(latencies), "failed": failed, "wall_s": wall_s, "client_cpu_s": client_cpu_s,
            "rps": len(latencies) / wall_s if wall_s else 0.0, "p50_ms": pct(latencies, 50),
            "p95_ms": pct(latencies, 95)}


async def stream_one(client: httpx.AsyncClient, url: str, model: str, prompt: str) -> tuple[bool, float]:
    """One streamed request read to its end; (all tokens arrived, end-to-end ms)."""
    started = time.perf_counter()
    tokens = 0
    try:
        async with client.stream("POST", url, headers={"X-Truecost-Tags": "realistic"},
                                 json={"model": model, "stream": True,
                                       "messages": [{"role": "user", "content": prompt}]}) as response:
            async for line in response.aiter_lines():
                tokens += line.startswith("data: {") and '"content"' in line
    except httpx.HTTPError:
        return False, 0.0
    return tokens == STREAM_TOKENS, (time.perf_counter() - started) * 1000


async def realistic_phase(direct: str, via: str, pairs: int, concurrency: int, prompts: Prompts, *,
                          stream: Callable[..., Awaitable[tuple[bool, float]]] | None = None, warmup: int = 0
                          ) -> dict[str, list[float]]:
    """Streamed calls to the realistic upstream; each prompt once direct and once via the gateway (same wait).

    `stream` replaces `stream_one` (another gateway's stream format); `warmup` unmeasured streams go first."""
    stream_one_ = stream or stream_one
    out: dict[str, list[float]] = {"direct": [], "gateway": [], "failed": []}
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=60, trust_env=False) as client:
        for _ in range(warmup):
            await stream_one_(client, via, "auto", prompts())

        async def pair() -> None:
            async with limit:
                prompt = prompts()
                ok_d, ms_d = await stream_one_(client, direct, "bench", prompt)
                ok_g, ms_g = await stream_one_(client, via, "auto", prompt)
                if ok_d and ok_g:
                    out["direct"].append(ms_d)
                    out["gateway"].append(ms_g)
                else:
                    out["failed"].append(1.0)

        await asyncio.gather(*(pair() for _ in range(pairs)))
    return out


async def cache_phase(direct: str, via: str, count: int, prompts: Prompts) -> dict[str, list[float]]:
    """A repeated request answered from the cache, paired with a direct call to the zero-latency upstream."""
    out: dict[str, list[float]] = {"direct": [], "gateway": []}
    repeated = prompts()
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
        await one(client, via, "cached", repeated, "cache")  # the miss that fills the cache
        for _ in range(10):
            await one(client, direct, "bench", prompts(), "warm")
        for _ in range(count):
            ok_d, ms_d = await one(client, direct, "bench", prompts(), "cache")
            ok_g, ms_g = await one(client, via, "cached", repeated, "cache")
            if ok_d and ok_g:
                out["direct"].append(ms_d)
                out["gateway"].append(ms_g)
    return out


# -- the run -------------------------------------------------------------------------------------------------

def gateway_config(work: Path, upstream_port: int, gateway_port: int, router: Path | None,
                   strong_share: float | None = None) -> None:
    """gateway.yaml: two upstreams (named after the router's models) behind `auto` (no cache) and `cached`."""
    models = ["small", "large"]
    route: dict[str, Any] = {"length_router": {"threshold_chars": 400}, "models": models}
    if router:
        from truecost.route import load_router

        models = load_router(router).models
        route = {"router": str(router.resolve())}
        if strong_share is not None:
            route["strong_share"] = strong_share
    base_url = f"http://{HOST}:{upstream_port}/v1"
    upstreams = [{"name": name, "base_url": base_url, "input_usd_per_1m": 0.15 * 10 ** i,
                  "output_usd_per_1m": 0.6 * 10 ** i} for i, name in enumerate(models)]
    (work / "gateway.yaml").write_text(json.dumps({
        "listen": {"host": HOST, "port": gateway_port}, "name": "gateway-load-bench", "upstreams": upstreams,
        "cache": {"enabled": True, "ttl_s": 3600},
        "routes": {"auto": {**route, "cache_ttl_s": 0}, "cached": route}}))


def fit_bench_router(work: Path, embedder: str, data: Path, band: float) -> tuple[Path, list[str]]:
    """The classifier router fitted on half the shared RouteLLM MMLU sample (1,841 queries, Mixtral-8x7B vs
    GPT-4-1106, RouteLLM's prices) with `embedder` (`gated`: the gated router at `band`), saved under `work`; and
    the other half's prompts, which the bench sends."""
    sys.path.insert(0, str(ROOT / "bench"))
    from route_eval import load_mmlu  # the same data and prices as the router evaluation
    from truecost.route import router_class

    train, test = load_mmlu(data, work).split(0.5, seed=0)
    make = router_class("gated")(band=band) if embedder == "gated" else router_class("classifier")(embedder=embedder)
    return make.fit(train).save(work / f"router-{embedder}"), list(test.prompts)


def close_call_share(router_dir: Path, prompts: list[str], strong_share: float) -> float | None:
    """A gated router's share of `prompts` embedded twice at the knob of `strong_share` (None: not gated)."""
    from truecost.route import load_router

    router = load_router(router_dir)
    gated = getattr(router, "gated", None)
    return None if gated is None else float(gated(prompts, router.knob_for_strong_share(strong_share)).mean())


def _profiled(pid: int, out: Path | None) -> subprocess.Popen[bytes] | None:
    """py-spy sampling the gateway (its raw collapsed stacks to `out`) until stopped with SIGINT."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if out is None or not Path(py_spy).exists():
        return None
    return subprocess.Popen([py_spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "200",
                             "--nonblocking", "--output", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def one_run(args: argparse.Namespace, urls: dict[str, str], pids: dict[str, int], run: int) -> dict[str, Any]:
    """Every phase once; the figures of this run."""
    cap = args.time_cap_s
    prompts = Prompts(f"r{run}", args.pool)
    lat = asyncio.run(latency_phase(urls["direct"], urls["via"], args.latency_requests, time.monotonic() + cap,
                                    prompts))
    thr_direct = asyncio.run(throughput_phase(urls["direct"], "bench", args.requests, args.concurrency,
                                              time.monotonic() + cap, prompts))
    profiler = _profiled(pids["gateway"], args.profile if run == 0 else None)
    cpu1 = {name: cpu_seconds(pid) for name, pid in pids.items()}
    thr_gateway = asyncio.run(throughput_phase(urls["via"], "auto", args.requests, args.concurrency,
                                               time.monotonic() + cap, prompts))
    cpu_ms = {name: (cpu_seconds(pid) - cpu1[name]) * 1000 / max(1, thr_gateway["sent"]) for name, pid in pids.items()}
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        profiler.wait(timeout=60)
    real = asyncio.run(realistic_phase(urls["direct"], urls["via"], args.realistic_pairs, 8, prompts))
    hits = asyncio.run(cache_phase(urls["direct"], urls["via"], args.latency_requests // 2, prompts))
    # Each prompt waits the same upstream time direct and via the gateway: the paired difference is the overhead.
    added_real = pct([g - d for g, d in zip(real["gateway"], real["direct"], strict=True)], 50)
    return {
        "direct_p50_ms": pct(lat["direct"], 50), "gateway_p50_ms": pct(lat["gateway"], 50),
        "added_p50_ms": pct([g - d for g, d in zip(lat["gateway"], lat["direct"], strict=True)], 50),
        "added_p95_ms": pct(lat["gateway"], 95) - pct(lat["direct"], 95),
        "direct_rps": thr_direct["rps"], "gateway_rps": thr_gateway["rps"],
        "gateway_c_p50_ms": thr_gateway["p50_ms"], "direct_c_p50_ms": thr_direct["p50_ms"],
        "gateway_ok": thr_gateway["ok"], "gateway_sent": thr_gateway["sent"], "gateway_failed": thr_gateway["failed"],
        "cpu_ms_per_request": cpu_ms["gateway"], "upstream_cpu_ms_per_request": cpu_ms["upstream"],
        "client_cpu_ms_per_request": thr_gateway["client_cpu_s"] * 1000 / max(1, thr_gateway["sent"]),
        "one_core_rps": 1000 / cpu_ms["gateway"] if cpu_ms["gateway"] else float("nan"),
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
    parser.add_argument("--router", type=Path, help="route with this fitted two-model router (saved by "
                        "`truecost route fit`) instead of the built-in length router; its models name the upstreams")
    parser.add_argument("--fit", metavar="EMBEDDER", help="fit the classifier router on half the shared MMLU sample "
                        "with this embedder (minilm-static: the fast one; minilm: MiniLM int8; gated: static, int8 "
                        "for close calls) and route the other half's prompts with it")
    parser.add_argument("--band", type=float, default=0.05, help="--fit gated: the close-call band")
    parser.add_argument("--strong-share", type=float, default=0.5, help="--fit: the route's share of calls to the "
                        "strong model (the gated router's close calls depend on it)")
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/routing_sample"),
                        help="the shared routing sample, for --fit")
    parser.add_argument("--profile", type=Path, help="py-spy's raw collapsed stacks of the gateway during the first "
                        "throughput phase (needs py-spy)")
    parser.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream:
        serve_upstream(args.serve_upstream)
        return 0

    work = Path(tempfile.mkdtemp(prefix="truecost-gateway-bench-"))
    upstream_port, gateway_port = free_port(), free_port()
    ledger_url = f"sqlite:///{work / 'ledger.db'}"
    args.pool, args.close_share = None, None
    if args.fit:
        args.router, args.pool = fit_bench_router(work, args.fit, args.data, args.band)
        args.close_share = close_call_share(args.router, args.pool, args.strong_share)
    gateway_config(work, upstream_port, gateway_port, args.router, args.strong_share if args.fit else None)
    upstream = subprocess.Popen([sys.executable, __file__, "--serve-upstream", str(upstream_port)])
    started = time.perf_counter()
    gateway = subprocess.Popen([sys.executable, "-m", "truecost", "--ledger", ledger_url, "gateway", "--config",
                                str(work / "gateway.yaml"), "--json"], cwd=work, stdout=subprocess.PIPE)
    try:
        wait_ready(f"http://{HOST}:{upstream_port}/", upstream)
        wait_ready(f"http://{HOST}:{gateway_port}/healthz", gateway)
        startup_s = time.perf_counter() - started
        urls = {"direct": f"http://{HOST}:{upstream_port}/v1/chat/completions",
                "via": f"http://{HOST}:{gateway_port}/v1/chat/completions"}
        pids = {"gateway": gateway.pid, "upstream": upstream.pid}
        runs = [one_run(args, urls, pids, run) for run in range(args.runs)]
    finally:
        gateway.send_signal(signal.SIGINT)
        summary_out, _ = gateway.communicate(timeout=120)
        upstream.send_signal(signal.SIGINT)
        upstream.wait(timeout=30)
    return report(args, runs, ledger_url, json.loads(summary_out or "{}"), startup_s)


def report(args: argparse.Namespace, runs: list[dict[str, Any]], ledger_url: str, summary: dict[str, Any],
           startup_s: float) -> int:
    """Medians and ranges over the runs, the ledger check and the targets."""
    from truecost.ledger import Ledger

    ledger = Ledger(ledger_url)
    (run,) = ledger.list_runs(kind="serve")
    rows = ledger.list_requests(run_id=run.id)
    route_ms = {phase: [float(r.extra["route_ms"]) for r in rows if phase in r.tags and "route_ms" in r.extra]
                for phase in ("latency", "throughput")}
    figures = {key: median_range([float(r[key]) for r in runs]) for key in runs[0]}
    results = {"runs": runs, "median_range": figures,
               "routing_ms": {phase: {"p50": pct(v, 50), "p95": pct(v, 95), "p99": pct(v, 99)}
                              for phase, v in route_ms.items()},
               "close_call_share": args.close_share,
               "cache_hit_rows": sum(r.cache_hit for r in rows), "ledger_rows": len(rows),
               "gateway_answered": summary.get("requests", -1), "serve_run_status": run.status,
               "startup_s": startup_s, "router": router_label(args),
               "cpu_count": os.cpu_count()}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print_table(results, args)
    if args.profile is not None and args.profile.exists():
        print_profile(args.profile)
    lost = results["gateway_answered"] - len(rows) + sum(r["gateway_failed"] + r["real_failed"] for r in runs)
    targets = {"routing p50 <= 10 ms (concurrency 1)": results["routing_ms"]["latency"]["p50"] <= 10,
               f"routing p50 <= 10 ms (concurrency {args.concurrency})":
                   results["routing_ms"]["throughput"]["p50"] <= 10,
               "added latency p50 <= 15 ms": figures["added_p50_ms"][0] <= 15,
               ">= 100 req/s": figures["gateway_rps"][0] >= 100,
               ">= 100 req/s of one core at the gateway's CPU per request": figures["one_core_rps"][0] >= 100,
               "none lost": lost == 0, "cache hit path adds <= 2 ms": figures["cache_added_p50_ms"][0] <= 2}
    for name, met in targets.items():
        print(f"  target {name}: {'met' if met else 'NOT met'}")
    return 0 if all(targets.values()) else 1


def router_label(args: argparse.Namespace) -> str:
    if args.fit == "gated":
        return f"gated classifier fitted on MMLU, band {args.band:g}, strong share {args.strong_share:g}"
    if args.fit:
        return f"classifier fitted on MMLU, embedder {args.fit}, strong share {args.strong_share:g}"
    return str(args.router) if args.router else "length"


def print_table(r: dict[str, Any], args: argparse.Namespace) -> None:
    f = r["median_range"]
    loads = f["load_avg_1m"]
    print(f"\ngateway load on {HOST}: {args.runs} runs, median [min-max]; {r['cpu_count']} CPUs, "
          f"load {loads[1]:.1f}-{loads[2]:.1f}; router: {r['router']}; gateway ready in {r['startup_s']:.1f} s")
    print(f"{'measure':<52}{'direct (peer)':>24}{'via gateway':>24}")

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
        print(f"{name:<52}{cell(peer):>24}{cell(ours):>24}")
    for name, key in [("added latency p50, zero upstream (ms)", "added_p50_ms"),
                      ("added latency p95, zero upstream (ms)", "added_p95_ms"),
                      ("added latency p50, realistic upstream (ms)", "real_added_p50_ms"),
                      ("overhead share of end-to-end, realistic", "real_overhead_share"),
                      ("cache hit path added p50 (ms)", "cache_added_p50_ms"),
                      ("gateway CPU per request (ms)", "cpu_ms_per_request"),
                      ("  requests/s one core sustains at that CPU cost", "one_core_rps"),
                      ("upstream CPU per gateway request (ms)", "upstream_cpu_ms_per_request"),
                      ("load generator CPU per gateway request (ms)", "client_cpu_ms_per_request")]:
        print(f"{name:<52}{'':>24}{cell(key):>24}")
    for phase, label in (("latency", "conc. 1"), ("throughput", f"conc. {args.concurrency}")):
        ms = r["routing_ms"][phase]
        print(f"{f'routing p50 / p95 / p99, {label} (ms, ledger)':<52}{'':>10}"
              f"{ms['p50']:>11.3f} / {ms['p95']:.3f} / {ms['p99']:.3f}")
    if r["close_call_share"] is not None:
        print(f"{'close calls embedded twice (gated)':<52}{'':>24}{r['close_call_share']:>24.1%}")
    rows = f"{r['ledger_rows']}/{r['gateway_answered']}"
    print(f"{'ledger rows / requests answered':<52}{'':>24}{rows:>24}")


def print_profile(path: Path, top: int = 25) -> None:
    """The gateway's busiest functions in py-spy's raw collapsed stacks: own samples and inclusive share."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        total += int(count)
        own[frames[-1]] = own.get(frames[-1], 0) + int(count)
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + int(count)
    print(f"\npy-spy, {total} samples of the gateway (own % / inclusive %):")
    for frame, samples in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {100 * samples / total:5.1f} / {100 * inclusive[frame] / total:5.1f}  {frame}")


if __name__ == "__main__":
    sys.exit(main())
