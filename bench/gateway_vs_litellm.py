"""truecost's gateway against the LiteLLM proxy: one fake upstream, one load generator, one run (127.0.0.1 only).

Four targets, all started once and then measured `--runs` times (default 3), in an order that rotates from run to
run so that drifting machine load hits each alike; every figure is printed as median [min-max] over the runs:

1. direct: the upstream of bench/gateway_load.py called with no gateway (the floor);
2. truecost: `truecost gateway` with the built-in length router, started as bench/gateway_load.py starts it (two
   priced upstreams behind the `auto` route, no cache on it, a SQLite ledger row per request);
3. LiteLLM as advised: the proxy configured for the same job as its production page advises (docs.litellm.ai
   /docs/proxy/prod, read 2026-12-06): one config.yaml with the same two priced models as two deployments of the
   model group `auto` on the same upstream, LiteLLM's own simple-shuffle router picking one per request; no
   database, no callbacks; `--num_workers 1` (truecost runs one process); LITELLM_LOG=ERROR, set_verbose off,
   spend and error logs off;
4. LiteLLM at its defaults: the same model list and nothing else, its CLI's default workers and logging.

Per gateway: added latency p50 and p95 over direct at concurrency 1 (calls paired with direct ones, zero-latency
upstream); requests/s and latency p50 at concurrency C; CPU-milliseconds per request of the gateway's process and
its children (psutil; wall time is distorted on a shared machine); the realistic upstream (streamed; first token
after a lognormal wait around 300 ms seeded by the prompt, then 20 tokens at 50/s), its added p50 and the share of
end-to-end latency that is; lost requests (not answered with a full, correct reply); and, beside our measure,
what LiteLLM says it added (its `x-litellm-overhead-duration-ms` response header, 50 calls at concurrency 1).
Ratios are truecost over LiteLLM, taken within each run, then the median and range of those.

LiteLLM runs in its own venv (bench/.venv-litellm, created on first use: a few minutes) and never reaches the
network at run time: offline mode, the cost map bundled with the package, telemetry off.

    .venv/bin/python bench/gateway_vs_litellm.py [--requests 1000] [--concurrency 16] [--runs 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx
import psutil

import _peer  # bench/ is on sys.path when a bench runs as a script
import gateway_load as load  # the same upstream, prompts, load generator and statistics as the gateway bench

LITELLM_VERSION = "1.108.7"  # newest whose [proxy] extra resolves on PyPI on 2026-12-06 (see docs/gateway.md)
PEER_VENV = Path(__file__).resolve().parent / ".venv-litellm"
# No network at run time: the bundled cost map instead of GitHub's, no usage telemetry, no update checks.
OFFLINE_ENV = {"LITELLM_OFFLINE_MODE": "true", "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False",
               "DISABLE_SCHEMA_UPDATE": "true", "NO_DOCS": "True", "NO_REDOC": "True"}
GATEWAYS = ("truecost", "litellm_advised", "litellm_defaults")
# LiteLLM refuses to start without a master key (even at its defaults), so every gateway here checks this one.
MASTER_KEY = "sk-bench-gateway-vs-litellm"
AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}
LITELLM_OVERHEAD_HEADER = "x-litellm-overhead-duration-ms"  # LiteLLM's own count of what it added to a call
MODELS = (("small", 0.15, 0.6), ("large", 1.5, 6.0))  # gateway_load.gateway_config's prices, USD per 1M tokens


OneRequest = TypeVar("OneRequest", bound=Callable[..., Coroutine[Any, Any, tuple[bool, float]]])


def _with_key(one: OneRequest) -> OneRequest:
    """gateway_load's one request, sent with the bench's key (its load phases look `one` up when they call it)."""

    async def send(client: httpx.AsyncClient, url: str, model: str, prompt: str, tag: str) -> tuple[bool, float]:
        client.headers.update(AUTH)
        return await one(client, url, model, prompt, tag)

    return cast(OneRequest, send)


load.one = _with_key(load.one)


# -- LiteLLM: its venv, its config, its process -----------------------------------------------------------------

def litellm_python() -> Path:
    """The interpreter of LiteLLM's own venv, created with the pinned `litellm[proxy]` on first use."""
    offline = "".join(f"os.environ[{k!r}] = {v!r}; " for k, v in OFFLINE_ENV.items())
    return _peer.peer_python(PEER_VENV, [f"litellm[proxy]=={LITELLM_VERSION}"],
                             f"import os; {offline}import litellm.proxy.proxy_server")


