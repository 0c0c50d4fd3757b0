"""Parse a fixture's conversation: its messages, and the assistant turns the server plays back.

Each turn may have several replies (played to successive requests), a fault, tool calls, audio and usage,
and each of them can be wrong in its own way; a mistake stops start-up with ``file:line: what is wrong``.
The per-file facts every step needs (where the file is, its name, which seeds generated ids, whether
replies must be JSON) travel on one :class:`FixtureContext`.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from contract.core.validate import json_type, short_json

from .audio import read_wav, synthesize_wav
from .faults import FAULT_TYPES, parse_fault
from .fixture_reader import KeyPath, SourceLines
from .scenario import REPEAT_LAST, THEN_POLICIES, Scenario, Step
from .strict_json import NonFiniteNumber, strict_json_loads
from .turns import AssistantTurn, AudioReply

REPLY_KEYS = ("content", "tool_calls", "refusal", "audio", "usage", "fault", "finish_reason", "stream_default")
ASSISTANT_KEYS = ("role", "name", *REPLY_KEYS, "replies", "then")
USER_KEYS = ("role", "name", "content")
TOOL_KEYS = ("role", "content", "tool_call_id")
OTHER_ROLE_KEYS = ("role", "name", "content", "tool_call_id")
TOOL_CALL_KEYS = ("id", "type", "function")
FUNCTION_KEYS = ("name", "arguments")
AUDIO_KEYS = ("file", "duration_s", "transcript")
MATCHER_KEYS = ("contains", "regex")
USAGE_KEYS = (
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "prompt_tokens_details",
    "completion_tokens_details",
)
USAGE_DETAIL_KEYS = {
    "prompt_tokens_details": ("audio_tokens", "cached_tokens"),
    "completion_tokens_details": (
        "accepted_prediction_tokens",
        "audio_tokens",
        "reasoning_tokens",
        "rejected_prediction_tokens",
    ),
}
FINISH_REASONS = ("stop", "length", "content_filter", "tool_calls")


@dataclass(frozen=True)
class AudioFolder:
    """Where a fixture's ``audio.file`` is looked for, and the folder it must stay inside.

    A fixture names a WAV by a path relative to its own file; the path may not leave the fixtures
    folder (``..``, an absolute path), so a fixture, or a conversation posted to a running mock, cannot
    serve any WAV on the machine. ``root`` None: the fixture has no folder and may name no file.
    """

    base: Path
    root: Path | None

    def locate(self, file: str) -> Path | None:
        """The WAV's path, normalised so the OS reads what was checked; None when it leaves the folder."""
        if self.root is None:
            return None
        wav = Path(os.path.normpath(self.base / file))
        return wav if Path(os.path.abspath(wav)).is_relative_to(os.path.abspath(self.root)) else None


@dataclass(frozen=True)
class FixtureContext(SourceLines):
    """One fixture file while its conversation is parsed: its lines, and what its top level settled.

    ``name`` seeds the ids and audio a turn does not give; ``files`` is where its WAVs may be;
    ``json_content``: the fixture matches ``response_format: json_schema``, so each content must be JSON.
    """

    name: str
    files: AudioFolder
    json_content: bool


class ParsedConversation(NamedTuple):
    """A conversation as a :class:`~mockserver.fixtures.Fixture` holds it."""

    messages: list[dict[str, Any]]  # assistant turns as a client sends them back
    turns: dict[int, AssistantTurn]  # index in the conversation -> its (first) reply
    scenarios: dict[int, Scenario]  # turns that answer with a sequence
    line_of: dict[int, int]  # index in the conversation -> line


