"""What the gateway adds to a model call: budget reservation, settlement and the ledger row, measured against a
bare `litellm.Router` call to the same fake OpenAI-compatible server on 127.0.0.1, in the same run.

    .venv/bin/python benchmarks/gateway_overhead.py [--calls 300] [--db sqlite|URL] [--no-proxy]

Prints p50/p95 of: the bare Router call, the gateway call, and the gateway's own time per call (the call minus
the Router time inside it, timed around the Router). Target (issue 5): gateway overhead p50 ≤ 3 ms.
With the proxy extra installed, the same loop also calls the real LiteLLM proxy (`aistack gateway serve`'s
command line, our budget/ledger callback loaded) in front of the same fake server, for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pct(v: list[float], p: float) -> float:
    s = sorted(v)
    return s[max(0, min(len(s) - 1, round(p / 100 * len(s) + 0.5) - 1))]


class Timed:
    """Wraps the Router so that the time spent inside it is known per call."""

    def __init__(self, router: Any) -> None:
        self.router = router
        self.last = 0.0

    async def acompletion(self, **kw: Any) -> Any:
        t = time.perf_counter()
        try:
            return await self.router.acompletion(**kw)
        finally:
            self.last = (time.perf_counter() - t) * 1000


def start_proxy(settings: Any, fake: Any, tmp: Path) -> tuple[Any, str, str]:
    """The real LiteLLM proxy on a free port with our callback; returns (process, url, master key)."""
    import subprocess
    import urllib.request

    import yaml

    from services.gateway import proxy
    from tests.fake_models import free_port

    cfg = tmp / "proxy.yaml"
    cfg.write_text(yaml.safe_dump({
        "model_list": [{"model_name": "gpt", "litellm_params": {
            "model": "openai/gpt-4o", "api_base": fake.api_base, "api_key": "-".join(["sk", "bench", "k" * 20])}}],
        "router_settings": {"num_retries": 0, "disable_cooldowns": True, "timeout": 10},
        "litellm_settings": {"callbacks": [proxy.CALLBACK]},
        "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"}}))
    port = free_port()
    argv, env, _ = proxy.prepare(settings, cfg, "127.0.0.1", port)
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(url + "/health/liveliness", timeout=1).close()
            return proc, url, env["LITELLM_MASTER_KEY"]
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the LiteLLM proxy did not start within 60 s")


async def main_async(calls: int, db: str, with_proxy: bool) -> None:
    from services.gateway import budgets
    from services.gateway.router import GatewayConfig, build_router
    from services.gateway.service import Gateway
    from services.settings import load_settings
    from services.store.db import make_engine, upgrade
    from tests.fake_models import FakeOpenAIServer

    tmp = Path(tempfile.mkdtemp(prefix="gw-bench-"))
    url = f"sqlite:///{tmp / 'gw.db'}" if db == "sqlite" else db
    upgrade(url)
    engine = make_engine(url)
    with FakeOpenAIServer() as fake:
        cfg = GatewayConfig(path=Path("bench.yaml"), model_list=[{"model_name": "gpt", "litellm_params": {
            "model": "openai/gpt-4o", "api_base": fake.api_base, "api_key": "-".join(["sk", "bench", "k" * 20])}}],
            router_settings={"num_retries": 0, "disable_cooldowns": True, "timeout": 10})
        t = time.perf_counter()
        bare = build_router(cfg)
        print(f"litellm import + Router: {time.perf_counter() - t:.1f} s (paid once per process)")
        gw = Gateway(load_settings(env_file=None, aistack_home=tmp, tz="UTC"), engine, cfg)
        timed = Timed(build_router(cfg))
        gw._router = timed
        budgets.set_budget(engine, "acme", Decimal("1000000"), period="month")
        msgs = [{"role": "user", "content": "Summarise the retry policy in one line."}]
        from services.gateway import proxy

        proc = None
        if with_proxy and proxy.installed():
            import httpx

            t = time.perf_counter()
            proc, url, key = start_proxy(gw.settings, fake, tmp)
            print(f"LiteLLM proxy up in {time.perf_counter() - t:.1f} s")
            http = httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
            body = {"model": "gpt", "messages": msgs, "max_tokens": 64, "metadata": {"tags": ["client:acme"]}}

            async def via_proxy() -> None:
                r = await http.post("/v1/chat/completions", json=body)
                r.raise_for_status()
        for _ in range(20):  # warm every path (tokenizer load, connection pools)
            await bare.acompletion(model="gpt", messages=msgs, max_tokens=64)
            await gw.acomplete("acme", msgs, model="gpt", max_tokens=64)
            if proc is not None:
                await via_proxy()
        b, g, own, px = [], [], [], []
        for _ in range(calls):
            t = time.perf_counter()
            await bare.acompletion(model="gpt", messages=msgs, max_tokens=64)
            b.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            await gw.acomplete("acme", msgs, model="gpt", max_tokens=64)
            total = (time.perf_counter() - t) * 1000
            g.append(total)
            own.append(total - timed.last)
            if proc is not None:
                t = time.perf_counter()
                await via_proxy()
                px.append((time.perf_counter() - t) * 1000)
        print(f"{calls} calls each, interleaved, database {db}:")
        rows = [("bare litellm.Router", b), ("gateway call", g), ("gateway's own time", own)]
        if px:
            rows.append(("through the proxy", px))
        for name, v in rows:
            print(f"  {name:<22} p50 {pct(v, 50):6.2f} ms   p95 {pct(v, 95):6.2f} ms   "
                  f"mean {statistics.mean(v):6.2f} ms")
        print(f"  overhead p50 (gateway p50 − bare p50): {pct(g, 50) - pct(b, 50):.2f} ms; target ≤ 3 ms on the "
              f"gateway's own time: {'met' if pct(own, 50) <= 3 else 'MISSED'} ({pct(own, 50):.2f} ms)")
        if px:
            print(f"  the proxy's extra latency over the bare Router (p50 − p50): {pct(px, 50) - pct(b, 50):.2f} ms "
                  "(HTTP in and out of another process, our callback included)")
            await http.aclose()
            assert proc is not None
            proc.terminate()
            proc.wait(10)
        elif with_proxy:
            print("  through the LiteLLM proxy: not measured (proxy extra not installed; ./dev test installs it)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--db", default="sqlite")
    ap.add_argument("--no-proxy", action="store_true", help="skip the LiteLLM proxy comparison")
    a = ap.parse_args()
    asyncio.run(main_async(a.calls, a.db, not a.no_proxy))


if __name__ == "__main__":
    main()
