"""Small chat-completion servers for testing the contract suite: one correct, the others each wrong in one way.

:func:`reference_app` builds a small, correct server. Every broken server is
the same app with exactly one rule toggled (``reference_app(broken=NAME)``), so
the rest of its behaviour stays correct and a run must blame that one rule.
:data:`BROKEN` maps each toggle to the check that must catch it. Three hostile
servers (one that never answers, one that streams forever, one that speaks no
HTTP) test that a run survives them.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import select
import socket
import socketserver
import threading
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from contract.core.validate import ContractValidator

# toggle -> the check that must report it
BROKEN: dict[str, str] = {
    "server_error": "not_a_server_error",  # 500 whenever a system message is present
    "undocumented_status": "status_code_documented",  # 418 for stream: false
    "wrong_content_type": "content_type_matches",  # JSON when `stream` is absent (the default is true)
    "json_missing_created": "response_body_valid",  # non-stream bodies without `created`
    "bad_error_body": "error_body_valid",  # Error bodies without `type`
    "accepts_invalid": "negative_rejected",  # 200 for requests that break the schema
    "bad_framing": "sse_framing",  # a comment line that is not UTF-8
    "chunk_missing_id": "chunks_valid",  # a content chunk without `id`
    "no_done": "stream_terminated",  # the stream ends without `data: [DONE]`
    "changing_ids": "consistent_ids",  # the last chunk carries another id
    "role_not_first": "role_first",  # the role arrives in the second chunk
    "finish_twice": "finish_reason_once",  # finish_reason on two chunks
    "tool_args_not_json": "tool_calls_assemble",  # arguments cut short
    "ignores_tool_choice_none": "tool_choice_honoured",  # calls a tool although tool_choice is none
    "ignores_parallel_false": "parallel_tool_calls_honoured",  # two calls although parallel_tool_calls is false
    "ignores_json_schema": "response_format_honoured",  # prose around the JSON
    "no_audio": "audio_present",  # ignores modalities: audio
    "usage_arithmetic": "usage_consistent",  # total = prompt + completion + 1
    "stream_differs": "stream_matches_nonstream",  # the non-stream answer ends with finish_reason "length"
}

REPLY_TEXT = "Hello from the reference server."
_validator: ContractValidator | None = None


def _contract() -> ContractValidator:
    global _validator
    if _validator is None:
        _validator = ContractValidator()
    return _validator


class _Refuse(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.kind = status, message, param, kind


@dataclass
class _Reply:
    content: str | None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    audio: dict[str, Any] | None = None
    refusal: str | None = None

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.tool_calls else "stop"


def reference_app(
    broken: str | None = None,
    *,
    echo_authorization: bool = False,
    refuses_audio: bool = False,
    crashes_on_empty_tool: bool = False,
    answers_unoffered_choice: bool = False,
) -> Starlette:
    """A correct server, or one that breaks exactly the rule named by ``broken`` (a key of BROKEN).

    ``crashes_on_empty_tool`` raises on a tool without ``function`` (``"tools": [{}]`` is schema-valid),
    as a FastAPI server that indexes ``tool["function"]`` does: Starlette answers a plain-text 500,
    which fails several checks at once, and uvicorn then closes the kept-alive connection without
    ``Connection: close`` (see :class:`LateCloseProxy` to make the next request always meet it closed).

    ``answers_unoffered_choice`` answers with text, where it should refuse with a 400, a request whose
    ``tool_choice`` names a tool it does not offer.
    ``refuses_audio`` answers ``modalities: [audio]`` with a documented 400, as a text-only
    server may: a refusal of a valid request, which only ``--accept-valid`` fails.
    ``echo_authorization`` puts the request's Authorization header into error messages,
    as careless servers do, to test that reports redact it wherever it shows up.
    """
    if broken is not None and broken not in BROKEN:
        raise ValueError(f"unknown toggle {broken!r}")
    counter = iter(range(1, 10**9))

    def error(exc: _Refuse) -> JSONResponse:
        body: dict[str, Any] = {"message": exc.message, "type": exc.kind, "param": exc.param, "code": None}
        if broken == "bad_error_body":
            del body["type"]
        return JSONResponse({"error": body}, status_code=exc.status)

    async def chat(request: Request) -> Response:
        try:
            body = await _read_request(request, lenient=broken == "accepts_invalid")
            stream = body.get("stream", True)
            if crashes_on_empty_tool and any(
                isinstance(tool, dict) and "function" not in tool for tool in body.get("tools") or []
            ):
                raise RuntimeError("tool has no function")  # unhandled, on purpose
            if broken == "server_error" and any(
                m.get("role") == "system" for m in body.get("messages", []) if isinstance(m, dict)
            ):
                echo = f" for {request.headers.get('authorization')}" if echo_authorization else ""
                raise _Refuse(500, f"internal failure{echo}", kind="server_error")
            if refuses_audio and "audio" in (body.get("modalities") or []):
                raise _Refuse(400, "this server does not produce audio", param="modalities")
            if broken == "undocumented_status" and stream is False:
                raise _Refuse(418, "I'm a teapot")
            reply = _decide(body, broken, answers_unoffered_choice)
        except _Refuse as exc:
            return error(exc)
        ident = f"chatcmpl-{next(counter)}"
        model = body.get("model") if isinstance(body.get("model"), str) else "reference-1"
        usage = _usage(body, reply, broken)
        if stream is False or (broken == "wrong_content_type" and "stream" not in body):
            message: dict[str, Any] = {"role": "assistant", "content": reply.content}
            if reply.tool_calls:
                message["tool_calls"] = reply.tool_calls
            if reply.audio:
                message["audio"] = reply.audio
            finish = "length" if broken == "stream_differs" else reply.finish_reason
            response = {
                "id": ident,
                "object": "chat.completion",
                "created": 1700000000,
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": usage,
            }
            if broken == "json_missing_created":
                del response["created"]
            return JSONResponse(response)
        return StreamingResponse(_stream(ident, model, reply, usage, broken), media_type="text/event-stream")

    routes = [Route(path, chat, methods=["POST"]) for path in ("/chat/completions", "/v1/chat/completions")]
    return Starlette(routes=routes)


async def _read_request(request: Request, lenient: bool) -> dict[str, Any]:
    raw = await request.body()
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if lenient:  # answer anything: whatever is not a valid request becomes a plain one
        if isinstance(body, dict) and not _contract().validate_request(body):
            return body
        stream = body.get("stream") if isinstance(body, dict) else None
        return {
            "messages": [{"role": "user", "content": "hi"}],
            **({"stream": stream} if isinstance(stream, bool) else {}),
        }
    if media != "application/json":
        raise _Refuse(400, f"content type {media or 'none'!r} is not supported; send application/json")
    if body is None:
        raise _Refuse(400, "the body is not valid JSON")
    errors = _contract().validate_request(body)
    if errors:
        first = errors[0]
        param = first.path.strip("/").replace("/", ".") or None
        raise _Refuse(400, str(first), param=param)
    return body


def _decide(body: dict[str, Any], broken: str | None, answers_unoffered_choice: bool = False) -> _Reply:
    """What a well-behaved model would answer: tool calls, JSON, audio or text, as the request asks."""
    tools = [t["function"] for t in body.get("tools") or [] if isinstance(t.get("function"), dict)]
    names = [t["name"] for t in tools]
    choice = body.get("tool_choice", "auto" if tools else "none")
    named = None
    if isinstance(choice, dict):
        named = (choice.get("function") or {}).get("name")
        if named not in names and answers_unoffered_choice:
            return _Reply(REPLY_TEXT)
        if named not in names:
            raise _Refuse(
                400, f"tool_choice names {named!r}, which is not among the tools offered", param="tool_choice"
            )
    if choice == "required" and not tools:
        raise _Refuse(400, "tool_choice 'required' needs tools", param="tool_choice")
    calls: list[dict[str, Any]] = []
    call_tools = tools and (choice != "none" or broken == "ignores_tool_choice_none")
    if call_tools:
        chosen = [t for t in tools if t["name"] == named] if named else tools[:1]
        if body.get("parallel_tool_calls", True) and not named and len(tools) >= 2:
            chosen = tools[:2]
        elif body.get("parallel_tool_calls") is False and broken == "ignores_parallel_false":
            chosen = [chosen[0], chosen[0]]  # the same tool twice, in one turn
        for position, tool in enumerate(chosen):
            arguments = json.dumps(_instance(tool.get("parameters") or {"type": "object"}))
            if broken == "tool_args_not_json":
                arguments = arguments[:-1]
            calls.append(
                {
                    "id": f"call_{position + 1}",
                    "type": "function",
                    "function": {"name": tool["name"], "arguments": arguments},
                }
            )
    content: str | None = None if calls else REPLY_TEXT
    schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema")
    if not calls and body.get("response_format", {}).get("type") == "json_schema" and isinstance(schema, dict):
        instance = _instance(schema)
        if _contract_free_errors(schema, instance):
            raise _Refuse(400, "response_format json_schema cannot be honoured", param="response_format")
        content = json.dumps(instance)
        if broken == "ignores_json_schema":
            content = f"Here you go: {content}"
    audio = None
    if "audio" in (body.get("modalities") or []) and broken != "no_audio" and not calls:
        audio = {
            "id": "audio_1",
            "expires_at": 1700003600,
            "data": base64.b64encode(_wav()).decode("ascii"),
            "transcript": content or "",
        }
    return _Reply(content, calls, audio)


def _instance(schema: dict[str, Any]) -> Any:
    """A small value valid against the simple schemas realistic requests carry."""
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        return {name: _instance(properties.get(name) or {}) for name in schema.get("required", [])}
    if kind == "array":
        return []
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.5))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "Paris"


def _contract_free_errors(schema: dict[str, Any], instance: Any) -> bool:
    import jsonschema

    try:
        return not jsonschema.Draft202012Validator(schema).is_valid(instance)
    except jsonschema.exceptions.SchemaError:
        return True


def _wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(b"\x00\x00" * 160)
    return out.getvalue()


def _usage(body: dict[str, Any], reply: _Reply, broken: str | None) -> dict[str, int]:
    prompt = sum(len(str(m.get("content") or "").split()) + 3 for m in body.get("messages", []) if isinstance(m, dict))
    completion = len(_pieces(reply.content or "")) + sum(
        len(c["function"]["arguments"]) // 4 + 1 for c in reply.tool_calls
    )
    total = prompt + completion + (1 if broken == "usage_arithmetic" else 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}


def _pieces(text: str) -> list[str]:
    return re.findall(r"\s*\S{1,4}", text)


async def _stream(
    ident: str, model: str, reply: _Reply, usage: dict[str, int], broken: str | None
) -> AsyncIterator[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        data: dict[str, Any] = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        data.update(extra)
        return f"data: {json.dumps(data)}\n\n".encode()

    deltas: list[dict[str, Any]] = []
    for piece in _pieces(reply.content or ""):
        deltas.append({"content": piece})
    for index, call in enumerate(reply.tool_calls):
        arguments = call["function"]["arguments"]
        deltas.append(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["function"]["name"], "arguments": ""},
                    }
                ]
            }
        )
        middle = len(arguments) // 2
        for fragment in (arguments[:middle], arguments[middle:]):
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
    if reply.audio:
        deltas.append(
            {"audio": {"id": reply.audio["id"], "expires_at": reply.audio["expires_at"], "data": reply.audio["data"]}}
        )
        deltas.append({"audio": {"transcript": reply.audio["transcript"]}})

    first = {"role": "assistant", "content": ""} if broken != "role_not_first" else {"content": ""}
    yield chunk(first)
    if broken == "bad_framing":
        yield b": \xff keep-alive\n\n"
    for position, delta in enumerate(deltas):
        if broken == "role_not_first" and position == 0:
            delta = {**delta, "role": "assistant"}
        finish = reply.finish_reason if broken == "finish_twice" and position == len(deltas) - 1 else None
        data = chunk(delta, finish)
        if broken == "chunk_missing_id" and position == 0:
            parsed = json.loads(data[6:])
            del parsed["id"]
            data = f"data: {json.dumps(parsed)}\n\n".encode()
        yield data
        await asyncio.sleep(0)
    last = chunk({}, reply.finish_reason)
    if broken == "changing_ids":
        last = last.replace(ident.encode(), f"{ident}-b".encode())
    yield last
    usage_chunk = json.dumps(
        {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": model,
            "choices": [],
            "usage": usage,
        }
    )
    yield f"data: {usage_chunk}\n\n".encode()
    if broken != "no_done":
        yield b"data: [DONE]\n\n"


# -- hostile servers ----------------------------------------------------------------------------


def hanging_app() -> Starlette:
    """Accepts the request and never answers."""

    async def chat(request: Request) -> Response:
        await request.body()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:  # the server shuts down: leave quietly
            pass
        return Response(status_code=204)

    return Starlette(routes=[Route("/chat/completions", chat, methods=["POST"])])


def endless_app() -> Starlette:
    """Answers with a valid-looking stream that never ends."""

    async def chat(request: Request) -> Response:
        await request.body()

        async def forever() -> AsyncIterator[bytes]:
            data = {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "created": 1700000000,
                "model": "m",
                "choices": [{"index": 0, "delta": {"content": "la "}, "finish_reason": None}],
            }
            line = f"data: {json.dumps(data)}\n\n".encode()
            while True:
                yield line * 10
                await asyncio.sleep(0.005)

        return StreamingResponse(forever(), media_type="text/event-stream")

    return Starlette(routes=[Route("/chat/completions", chat, methods=["POST"])])


class GarbageServer:
    """A TCP server on a loopback port that answers every connection with bytes that are not HTTP."""

    def __init__(self) -> None:
        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.settimeout(2)
                try:
                    self.request.recv(65536)
                    self.request.sendall(b"\x00\xffGARBAGE\x13\x37 not http at all\r\n\r\n\xfe\xfd")
                except OSError:
                    pass

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> GarbageServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LateCloseProxy(GarbageServer):
    """A loopback TCP proxy in front of the server on ``upstream_port`` that makes one race always go
    the same way: when the server closes a kept-alive connection, the client learns it only once its next
    request is on the wire (the proxy holds the close back until then, as a busy network would)."""

    def __init__(self, upstream_port: int) -> None:
        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                client = self.request
                try:
                    upstream = socket.create_connection(("127.0.0.1", upstream_port), timeout=5)
                except OSError:
                    return
                for end in (client, upstream):  # relay each piece at once, as the server wrote it
                    end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                try:
                    _relay(client, upstream)
                except OSError:
                    pass
                finally:
                    upstream.close()

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)


def _relay(client: socket.socket, upstream: socket.socket) -> None:
    waiting = False  # the client sent bytes the server has not answered yet
    while True:
        readable, _, _ = select.select([client, upstream], [], [], 10)
        if not readable:
            return
        if client in readable:
            data = client.recv(65536)
            if not data:
                return
            upstream.sendall(data)
            waiting = True
        if upstream in readable:
            data = upstream.recv(65536)
            if not data:
                # The server closed. A request it already had goes unanswered as it is; otherwise wait
                # for the client's next request on this connection, then drop that one unanswered.
                if not waiting and select.select([client], [], [], 10)[0]:
                    client.recv(65536)
                return
            client.sendall(data)
            waiting = False


class RawServer(GarbageServer):
    """A TCP server on a loopback port whose every connection is answered by ``respond(socket)``:
    for replies no HTTP framework would send (a trickled status line, endless ``100 Continue``)."""

    def __init__(self, respond: Any) -> None:
        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.settimeout(5)
                try:
                    self.request.recv(65536)
                    respond(self.request)
                except OSError:
                    pass

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