def parse_conversation(context: FixtureContext, data: dict[str, Any]) -> ParsedConversation:
    """The fixture's ``conversation``: the messages as a client sends them, and the replies to play back."""
    path: KeyPath = ("conversation",)
    if "conversation" not in data:
        context.fail(
            (),
            "missing 'conversation': the list of messages, with the assistant turns to play back "
            "(or 'embeddings', for a file that only pins vectors)",
        )
    raw = data["conversation"]
    if not isinstance(raw, list) or not raw:
        what = "an empty list" if isinstance(raw, list) else value_kind(raw)
        context.fail(path, f"conversation must be a non-empty list of messages, got {what}")
    conversation: list[dict[str, Any]] = []
    turns: dict[int, AssistantTurn] = {}
    scenarios: dict[int, Scenario] = {}
    line_of: dict[int, int] = {}
    pending_ids: list[str] = []  # ids of the last turn's tool calls, for tool messages that omit theirs
    for index, message in enumerate(raw):
        where: KeyPath = (*path, index)
        line_of[index] = context.line(where)
        if not isinstance(message, dict):
            context.fail(where, f"message {index + 1} must be a mapping with a role, got {value_kind(message)}")
        if "role" not in message:
            context.fail(where, f"message {index + 1} has no role (system, user, assistant or tool)")
        role = message["role"]
        if not isinstance(role, str):
            context.fail((*where, "role"), f"role must be a string, got {short_json(role)}")
        if role == "assistant":
            scenario, echoed = _parse_turn(context, message, where, index)
            turns[index] = scenario.steps[0].turn
            if len(scenario.steps) > 1:
                scenarios[index] = scenario
            conversation.append(echoed)
            pending_ids = [call["id"] for call in echoed.get("tool_calls", ())]
        elif role in ("user", "system"):
            context.check_keys(message, USER_KEYS, where, f"a {role} message")
            content = message.get("content")
            if isinstance(content, dict):
                _check_matcher(context, content, (*where, "content"))
            conversation.append(copy.deepcopy(message))
        elif role == "tool":
            context.check_keys(message, TOOL_KEYS, where, "a tool message")
            message = copy.deepcopy(message)
            call_id = message.get("tool_call_id")
            if call_id is None and pending_ids:
                message["tool_call_id"] = pending_ids.pop(0)
            elif call_id in pending_ids:
                pending_ids.remove(call_id)
            conversation.append(message)
        else:  # the contract check names what is wrong with the role itself
            context.check_keys(message, OTHER_ROLE_KEYS, where, "a message")
            conversation.append(copy.deepcopy(message))
    if not turns:
        context.fail(path, "the conversation has no assistant turn, so the server would have nothing to reply")
    return ParsedConversation(conversation, turns, scenarios, line_of)


def _check_matcher(context: FixtureContext, matcher: dict[str, Any], path: KeyPath) -> None:
    context.check_keys(matcher, MATCHER_KEYS, path, "a content matcher")
    if not matcher:
        context.fail(path, "an empty content matcher; use {contains: TEXT} or {regex: PATTERN}")
    for key in MATCHER_KEYS:
        if key in matcher and (not isinstance(matcher[key], str) or not matcher[key]):
            context.fail((*path, key), f"{key} must be a non-empty string, got {short_json(matcher[key])}")
    if "regex" in matcher:
        try:
            re.compile(matcher["regex"])
        except re.error as exc:
            context.fail((*path, "regex"), f"bad regex {matcher['regex']!r}: {exc.msg} at position {exc.pos}")


def _parse_turn(
    context: FixtureContext, message: dict[str, Any], path: KeyPath, index: int
) -> tuple[Scenario, dict[str, Any]]:
    """A turn's replies (one, or the steps of its ``replies`` / ``fault.times``) and the message a client echoes."""
    context.check_keys(message, ASSISTANT_KEYS, path, "an assistant turn")
    speaker = _optional_string(context, message, "name", path)
    if "replies" in message:
        scenario = _parse_replies(context, message, path, index)
    else:
        if "then" in message:
            context.fail(
                (*path, "then"),
                "then says what plays after the last of the turn's replies, so it needs a 'replies' list",
            )
        scenario = Scenario(_parse_reply(context, message, path, index, f"message {index + 1}"))
    # A later turn matches when the client sends back the last reply that says something.
    said = [step.turn for step in scenario.steps if _says_something(step.turn)]
    last = said[-1] if said else scenario.steps[-1].turn
    echoed: dict[str, Any] = {"role": "assistant", "content": last.content}
    if speaker is not None:
        echoed["name"] = speaker
    if last.tool_calls:
        echoed["tool_calls"] = copy.deepcopy(list(last.tool_calls))
    return scenario, echoed