def litellm_config(upstream_port: int, advised: bool) -> dict[str, Any]:
    """config.yaml (written as JSON, a subset of YAML): the same two priced models as one model group `auto`."""
    deployments = [{"model_name": "auto", "litellm_params": {
        "model": f"openai/{name}", "api_base": f"http://{load.HOST}:{upstream_port}/v1", "api_key": "bench",
        "input_cost_per_token": usd_in / 1e6, "output_cost_per_token": usd_out / 1e6}}
        for name, usd_in, usd_out in MODELS]
    if not advised:
        return {"model_list": deployments}
    return {"model_list": deployments,
            "router_settings": {"routing_strategy": "simple-shuffle"},
            "litellm_settings": {"set_verbose": False, "request_timeout": 600, "telemetry": False},
            "general_settings": {"disable_spend_logs": True, "disable_error_logs": True}}


def litellm_command(python: Path, config: Path, port: int, advised: bool) -> list[str]:
    command = [str(python.with_name("litellm")), "--config", str(config), "--host", load.HOST, "--port", str(port)]
    return command + (["--num_workers", "1"] if advised else [])


def litellm_version(python: Path) -> str:
    code = "import importlib.metadata as m; print(m.version('litellm'))"
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout.strip()


# -- processes ----------------------------------------------------------------------------------------------------

