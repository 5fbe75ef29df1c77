"""Live sessions, measured: slider-to-effect latency, streaming overhead, k-means speed, many clients.

Interactive k-means on MNIST's 60,000 training images (784 pixels), k and batch as the thesis'
MNIST run scaled to this machine, served by the real server in this process and read by real
WebSocket clients. Run: ``.venv/bin/python benchmarks/live_session.py [--quick]``.

1. Latency: from the control message arriving at the server to the first streamed value computed
   with the new setting (measured by the session itself), and from the client's send to the
   client's receipt of that value; p50 and p95 over repeated slider moves. Goal: p95 < 200 ms.
2. Streaming overhead: steps per second with two clients connected vs none, alternating windows.
   Goal: at most 5% slower.
3. k-means samples per second vs scikit-learn's MiniBatchKMeans on the same batches and k.
4. Load: 20 clients for 60 s: every client stays connected and keeps receiving; server memory.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time

import numpy as np
import psutil
import torch
from websockets.sync.client import connect

sys.path.insert(0, os.path.dirname(__file__))
from _common import REPO, machine  # noqa: E402

from modeldx.data import load_mnist  # noqa: E402
from modeldx.interactive import InteractiveKMeans  # noqa: E402
from modeldx.interactive.sessions import kmeans_session  # noqa: E402
from modeldx.live.server import BackgroundServer  # noqa: E402


def ws_url(server) -> str:
    return server.url.replace("http://", "ws://").split("?")[0] + "ws"


class Reader(threading.Thread):
    """A WebSocket client that reads everything, like a browser tab, and notes when points arrive."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self._connection = connect(url, max_size=None)
        self.ws = self._connection.__enter__()
        self.messages = 0
        self.bytes = 0
        self.latest_step = -1
        self.closed: str | None = None
        self.arrivals: list[tuple[float, int]] = []  # (time, largest step of a point in the message)
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    raw = self.ws.recv(timeout=1.0)
                except TimeoutError:
                    continue
                now = time.perf_counter()
                self.messages += 1
                self.bytes += len(raw)
                msg = json.loads(raw)
                if msg["type"] == "updates":
                    steps = [u["step"] for u in msg["updates"] if u["type"] == "point"]
                    if steps:
                        self.latest_step = max(steps)
                        self.arrivals.append((now, self.latest_step))
        except Exception as exc:  # a dropped connection is what the load test looks for
            self.closed = f"{type(exc).__name__}: {exc}"

    def close(self) -> None:
        self.stop.set()
        self.join(3)
        self._connection.__exit__(None, None, None)


def pct(values, q) -> float:
    return float(np.percentile(values, q)) * 1000


def seen(client: Reader, step: int, sent: float) -> bool:
    """Has the client received a point of ``step`` or later since ``sent``?"""
    return any(s >= step and t >= sent for t, s in client.arrivals)


def latency(server, session, moves: int) -> dict:
    client = Reader(ws_url(server))
    client.start()
    time.sleep(1.0)
    server_side, client_side = [], []
    for i in range(moves):
        value = 1.0 if i % 2 == 0 else 0.0
        sent = time.perf_counter()
        client.ws.send(json.dumps({"type": "control", "name": "size weight", "value": value}))
        deadline = time.monotonic() + 5
        event = None
        while time.monotonic() < deadline:
            done = [e for e in session.events if e.kind == "control" and e.received >= sent]
            if done and done[-1].step is not None and done[-1].first_value is not None:
                event = done[-1]
                break
            time.sleep(0.0005)
        while time.monotonic() < deadline and not seen(client, event.step, sent):
            time.sleep(0.0005)
        arrived = min(t for t, s in client.arrivals if s >= event.step and t >= sent)
        server_side.append(event.first_value - event.received)
        client_side.append(arrived - sent)
        time.sleep(0.25)
    client.close()
    return {"server p50 ms": pct(server_side, 50), "server p95 ms": pct(server_side, 95),
            "client p50 ms": pct(client_side, 50), "client p95 ms": pct(client_side, 95)}


def _quiet_browser(url: str, stop, counts) -> None:
    """A client in its own process, as a browser is: receives every message, counts it, discards it."""
    with connect(url, max_size=None) as ws:
        while not stop.is_set():
            try:
                raw = ws.recv(timeout=0.5)
            except TimeoutError:
                continue
            counts[0] += 1
            counts[1] += len(raw)


class Browsers:
    """``n`` clients in separate processes (their parsing does not hold this process's GIL)."""

    def __init__(self, url: str, n: int) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.stop = ctx.Event()
        self.counts = [ctx.Array("d", 2) for _ in range(n)]
        self.procs = [ctx.Process(target=_quiet_browser, args=(url, self.stop, c), daemon=True)
                      for c in self.counts]
        for p in self.procs:
            p.start()

    def messages(self) -> list[float]:
        return [c[0] for c in self.counts]

    def close(self) -> None:
        self.stop.set()
        for p in self.procs:
            p.join(5)