def _parse_replies(context: FixtureContext, message: dict[str, Any], path: KeyPath, index: int) -> Scenario:
    for key in message:
        if key in REPLY_KEYS:
            context.fail((*path, key), f"{key!r} belongs inside each entry of this turn's replies, not next to them")
    raw = message["replies"]
    where: KeyPath = (*path, "replies")
    if not isinstance(raw, list) or not raw:
        what = "an empty list" if isinstance(raw, list) else value_kind(raw)
        context.fail(
            where, f"replies must be a non-empty list of replies, played in order to successive requests, got {what}"
        )
    then = message.get("then", REPEAT_LAST)
    if then not in THEN_POLICIES:
        context.fail(
            (*path, "then"),
            f"then must be one of {', '.join(THEN_POLICIES)} (what plays after the last reply), got {short_json(then)}",
        )
    steps: list[Step] = []
    for number, reply in enumerate(raw):
        at: KeyPath = (*where, number)
        if not isinstance(reply, dict):
            context.fail(
                at,
                f"reply {number + 1} must be a mapping like an assistant turn "
                f"(content, tool_calls, fault, ...), got {value_kind(reply)}",
            )
        context.check_keys(reply, REPLY_KEYS, at, "a reply")
        steps.extend(_parse_reply(context, reply, at, index, f"reply {number + 1}"))
    return Scenario(tuple(steps), then)


def _parse_reply(
    context: FixtureContext, message: dict[str, Any], path: KeyPath, index: int, what: str
) -> tuple[Step, ...]:
    """One reply; a fault with ``times: N`` makes it two steps: N plays with the fault, then without."""
    content = _optional_string(context, message, "content", path)
    if context.json_content and content is not None:
        try:
            strict_json_loads(content)
        except json.JSONDecodeError as exc:
            context.fail(
                (*path, "content"),
                "this fixture matches response_format json_schema, so its content "
                f"must be JSON: {exc.msg} (column {exc.colno})",
            )
        except NonFiniteNumber as exc:
            context.fail(
                (*path, "content"),
                f"this fixture matches response_format json_schema, so its content must be strict JSON: {exc}",
            )
    refusal = _optional_string(context, message, "refusal", path)
    tool_calls = _parse_tool_calls(context, message, path, index)
    audio = _parse_audio(context, message.get("audio"), (*path, "audio"), index)
    usage = _parse_usage(context, message.get("usage"), (*path, "usage"))
    fault, times = _parse_fault(context, message.get("fault"), (*path, "fault"))
    finish_reason = message.get("finish_reason")
    if finish_reason is not None and finish_reason not in FINISH_REASONS:
        context.fail(
            (*path, "finish_reason"),
            f"finish_reason must be one of {', '.join(FINISH_REASONS)}, got {short_json(finish_reason)}",
        )
    if finish_reason == "tool_calls" and not tool_calls:
        context.fail((*path, "finish_reason"), "finish_reason tool_calls needs tool_calls in the same turn")
    stream_default = message.get("stream_default")
    if stream_default is not None and not isinstance(stream_default, bool):
        context.fail(
            (*path, "stream_default"),
            f"stream_default must be true (a stream) or false (one JSON body), got {short_json(stream_default)}",
        )
    turn = AssistantTurn(
        content=content,
        tool_calls=tuple(copy.deepcopy(tool_calls)),
        refusal=refusal,
        audio=audio,
        usage=usage,
        fault=fault,
        finish_reason=finish_reason,
        stream_default=stream_default,
        source=context.where(path),
    )
    if not _says_something(turn):
        if times:
            context.fail(
                (*path, "fault", "times"),
                f"after the fault's {times} time(s) this reply plays, so it "
                "needs content, tool_calls, refusal or audio",
            )
        if not (fault and fault.get("type") == "http_error"):
            context.fail(
                path, f"assistant turn ({what}) has nothing to say: give it content, tool_calls, refusal or audio"
            )
    if not times:
        return (Step(turn),)
    return Step(turn, times), Step(dataclasses.replace(turn, fault=None))


def _says_something(turn: AssistantTurn) -> bool:
    return bool((turn.content or "").strip()) or bool(turn.tool_calls) or bool(turn.refusal) or turn.audio is not None


def _optional_string(context: FixtureContext, message: dict[str, Any], key: str, path: KeyPath) -> str | None:
    value = message.get(key)
    if value is not None and not isinstance(value, str):
        context.fail((*path, key), f"{key} must be a string, got {value_kind(value)} {short_json(value)}")
    return value


