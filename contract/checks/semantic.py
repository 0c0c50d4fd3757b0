"""Semantic checks: what the assembled reply means against what the request asked for."""

from __future__ import annotations

from ..core.exchange import NOT_JSON, Exchange, Failure, parse_json
from ..core.semantics import requested_json_schema
from ..core.validate import short_json
from .context import MAX_FAILURES_PER_CHECK, CheckContext, Verdict
from .helpers import (
    answering_choices,
    assembled_reply,
    decode_base64,
    event_chunks,
    named_tool,
    offered_tools,
    one_line,
    schema_problem,
    wav_problem,
)


def tool_calls_assemble(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """Tool-call fragments assemble per ``index`` into calls with an id, an offered name and JSON arguments
    (valid against the tool's parameters when the tool is ``strict``)."""
    reply, request = assembled_reply(ctx, exchange)
    if reply is None or not (reply.problems or any(c.tool_calls for c in reply.choices.values())):
        return None  # no tool call to assemble
    failures = [
        Failure(
            "tool_calls_assemble",
            one_line(problem),
            expected="fragments that assemble",
            seen=problem.split(": ", 1)[-1][:60],
        )
        for problem in reply.problems
    ]
    tools = offered_tools(request)
    for choice in reply.choices.values():
        for call in choice.tool_calls.values():
            where = f"choice {choice.index}, tool call {call.index}"
            if not call.id:
                failures.append(Failure("tool_calls_assemble", f"{where} has no id", expected="an id", seen="none"))
            if call.name not in tools:
                offered = ", ".join(tools) or "no tools"
                failures.append(
                    Failure(
                        "tool_calls_assemble",
                        f"{where} calls {short_json(call.name)}, not an offered tool ({offered})",
                        expected=offered[:60],
                        seen=short_json(call.name),
                    )
                )
                continue
            arguments = parse_json(call.arguments)
            if arguments is NOT_JSON:
                failures.append(
                    Failure(
                        "tool_calls_assemble",
                        f"{where} ({call.name}): arguments are not JSON: {short_json(call.arguments, 50)}",
                        expected="JSON arguments",
                        seen=short_json(call.arguments, 40),
                    )
                )
                continue
            function = tools[call.name]
            if function.get("strict") is True and isinstance(function.get("parameters"), dict):
                problem = schema_problem(function["parameters"], arguments)
                if problem:
                    failures.append(
                        Failure(
                            "tool_calls_assemble",
                            f"{where} ({call.name}, strict): arguments break the tool's parameters: {problem}",
                            expected="arguments valid against parameters",
                            seen=short_json(arguments, 40),
                        )
                    )
    return failures[:MAX_FAILURES_PER_CHECK]


def tool_choice_honoured(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """``tool_choice`` none: no call; required: at least one; a named function: only that one."""
    reply, request = assembled_reply(ctx, exchange)
    if reply is None or "tool_choice" not in request or not answering_choices(reply):
        return None
    choice_value = request["tool_choice"]
    named = named_tool(choice_value)
    failures = []
    for choice in answering_choices(reply):
        names = choice.tool_names
        if choice_value == "none" and names:
            failures.append(
                Failure(
                    "tool_choice_honoured",
                    f'tool_choice is "none" but choice {choice.index} calls {", ".join(names)}',
                    expected="no tool calls",
                    seen=short_json(names, 40),
                )
            )
        elif choice_value == "required" and not names:
            failures.append(
                Failure(
                    "tool_choice_honoured",
                    f'tool_choice is "required" but choice {choice.index} answers with {choice.kind}',
                    expected="at least one tool call",
                    seen=choice.kind,
                )
            )
        elif named is not None and named not in offered_tools(request):
            failures.append(
                Failure(
                    "tool_choice_honoured",
                    f"tool_choice names {named!r}, a tool the request does not offer, yet choice {choice.index} "
                    f"answers with {choice.kind}: the server should have refused the request with a 400",
                    expected="a 400 error: the named tool is not offered",
                    seen=f"{exchange.status} with {choice.kind}",
                )
            )
        elif named is not None and (not names or any(name != named for name in names)):
            failures.append(
                Failure(
                    "tool_choice_honoured",
                    f"tool_choice names {named!r} but choice {choice.index} calls {short_json(names)}",
                    expected=f"calls to {named}",
                    seen=short_json(names, 40) if names else choice.kind,
                )
            )
    return failures


def parallel_tool_calls_honoured(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """``parallel_tool_calls: false``: at most one tool call per turn."""
    reply, request = assembled_reply(ctx, exchange)
    if reply is None or request.get("parallel_tool_calls") is not False or not offered_tools(request):
        return None  # without a tool offered, there is nothing to call in parallel
    return [
        Failure(
            "parallel_tool_calls_honoured",
            f"parallel_tool_calls is false but choice {choice.index} makes {len(choice.tool_calls)} calls",
            expected="at most one tool call",
            seen=short_json(choice.tool_names, 40),
        )
        for choice in reply.choices.values()
        if len(choice.tool_calls) > 1
    ]


def response_format_honoured(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """``response_format`` json_schema: the content parses as JSON and is valid against that schema."""
    reply, request = assembled_reply(ctx, exchange)
    schema = requested_json_schema(request) if reply is not None else None
    if reply is None or schema is None:
        return None
    answers = [c for c in answering_choices(reply) if c.kind not in ("tool_calls", "refusal")]
    if not answers:
        return None  # a tool call or a refusal owes the schema nothing
    failures = []
    for choice in answers:
        if choice.content is None:
            if choice.kind == "empty":
                failures.append(
                    Failure(
                        "response_format_honoured",
                        f"choice {choice.index} has no content to check against the requested json_schema",
                        expected="JSON content",
                        seen="no content",
                    )
                )
            continue
        value = parse_json(choice.content)
        if value is NOT_JSON:
            failures.append(
                Failure(
                    "response_format_honoured",
                    f"choice {choice.index}: content is not JSON: {short_json(choice.content, 50)}",
                    expected="JSON content",
                    seen=short_json(choice.content, 40),
                )
            )
            continue
        problem = schema_problem(schema, value)
        if problem:
            failures.append(
                Failure(
                    "response_format_honoured",
                    f"choice {choice.index}: content breaks the requested json_schema: {problem}",
                    expected="content valid against the schema",
                    seen=short_json(value, 40),
                )
            )
    return failures


def audio_present(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """``modalities`` with audio: the reply carries audio that base64-decodes (a WAV opens), with a transcript."""
    reply, request = assembled_reply(ctx, exchange)
    modalities = request.get("modalities") if reply is not None else None
    if reply is None or not isinstance(modalities, list) or "audio" not in modalities:
        return None
    answers = [c for c in answering_choices(reply) if c.kind not in ("tool_calls", "refusal")]
    if not answers:
        return None  # a tool call or a refusal owes no audio
    audio_request = request.get("audio")
    if not isinstance(audio_request, dict):
        audio_request = {}
    wants_wav = audio_request.get("format") == "wav"
    failures = []
    for choice in answers:
        audio = choice.audio
        if audio is None or not audio.data_parts:
            failures.append(
                Failure(
                    "audio_present",
                    f"modalities asks for audio but choice {choice.index} has no audio data",
                    expected="audio.data",
                    seen="none",
                )
            )
            continue
        data = decode_base64(audio.data_parts)
        if data is None:
            failures.append(
                Failure(
                    "audio_present",
                    f"choice {choice.index}: audio data is not base64",
                    expected="base64 audio",
                    seen=short_json(audio.data_parts[0], 40),
                )
            )
            continue
        if wants_wav or data[:4] == b"RIFF":
            problem = wav_problem(data)
            if problem:
                failures.append(
                    Failure(
                        "audio_present",
                        f"choice {choice.index}: audio is not a WAV that opens: {problem}",
                        expected="a WAV file",
                        seen=short_json(data[:12].hex(), 40),
                    )
                )
        if not audio.transcript.strip():
            failures.append(
                Failure(
                    "audio_present",
                    f"choice {choice.index}: audio has no transcript",
                    expected="a transcript",
                    seen=short_json(audio.transcript),
                )
            )
    return failures


def usage_consistent(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """Usage counts are non-negative integers and total = prompt + completion."""
    reply, _ = assembled_reply(ctx, exchange)
    if reply is None:
        return None
    if exchange.is_stream:
        usages = [
            chunk["usage"]
            for _, chunk in event_chunks(ctx, exchange)
            if isinstance(chunk, dict) and isinstance(chunk.get("usage"), dict)
        ]
    else:
        usages = [reply.usage] if isinstance(reply.usage, dict) else []
    if not usages:
        return None  # usage is optional; there is nothing to add up
    failures = []
    for usage in usages:
        counts = {name: usage.get(name) for name in ("prompt_tokens", "completion_tokens", "total_tokens")}
        bad = {
            name: value
            for name, value in counts.items()
            if name in usage and (not isinstance(value, int) or isinstance(value, bool) or value < 0)
        }
        if bad:
            failures.append(
                Failure(
                    "usage_consistent",
                    f"usage counts must be non-negative integers: {short_json(bad)}",
                    expected="integers >= 0",
                    seen=short_json(bad, 40),
                )
            )
        elif all(name in usage for name in counts) and counts["total_tokens"] != (
            counts["prompt_tokens"] + counts["completion_tokens"]
        ):
            failures.append(
                Failure(
                    "usage_consistent",
                    f"total_tokens {counts['total_tokens']} != prompt_tokens "
                    f"{counts['prompt_tokens']} + completion_tokens {counts['completion_tokens']}",
                    expected=str(counts["prompt_tokens"] + counts["completion_tokens"]),
                    seen=str(counts["total_tokens"]),
                )
            )
    return failures[:1]


def stream_matches_nonstream(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """The streamed and non-streamed answers to one request have the same shape (kind, tools, finish_reason)."""
    if ctx.counterpart is None:
        return None
    mine, _ = assembled_reply(ctx, exchange)
    theirs, _ = assembled_reply(ctx, ctx.counterpart)
    if mine is None or theirs is None:
        return None
    label = "streamed" if exchange.is_stream else "non-streamed"
    other = "non-streamed" if exchange.is_stream else "streamed"
    a, b = mine.choice(), theirs.choice()
    for what, left, right in (
        ("kind of answer", a.kind, b.kind),
        ("tool names", a.tool_names, b.tool_names),
        ("finish_reason", a.finish_reason, b.finish_reason),
    ):
        if left != right:
            return [
                Failure(
                    "stream_matches_nonstream",
                    f"{what}: {label} {short_json(left, 40)}, {other} {short_json(right, 40)}",
                    expected=f"{other}: {short_json(right, 40)}",
                    seen=f"{label}: {short_json(left, 40)}",
                )
            ]
    return []