def overhead(server, session, window: float, rounds: int) -> dict:
    """Paired windows, none then two clients; the slowdown is the median of the pairs' ratios.

    The machine's speed drifts by tens of percent over minutes (shared CPU), so only adjacent
    windows are compared, and the order within a pair alternates.
    """
    def rate() -> float:
        s0, t0 = session.step, time.perf_counter()
        time.sleep(window)
        return (session.step - s0) / (time.perf_counter() - t0)

    def watched_rate() -> float:
        browsers = Browsers(ws_url(server), 2)
        deadline = time.monotonic() + 20
        while min(browsers.messages()) < 5 and time.monotonic() < deadline:  # connected and receiving
            time.sleep(0.05)
        r = rate()
        browsers.close()
        time.sleep(0.3)
        return r

    alone, watched = [], []
    for i in range(rounds):
        if i % 2:
            watched.append(watched_rate())
            alone.append(rate())
        else:
            alone.append(rate())
            watched.append(watched_rate())
    ratios = [a / w - 1 for a, w in zip(alone, watched, strict=True)]
    return {"steps/s, no client (median)": statistics.median(alone),
            "steps/s, 2 clients (median)": statistics.median(watched),
            "slowdown (median of paired ratios)": statistics.median(ratios),
            "slowdown, quartiles": (float(np.percentile(ratios, 25)), float(np.percentile(ratios, 75)))}


def kmeans_speed(x: np.ndarray, k: int, batch: int, steps: int) -> dict:
    from sklearn.cluster import MiniBatchKMeans

    rng = np.random.default_rng(0)
    batches = [x[rng.integers(0, len(x), batch)] for _ in range(steps + 1)]
    ours = InteractiveKMeans(x, k, batch_size=batch, seed=0)
    tensors = [torch.as_tensor(b) for b in batches]
    ours.step(tensors[0])
    start = time.perf_counter()
    for b in tensors[1:]:
        ours.step(b)
    t_ours = time.perf_counter() - start
    theirs = MiniBatchKMeans(k, batch_size=batch, random_state=0, n_init=1)
    theirs.partial_fit(batches[0])  # initialisation, not timed (ours is done in the constructor)
    start = time.perf_counter()
    for b in batches[1:]:
        theirs.partial_fit(b)
    t_theirs = time.perf_counter() - start
    return {"ours samples/s": steps * batch / t_ours, "sklearn samples/s": steps * batch / t_theirs,
            "ratio": t_theirs / t_ours, "inertia ours": ours.inertia(),
            "inertia sklearn": float(-theirs.score(x))}


def load(server, session, clients: int, seconds: float) -> dict:
    proc = psutil.Process()
    readers = [Reader(ws_url(server)) for _ in range(clients)]
    for r in readers:
        r.start()
    rss = []
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        rss.append(proc.memory_info().rss / 1e6)
        time.sleep(1.0)
    behind = [session.step - r.latest_step for r in readers]
    dropped = [r.closed for r in readers if r.closed]
    result = {"clients": clients, "seconds": seconds, "dropped": len(dropped),
              "messages per client (min)": min(r.messages for r in readers),
              "MB per client": statistics.median(r.bytes for r in readers) / 1e6,
              "max steps behind at the end": max(behind), "server RSS MB start": rss[0],
              "server RSS MB max": max(rss), "server RSS MB end": rss[-1]}
    for r in readers:
        r.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Shorter windows (a smoke run).")
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1024)
    args = parser.parse_args()
    quick = args.quick
    print(machine())
    mnist = load_mnist("train", root=REPO / "data")
    pixels = mnist.get_batch(np.arange(len(mnist)))[0].reshape(len(mnist), -1).numpy()
    print(f"k-means on MNIST train: {pixels.shape[0]:,} x {pixels.shape[1]}, k={args.k}, batch={args.batch}")

    print("\n3. k-means speed, same batches:", kmeans_speed(pixels, args.k, args.batch, 50 if quick else 300))

    session = kmeans_session(pixels, args.k, images=pixels.reshape(-1, 28, 28), batch_size=args.batch)
    session.start()
    server = BackgroundServer(session)
    try:
        time.sleep(2)
        print("\n1. slider-to-effect latency:", latency(server, session, 10 if quick else 60))
        print("\n2. streaming overhead:", overhead(server, session, 2 if quick else 4, 4 if quick else 16))
        print("\n4. load:", load(server, session, 20, 10 if quick else 60))
    finally:
        server.stop()
    compressed = BackgroundServer(session, compress=True)
    try:
        print("\n2b. streaming overhead with per-message deflate:",
              overhead(compressed, session, 2 if quick else 4, 4 if quick else 16))
    finally:
        compressed.stop()
        session.stop()


if __name__ == "__main__":
    main()
