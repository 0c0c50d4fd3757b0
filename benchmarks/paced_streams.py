"""Many concurrent paced streams on one mock process: how late does each chunk arrive against its plan?

One ``mockserver`` process (``--ttft-ms 250 --tokens-per-second 40 --jitter 0``) serves ``--streams``
concurrent requests for a reply of about 100 tokens. Clients in ``--clients`` separate processes open one
connection per stream, all at once (or spread over ``--ramp-ms``), and note when each event arrives.

The plan of a stream is fixed by its pacing: the role chunk at once, token ``i`` at ``ttft + i / rate``, the
finishing chunks with the last token. The server anchors the plan at the moment the request arrived (as a
real server's time to first token counts), so a request at the back of a burst does not add its wait in
the queue to its time to first token. Three figures:

- *pacing lateness*: each chunk after the role against the plan counted from the moment the request was
  written, i.e. how well the server keeps its plan while a thousand streams share one process;
- *pacing lateness from the role chunk*: the same, counted from the arrival of the stream's first chunk
  (the figure of earlier rounds, when the plan started with the stream; now it goes negative for a stream
  whose role chunk left late and whose tokens then kept the plan);
- *time to first byte* and *first-token lateness*, counted from the moment the request was written.

Both include the network stack and the clients' own scheduling on the same cores: upper bounds on what
the mock adds.

After the timing, every stream is checked: complete, strict SSE, every chunk valid against the contract.

    python benchmarks/paced_streams.py [--streams 1000] [--clients 1] [--ramp-ms 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from mock_vs_bare import free_port

ROOT = Path(__file__).resolve().parent.parent
REPLY = (
    "The forecast for Paris this week is mostly sunny, with a light breeze from the west and temperatures "
    "between eighteen and twenty-four degrees. Mornings start cool and clear; afternoons bring a few "
    "high clouds, and there is a small chance of a shower on Thursday evening. Carry a light jacket for "
    "the evenings, and sunglasses for the afternoons by the river."
)
QUESTION = "What is the weather in Paris this week?"
TTFT_S, RATE = 0.250, 40.0


def plan_offsets() -> list[float]:
    """Seconds from the request to each event: role, tokens, finish, usage, ``[DONE]``."""
    sys.path.insert(0, str(ROOT))
    from mockserver.tokenize import tokenize

    tokens = len(tokenize(REPLY))
    paced = [TTFT_S + index / RATE for index in range(tokens)]
    return [0.0, *paced, paced[-1], paced[-1], paced[-1]]


class StreamClient(asyncio.Protocol):
    """One request; the arrival time of each ``\\n\\n`` that ends an event, and the raw response."""

    def __init__(self, request: bytes, done: asyncio.Future[None]) -> None:
        self.request, self.done = request, done
        self.sent = 0.0
        self.arrivals: list[float] = []
        self.pieces: list[bytes] = []
        self.last = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.sent = time.monotonic()  # not loop.time(): uvloop's clock counts whole milliseconds
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.pieces.append(data)
        self.arrivals.extend([now] * (self.last + data).count(b"\n\n"))
        self.last = data[-1:]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def run_streams(port: int, count: int, ramp_s: float, start_at: float) -> list[tuple[float, list[float], bytes]]:
    body = json.dumps({"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": QUESTION}]})
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}"
    ).encode()
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))  # all client processes start together

    async def one(index: int) -> StreamClient:
        await asyncio.sleep(ramp_s * index / count)
        done: asyncio.Future[None] = loop.create_future()
        _, client = await loop.create_connection(lambda: StreamClient(request, done), "127.0.0.1", port)
        await asyncio.wait_for(done, 60)
        return client

    clients = await asyncio.gather(*(one(index) for index in range(count)))
    return [(client.sent, client.arrivals, b"".join(client.pieces)) for client in clients]


def client_process(port: int, count: int, ramp_s: float, start_at: float, out: str) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    results = asyncio.run(run_streams(port, count, ramp_s, start_at))
    Path(out).write_text(json.dumps([[sent, arrivals, raw.decode("latin-1")] for sent, arrivals, raw in results]))


def dechunk(raw: bytes) -> tuple[int, bytes]:
    """Status and body of an HTTP/1.1 response with chunked transfer coding."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    body = bytearray()
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        body += rest[:size]
        rest = rest[size + 2 :]
    return status, bytes(body)


