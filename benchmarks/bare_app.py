"""The ceiling the mock is measured against: Starlette + uvicorn answering the same payloads with no logic.

It serves, for every POST to ``/v1/chat/completions``, either the JSON reply or the SSE stream that the mock
sends for the benchmark's one fixture, captured once from the mock itself, so both servers put the same
bytes on the wire. The mock sends an unpaced stream in one write, so the stream goes in one write here too;
``/per-event/v1/chat/completions`` writes each event on its own, the way a naive server would, to show what
that costs. Run by ``benchmarks/mock_vs_bare.py``; not a tool for anything else.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route


def build(payloads: Path) -> Starlette:
    captured = json.loads(payloads.read_text(encoding="utf-8"))
    json_body = captured["json"].encode("utf-8")
    events = [event.encode("utf-8") for event in captured["events"]]
    whole = b"".join(events)

    def answering(writes: list[bytes]):
        async def answer(request: Request) -> Response:
            body = await request.json()
            if body.get("stream", True) is False:
                return Response(json_body, media_type="application/json")

            async def stream():
                for write in writes:
                    yield write

            return StreamingResponse(stream(), media_type="text/event-stream")

        return answer

    return Starlette(
        routes=[
            Route("/v1/chat/completions", answering([whole]), methods=["POST"]),
            Route("/per-event/v1/chat/completions", answering(events), methods=["POST"]),
        ]
    )


if __name__ == "__main__":
    import uvicorn

    # served as the mock is (mockserver.serve.protocol_options): without uvicorn's proxy-header middleware
    uvicorn.run(
        build(Path(sys.argv[1])), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", proxy_headers=False
    )