@dataclass
class Server:
    """A server this bench started in its own session (so its workers stop with it) and where it listens."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    ready_url: str


def start(name: str, command: list[str], url: str, ready_url: str, work: Path, env: dict[str, str]) -> Server:
    log = (work / f"{name}.log").open("wb")
    process = subprocess.Popen(command, cwd=work, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    return Server(name, process, url, ready_url)


def stop(server: Server) -> None:
    """SIGINT to the server's own process group, then SIGKILL to that group if it has not gone in 30 s."""
    if server.process.poll() is not None:
        return
    os.killpg(server.process.pid, signal.SIGINT)
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=30)


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, its live descendants and the children it has reaped."""
    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + (times.children_user + times.children_system) * (process is root)
    return total


# -- the realistic upstream, read by content (a proxy may re-frame the stream's chunks) ----------------------------

def content_tokens(line: str) -> int:
    """1 for an SSE line carrying a non-empty content delta, else 0."""
    if not line.startswith("data: {"):
        return 0
    choices = json.loads(line[6:]).get("choices") or [{}]
    return int(bool((choices[0].get("delta") or {}).get("content")))


async def stream_one(client: httpx.AsyncClient, url: str, model: str, prompt: str) -> tuple[bool, float]:
    """One streamed request read to its end; (every token arrived, end-to-end ms)."""
    started = time.perf_counter()
    tokens = 0
    try:
        async with client.stream("POST", url, headers=AUTH, json={"model": model, "stream": True, "messages": [
                {"role": "user", "content": prompt}]}) as response:
            async for line in response.aiter_lines():
                tokens += content_tokens(line)
    except (httpx.HTTPError, json.JSONDecodeError):
        return False, 0.0
    return tokens == load.STREAM_TOKENS, (time.perf_counter() - started) * 1000


async def self_reported_ms(url: str, header: str, count: int, prompts: load.Prompts) -> list[float]:
    """What a gateway says it added, from its own response header, over `count` calls at concurrency 1."""
    found: list[float] = []
    async with httpx.AsyncClient(timeout=30, trust_env=False, headers=AUTH) as client:
        for _ in range(count):
            response = await client.post(url, json={"model": "auto", "messages": [
                {"role": "user", "content": prompts()}]})
            if header in response.headers:
                found.append(float(response.headers[header]))
    return found


# -- one run ---------------------------------------------------------------------------------------------------

def measure_gateway(args: argparse.Namespace, direct: str, server: Server, prompts: load.Prompts
                    ) -> dict[str, float]:
    """Every phase once against one gateway; its figures for this run."""
    cap = args.time_cap_s
    lat = asyncio.run(load.latency_phase(direct, server.url, args.latency_requests, time.monotonic() + cap, prompts))
    cpu_before = tree_cpu_s(server.process.pid)
    thr = asyncio.run(load.throughput_phase(server.url, "auto", args.requests, args.concurrency,
                                            time.monotonic() + cap, prompts))
    cpu_ms = (tree_cpu_s(server.process.pid) - cpu_before) * 1000 / max(1, thr["sent"])
    own = asyncio.run(self_reported_ms(server.url, LITELLM_OVERHEAD_HEADER, 50, prompts))  # none from truecost
    # a proxy's first streams load code lazily: warm that path before measuring it
    real = asyncio.run(load.realistic_phase(direct, server.url, args.realistic_pairs, 8, prompts, stream=stream_one,
                                            warmup=4))
    added_real = load.pct([g - d for g, d in zip(real["gateway"], real["direct"], strict=True)], 50)
    return {
        "added_p50_ms": load.pct([g - d for g, d in zip(lat["gateway"], lat["direct"], strict=True)], 50),
        "added_p95_ms": load.pct(lat["gateway"], 95) - load.pct(lat["direct"], 95),
        "rps": thr["rps"], "c_p50_ms": thr["p50_ms"], "cpu_ms_per_request": cpu_ms,
        "real_added_p50_ms": added_real, "real_overhead_pct": 100 * added_real / load.pct(real["gateway"], 50),
        **({"own_overhead_p50_ms": load.pct(own, 50)} if own else {}),
        "lost": float(len(lat["failed"]) + thr["failed"] + len(real["failed"])),
        "sent": float(len(lat["direct"]) + len(lat["failed"]) + thr["sent"] + args.realistic_pairs),
    }


def one_run(args: argparse.Namespace, direct: str, servers: dict[str, Server], run: int) -> dict[str, Any]:
    """Direct throughput and every gateway once, starting one place further along the list each run."""
    prompts = load.Prompts(f"r{run}")
    names = ["direct", *servers]
    figures: dict[str, Any] = {"load_avg_1m": os.getloadavg()[0]}
    for name in names[run % len(names):] + names[:run % len(names)]:
        print(f"  run {run + 1}: {name}", file=sys.stderr, flush=True)
        if name == "direct":
            thr = asyncio.run(load.throughput_phase(direct, "bench", args.requests, args.concurrency,
                                                    time.monotonic() + args.time_cap_s, prompts))
            figures[name] = {"rps": thr["rps"], "c_p50_ms": thr["p50_ms"], "lost": float(thr["failed"])}
        else:
            figures[name] = measure_gateway(args, direct, servers[name], prompts)
    return figures


# -- the whole bench ---------------------------------------------------------------------------------------------

def start_all(work: Path, python: Path) -> tuple[Server, dict[str, Server]]:
    """The upstream, truecost's gateway and the two LiteLLM proxies, each in its own process group."""
    ports = {name: load.free_port() for name in ("upstream", *GATEWAYS)}
    path = "/v1/chat/completions"
    upstream = start("upstream", [sys.executable, load.__file__, "--serve-upstream", str(ports["upstream"])],
                     f"http://{load.HOST}:{ports['upstream']}{path}", f"http://{load.HOST}:{ports['upstream']}/",
                     work, {})
    load.gateway_config(work, ports["upstream"], ports["truecost"], None)
    config = json.loads((work / "gateway.yaml").read_text())
    (work / "gateway.yaml").write_text(json.dumps({**config, "keys": [{"name": "bench", "key": MASTER_KEY}]}))
    servers = {"truecost": start(
        "truecost", [sys.executable, "-m", "truecost", "--ledger", f"sqlite:///{work / 'ledger.db'}", "gateway",
                     "--config", str(work / "gateway.yaml"), "--json"],
        f"http://{load.HOST}:{ports['truecost']}{path}", f"http://{load.HOST}:{ports['truecost']}/healthz", work, {})}
    for name, advised in (("litellm_advised", True), ("litellm_defaults", False)):
        config = work / f"{name}.yaml"
        config.write_text(json.dumps(litellm_config(ports["upstream"], advised), indent=1))
        env = {**OFFLINE_ENV, "LITELLM_MASTER_KEY": MASTER_KEY, **({"LITELLM_LOG": "ERROR"} if advised else {})}
        servers[name] = start(name, litellm_command(python, config, ports[name], advised),
                              f"http://{load.HOST}:{ports[name]}{path}",
                              f"http://{load.HOST}:{ports[name]}/health/liveliness", work, env)
    return upstream, servers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per throughput phase")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency-requests", type=int, default=200, help="pairs in the latency phase")
    parser.add_argument("--realistic-pairs", type=int, default=48, help="pairs of streamed realistic calls")
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs; medians and ranges are printed")
    parser.add_argument("--time-cap-s", type=float, default=60.0, help="cap per phase")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    python = litellm_python()
    work = Path(tempfile.mkdtemp(prefix="truecost-vs-litellm-"))
    upstream, servers = start_all(work, python)
    started = time.perf_counter()
    try:
        for server in (upstream, *servers.values()):
            load.wait_ready(server.ready_url, server.process)
        startup_s = time.perf_counter() - started
        runs = [one_run(args, upstream.url, servers, run) for run in range(args.runs)]
    except RuntimeError as error:
        print(f"{error}; logs in {work}", file=sys.stderr)
        return 1
    finally:
        for server in (*servers.values(), upstream):
            stop(server)
    shutil.rmtree(work)  # kept, with every server's log, only when something failed
    results = summarise(runs)
    results.update(litellm_version=litellm_version(python), startup_s=startup_s, cpu_count=os.cpu_count(),
                   configs={name: litellm_config(0, name == "litellm_advised") for name in GATEWAYS[1:]})
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print_table(results, args)
    return 0


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """(median, min, max) of every figure of every target, and of truecost's per-run ratio to each LiteLLM."""
    figures = {name: {key: load.median_range([r[name][key] for r in runs]) for key in runs[0][name]}
               for name in ("direct", *GATEWAYS)}
    ratios = {peer: {key: load.median_range([r["truecost"][key] / r[peer][key] for r in runs if r[peer][key]])
                     for key in ("rps", "c_p50_ms", "added_p50_ms", "added_p95_ms", "cpu_ms_per_request")}
              for peer in GATEWAYS[1:]}
    loads = [r["load_avg_1m"] for r in runs]
    return {"runs": runs, "median_range": figures, "ratio_truecost_over": ratios, "load_1m": [min(loads), max(loads)]}