def _parse_tool_calls(
    context: FixtureContext, message: dict[str, Any], path: KeyPath, index: int
) -> list[dict[str, Any]]:
    raw = message.get("tool_calls")
    where: KeyPath = (*path, "tool_calls")
    if raw is None:
        return []
    if not isinstance(raw, list):
        context.fail(where, f"tool_calls must be a list (several entries are parallel calls), got {value_kind(raw)}")
    if not raw:
        context.fail(where, "tool_calls is empty; leave it out or give at least one call")
    calls: list[dict[str, Any]] = []
    for number, call in enumerate(raw):
        at: KeyPath = (*where, number)
        if not isinstance(call, dict):
            context.fail(at, f"tool call {number + 1} must be a mapping with a function, got {value_kind(call)}")
        context.check_keys(call, TOOL_CALL_KEYS, at, "a tool call")
        if call.get("type", "function") != "function":
            context.fail((*at, "type"), f"tool call type must be function, got {short_json(call.get('type'))}")
        function = call.get("function")
        if not isinstance(function, dict):
            context.fail(
                at if function is None else (*at, "function"),
                f"tool call {number + 1} needs function: {{name, arguments}}",
            )
        context.check_keys(function, FUNCTION_KEYS, (*at, "function"), "a tool call's function")
        function_name = function.get("name")
        if not isinstance(function_name, str) or not function_name:
            context.fail((*at, "function", "name"), f"tool call {number + 1} needs a function name")
        arguments = _arguments(context, function.get("arguments", {}), (*at, "function", "arguments"))
        call_id = call.get("id")
        if call_id is None:
            digest = hashlib.sha256(f"{context.name}\0{index}\0{number}".encode()).hexdigest()
            call_id = f"call_{digest[:24]}"
        elif not isinstance(call_id, str) or not call_id:
            context.fail((*at, "id"), f"tool call id must be a non-empty string, got {short_json(call_id)}")
        if any(existing["id"] == call_id for existing in calls):
            context.fail((*at, "id"), f"tool call id {call_id!r} is used twice in this turn")
        calls.append({"id": call_id, "type": "function", "function": {"name": function_name, "arguments": arguments}})
    return calls


def _arguments(context: FixtureContext, value: Any, path: KeyPath) -> str:
    """Tool-call arguments as the JSON text the server streams; a mapping is encoded for the user."""
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    if not isinstance(value, str):
        context.fail(path, f"arguments must be a JSON object, as a string or a mapping, got {value_kind(value)}")
    try:
        parsed = strict_json_loads(value)
    except json.JSONDecodeError as exc:
        context.fail(path, f"arguments are not JSON: {exc.msg} (column {exc.colno}) in {short_json(value)}")
    except NonFiniteNumber as exc:
        context.fail(path, f"arguments are not strict JSON: {exc}, which client parsers refuse")
    if not isinstance(parsed, dict):
        context.fail(path, f"arguments must encode a JSON object, got {json_type(parsed)}")
    return value


def _parse_audio(context: FixtureContext, raw: Any, path: KeyPath, index: int) -> AudioReply | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        context.fail(path, "audio must be {file: NAME.wav, transcript: ...} or {duration_s: N, transcript: ...}")
    context.check_keys(raw, AUDIO_KEYS, path, "audio")
    transcript = raw.get("transcript")
    if not isinstance(transcript, str) or not transcript.strip():
        context.fail(
            path if "transcript" not in raw else (*path, "transcript"), "audio needs a transcript (the words spoken)"
        )
    if ("file" in raw) == ("duration_s" in raw):
        context.fail(path, "audio needs exactly one of file (a WAV next to the fixture) or duration_s (synthesised)")
    if "file" in raw:
        file = raw["file"]
        if not isinstance(file, str) or not file:
            context.fail((*path, "file"), f"audio.file must be a file name, got {short_json(file)}")
        wav_path = _audio_path(context, file, (*path, "file"))
        if not wav_path.is_file():
            context.fail((*path, "file"), f"audio file {file!r} not found (looked for {wav_path})")
        try:
            wav = read_wav(wav_path)
        except ValueError as exc:
            context.fail((*path, "file"), f"audio file {file!r}: {exc}")
        return AudioReply(wav=wav, transcript=transcript, source=wav_path)
    duration = raw["duration_s"]
    seed = int.from_bytes(hashlib.sha256(f"{context.name}\0{index}".encode()).digest()[:4], "big")
    try:
        wav = synthesize_wav(duration, seed=seed)
    except ValueError as exc:
        context.fail((*path, "duration_s"), f"audio.duration_s: {exc}")
    return AudioReply(wav=wav, transcript=transcript)


