"""What the gateway adds to a model call: budget reservation, settlement and the ledger row, measured against a
bare `litellm.Router` call to the same fake OpenAI-compatible server on 127.0.0.1, in the same run.

    .venv/bin/python benchmarks/gateway_overhead.py [--calls 300] [--db sqlite|URL]

Prints p50/p95 of: the bare Router call, the gateway call, and the gateway's own time per call (the call minus
the Router time inside it, timed around the Router). Target (issue 5): gateway overhead p50 ≤ 3 ms.
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


async def main_async(calls: int, db: str) -> None:
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
        for _ in range(20):  # warm both paths (tokenizer load, connection pools)
            await bare.acompletion(model="gpt", messages=msgs, max_tokens=64)
            await gw.acomplete("acme", msgs, model="gpt", max_tokens=64)
        b, g, own = [], [], []
        for _ in range(calls):
            t = time.perf_counter()
            await bare.acompletion(model="gpt", messages=msgs, max_tokens=64)
            b.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            await gw.acomplete("acme", msgs, model="gpt", max_tokens=64)
            total = (time.perf_counter() - t) * 1000
            g.append(total)
            own.append(total - timed.last)
        print(f"{calls} calls each, interleaved, database {db}:")
        for name, v in (("bare litellm.Router", b), ("gateway call", g), ("gateway's own time", own)):
            print(f"  {name:<22} p50 {pct(v, 50):6.2f} ms   p95 {pct(v, 95):6.2f} ms   "
                  f"mean {statistics.mean(v):6.2f} ms")
        print(f"  overhead p50 (gateway p50 − bare p50): {pct(g, 50) - pct(b, 50):.2f} ms; target ≤ 3 ms on the "
              f"gateway's own time: {'met' if pct(own, 50) <= 3 else 'MISSED'} ({pct(own, 50):.2f} ms)")
        print("  through the LiteLLM proxy: not measured here (the proxy extra is not installed yet)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--db", default="sqlite")
    a = ap.parse_args()
    asyncio.run(main_async(a.calls, a.db))


if __name__ == "__main__":
    main()