def print_table(r: dict[str, Any], args: argparse.Namespace) -> None:
    f, ratio = r["median_range"], r["ratio_truecost_over"]
    low, high = r["load_1m"]
    print(f"\ntruecost gateway vs LiteLLM {r['litellm_version']} proxy on {load.HOST}: {args.runs} interleaved runs, "
          f"median [min-max]; {r['cpu_count']} CPUs, load {low:.1f}-{high:.1f}; {args.requests} requests at "
          f"concurrency {args.concurrency} per throughput phase; servers ready in {r['startup_s']:.0f} s")

    def cell(name: str, key: str, digits: int = 2) -> str:
        if key not in f[name]:
            return "-"
        median, lo, hi = f[name][key]
        return f"{median:.{digits}f} [{lo:.{digits}f}-{hi:.{digits}f}]"

    def ratio_cell(peer: str, key: str) -> str:
        median, lo, hi = ratio[peer].get(key, (float("nan"),) * 3)
        return "-" if median != median else f"{median:.2f}x [{lo:.2f}-{hi:.2f}]"

    columns = ("direct", *GATEWAYS)
    print(f"{'measure':<42}" + "".join(f"{c:>24}" for c in columns) + f"{'tc/advised':>21}{'tc/defaults':>21}")
    for label, key, digits in (
            (f"requests/s, conc. {args.concurrency}", "rps", 0),
            (f"latency p50, conc. {args.concurrency} (ms)", "c_p50_ms", 1),
            ("added latency p50, conc. 1 (ms)", "added_p50_ms", 2),
            ("added latency p95, conc. 1 (ms)", "added_p95_ms", 2),
            ("overhead by its own header p50, conc. 1 (ms)", "own_overhead_p50_ms", 2),
            ("gateway CPU per request (ms)", "cpu_ms_per_request", 2),
            ("realistic upstream: added p50 (ms)", "real_added_p50_ms", 1),
            ("realistic upstream: share of end-to-end %", "real_overhead_pct", 2),
            ("lost requests (per run)", "lost", 0)):
        print(f"{label:<42}" + "".join(f"{cell(c, key, digits):>24}" for c in columns)
              + f"{ratio_cell('litellm_advised', key):>21}{ratio_cell('litellm_defaults', key):>21}")
    sent = sum(run[name]["sent"] for run in r["runs"] for name in GATEWAYS) // len(GATEWAYS)
    print(f"requests per gateway over all runs: {sent:.0f}. Headline: truecost against LiteLLM as advised "
          "(tc/advised); ratios are truecost/LiteLLM within each run (req/s: above 1 is truecost faster; latency "
          "and CPU: below 1 is truecost cheaper).")


if __name__ == "__main__":
    sys.exit(main())