def _audio_path(context: FixtureContext, file: str, path: KeyPath) -> Path:
    """The WAV's path inside the fixtures folder; a path that leaves it is refused before it is looked at."""
    if context.files.root is None:
        context.fail(
            path,
            "audio.file is not accepted for a conversation added at run time (it has no fixtures folder); "
            "use audio.duration_s, or put the fixture and its WAV in the fixtures folder",
        )
    wav_path = context.files.locate(file)
    if wav_path is None:
        context.fail(
            path,
            f"audio file {file!r} is outside the fixtures folder; give a path relative to the fixture file, "
            "inside the folder",
        )
    return wav_path


def _parse_usage(context: FixtureContext, raw: Any, path: KeyPath) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        context.fail(path, f"usage must be a mapping of token counts, got {value_kind(raw)}")
    context.check_keys(raw, USAGE_KEYS, path, "usage")
    for key, value in raw.items():
        if key in USAGE_DETAIL_KEYS:
            if not isinstance(value, dict):
                context.fail((*path, key), f"usage.{key} must be a mapping of token counts")
            context.check_keys(value, USAGE_DETAIL_KEYS[key], (*path, key), f"usage.{key}")
            for detail, count in value.items():
                if not _is_count(count):
                    context.fail((*path, key, detail), f"usage.{key}.{detail} must be a whole number >= 0")
        elif not _is_count(value):
            context.fail((*path, key), f"usage.{key} must be a whole number >= 0, got {short_json(value)}")
    if all(k in raw for k in ("prompt_tokens", "completion_tokens", "total_tokens")):
        expected = raw["prompt_tokens"] + raw["completion_tokens"]
        if raw["total_tokens"] != expected:
            context.fail(
                (*path, "total_tokens"),
                f"usage.total_tokens is {raw['total_tokens']}, but prompt_tokens + completion_tokens is {expected}",
            )
    return copy.deepcopy(raw)


def _parse_fault(context: FixtureContext, raw: Any, path: KeyPath) -> tuple[dict[str, Any] | None, int]:
    """The fault without its ``times``, and that count (0: every request gets the fault)."""
    if raw is None:
        return None, 0
    if not isinstance(raw, dict):
        context.fail(path, f"fault must be a mapping with a type, got {value_kind(raw)}")
    kind = raw.get("type")
    if kind not in FAULT_TYPES:
        close = difflib.get_close_matches(str(kind), FAULT_TYPES, n=1) if isinstance(kind, str) else []
        hint = f"; did you mean {close[0]!r}?" if close else f" (one of {', '.join(FAULT_TYPES)})"
        context.fail(
            (*path, "type") if "type" in raw else path,
            f"fault needs a type{hint}" if kind is None else f"unknown fault type {short_json(kind)}{hint}",
        )
    fault = copy.deepcopy(raw)
    times = fault.pop("times", 0)
    if "times" in raw and (not _is_count(times) or times < 1):
        context.fail(
            (*path, "times"),
            "fault.times must be a whole number, 1 or more (the first N requests "
            f"get the fault, later ones the reply), got {short_json(raw['times'])}",
        )
    try:
        parse_fault(fault)
    except ValueError as exc:
        bad = next((key for key in fault if key != "type" and (repr(key) in str(exc) or f": {key} " in str(exc))), None)
        context.fail((*path, bad) if bad is not None else path, str(exc))
    return fault, times


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def value_kind(value: Any) -> str:
    """The kind of a value in the words of a YAML writer."""
    kind = json_type(value)
    return {
        "object": "a mapping",
        "array": "a list",
        "null": "nothing",
        "integer": "a number",
        "number": "a number",
        "boolean": "true/false",
    }.get(kind, f"a {kind}")