def check_streams(results: list[tuple[float, list[float], bytes]]) -> list[str]:
    """Every stream complete, strict SSE, each chunk valid: the problems found, at most a few."""
    sys.path.insert(0, str(ROOT))
    from contract.core.sse import SSEEvent, parse_stream
    from contract.core.validate import ContractValidator

    validator = ContractValidator()
    problems: list[str] = []
    for number, (_, _, raw) in enumerate(results):
        status, body = dechunk(raw)
        items, framing = parse_stream(body)
        events = [item for item in items if isinstance(item, SSEEvent)]
        if status != 200 or framing or not events or events[-1].data != "[DONE]":
            problems.append(f"stream {number}: status {status}, {len(events)} events, framing {framing[:1]}")
            continue
        for event in events[:-1]:
            errors = validator.validate_event(json.loads(event.data))
            if errors:
                problems.append(f"stream {number}: {errors[0]}")
                break
    return problems[:5]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument(
        "--clients",
        type=int,
        default=1,
        help="client processes sharing the streams (1: on two cores, one for the server, one for them)",
    )
    parser.add_argument("--ramp-ms", type=float, default=0.0, help="spread the stream starts over this time")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    (work / "fixtures").mkdir()
    (work / "fixtures" / "forecast.yaml").write_text(
        json.dumps({"conversation": [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": REPLY}]})
    )
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mockserver.cli",
            "--fixtures",
            str(work / "fixtures"),
            "--port",
            str(port),
            "--ttft-ms",
            str(TTFT_S * 1000),
            "--tokens-per-second",
            str(RATE),
            "--jitter",
            "0",
            "--log-level",
            "error",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        offsets = plan_offsets()
        cpu_before = cpu_seconds(server.pid)
        start_at = time.monotonic() + 0.5
        shares = [
            args.streams // args.clients + (1 if i < args.streams % args.clients else 0) for i in range(args.clients)
        ]
        outputs = [str(work / f"client{i}.json") for i in range(args.clients)]
        context = multiprocessing.get_context("fork")
        processes = [
            context.Process(target=client_process, args=(port, share, args.ramp_ms / 1000, start_at, out))
            for share, out in zip(shares, outputs)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        wall = time.monotonic() - start_at
        cpu = cpu_seconds(server.pid) - cpu_before
        rss = peak_rss_mb(server.pid)
        results = [
            (sent, arrivals, raw.encode("latin-1"))
            for out in outputs
            for sent, arrivals, raw in json.loads(Path(out).read_text())
        ]
    finally:
        server.terminate()
        server.wait(timeout=10)
    lateness = [
        (arrival - (sent + offset)) * 1000
        for sent, arrivals, _ in results
        for arrival, offset in zip(arrivals[1:], offsets[1:])
    ]
    from_role = [
        (arrival - (arrivals[0] + offset)) * 1000
        for _, arrivals, _ in results
        for arrival, offset in zip(arrivals[1:], offsets[1:])
    ]
    first_byte = [(arrivals[0] - sent) * 1000 for sent, arrivals, _ in results if arrivals]
    first_token = [(arrivals[1] - sent - TTFT_S) * 1000 for sent, arrivals, _ in results if len(arrivals) > 1]
    incomplete = sum(1 for _, arrivals, _ in results if len(arrivals) != len(offsets))
    problems = check_streams(results)
    print(
        f"{args.streams} streams on one mock process, {len(offsets) - 4} tokens each, ttft {TTFT_S * 1000:.0f} ms, "
        f"{RATE:g} tokens/s, jitter 0, {args.clients} client processes, ramp {args.ramp_ms:g} ms"
    )
    print(f"{'chunks timed':24} {len(lateness):,} ({incomplete} streams incomplete)")
    for label, values in (
        ("pacing lateness ms", lateness),
        ("  from the role chunk", from_role),
        ("time to first byte ms", first_byte),
        ("first-token lateness ms", first_token),
    ):
        print(
            f"{label:24} p50 {percentile(values, 0.5):6.1f}  p99 {percentile(values, 0.99):6.1f}  "
            f"max {max(values):6.1f}  mean {statistics.fmean(values):6.1f}"
        )
    print(f"{'server CPU':24} {cpu:.2f} s over {wall:.2f} s wall ({cpu / wall:.0%} of one core)")
    print(f"{'server peak RSS':24} {rss:.0f} MB")
    print(
        f"{'valid streams':24} {len(results) - len(problems) if not problems else 'problems: ' + '; '.join(problems)}"
    )


if __name__ == "__main__":
    main()
