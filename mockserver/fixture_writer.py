"""Recorded conversations on disk: one file per conversation, extended turn by turn, written atomically.

A client's second request repeats the first one's messages and the reply, so
the recorder finds the file whose conversation the request continues and
appends to it, instead of scattering one conversation over many files; a
retry after a fault adds a reply to the failed turn, so the replay tells the
same story. Every file is checked exactly as the server checks it at start-up
before it replaces anything, so a recorded folder always loads; and
credentials are scrubbed from everything written.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from contract.redaction import Redactor
from contract.validate import ContractValidator

from .capture import RecordedTurn, merge_pacing
from .fixtures import FIXTURE_SUFFIXES, OTHER_ROLE_KEYS, USER_KEYS, Fixture, FixtureError, fixture_from_dict
from .matching import canonical_message, message_text

logger = logging.getLogger("mockserver.record")

RECORDED_BY = "Recorded by mockserver record"
_MEASURED = re.compile(r"pacing measured over (\d+) streamed repl")
_SLUG_LENGTH = 40


class NotWritten(Exception):
    """The recorded conversation would not pass the start-up checks, so nothing was written."""


@dataclass(frozen=True)
class Written:
    """One recorded turn on disk: the file, the turn's index in it, and how the file changed."""

    path: Path
    turn_index: int
    action: str  # "new", "extended", "replaced" (a new answer) or "retried" (a reply after a fault)
    fixture: Fixture


@dataclass
class _Conversation:
    path: Path
    data: dict[str, Any]
    canon: tuple[Any, ...]
    model: str | None
    measured: int  # streamed replies the file's pacing is the mean of


class ConversationStore:
    """The recorded files of one folder, and the only writer of them; safe to call from several threads."""

    def __init__(self, folder: Path | str, validator: ContractValidator, upstream: str = "the upstream") -> None:
        self.folder = Path(folder)
        self.validator = validator
        self.upstream = upstream
        self._lock = threading.Lock()
        self._conversations: list[_Conversation] = []
        self._names: set[str] = set()  # fixture names in use in the folder: a new file must not repeat one
        self.folder.mkdir(parents=True, exist_ok=True)
        self._scan()

    @property
    def count(self) -> int:
        return len(self._conversations)

    def record(self, request: dict[str, Any], turn: RecordedTurn, secrets: Iterable[str] = ()) -> Written:
        """Add ``turn`` as the answer to ``request``; NotWritten when the result would not load."""
        redactor = Redactor(secrets)
        raw_messages = request.get("messages")
        if not isinstance(raw_messages, list) or not raw_messages:
            raise NotWritten("the request has no messages")
        messages = [_file_message(m) for m in redactor.value(raw_messages)]
        message = redactor.value(turn.message)
        model = request.get("model") if isinstance(request.get("model"), str) else None
        canon = tuple(canonical_message(m) for m in messages)
        with self._lock:
            extended, answered = self._continued(canon, model)
            if extended is not None:
                conversation = extended
                action, before = "extended", [*extended.data["conversation"], *messages[len(extended.canon) :]]
                after: list[dict[str, Any]] = []
            elif answered is not None:
                conversation = answered
                recorded = answered.data["conversation"]
                before, old = list(recorded[: len(canon)]), recorded[len(canon)]
                action, message = _answer_again(old, message)
                same_echo = canonical_message(_echo(message)) == canonical_message(_echo(old))
                after = list(recorded[len(canon) + 1 :]) if same_echo else []  # they continued the old answer
            else:
                conversation = _Conversation(self._new_path(messages, model), {}, (), model, 0)
                action, before, after = "new", messages, []
            return self._write(conversation, before, message, after, turn, model, action, redactor)

    # -- finding the conversation -----------------------------------------------------------------
    def _continued(
        self, canon: tuple[Any, ...], model: str | None
    ) -> tuple[_Conversation | None, _Conversation | None]:
        """The longest recorded conversation the request continues, or the one that already answers it."""
        extended = answered = None
        for conversation in self._conversations:
            if conversation.model != model:
                continue
            size = len(conversation.canon)
            if size < len(canon) and canon[:size] == conversation.canon:
                if extended is None or size > len(extended.canon):
                    extended = conversation
            elif size > len(canon) and conversation.canon[: len(canon)] == canon and answered is None:
                if conversation.data["conversation"][len(canon)].get("role") == "assistant":
                    answered = conversation
        return extended, answered

    def _new_path(self, messages: list[dict[str, Any]], model: str | None) -> Path:
        """``<slug of the first user message>-<hash of the first request>.yaml``, never an existing name."""
        first = next((m for m in messages if m.get("role") == "user"), messages[0])
        slug = _slug(message_text(first))
        digest = hashlib.sha256(
            json.dumps([model, [canonical_message(m) for m in messages]], default=str, ensure_ascii=False).encode()
        ).hexdigest()[:8]
        stem, number = f"{slug}-{digest}", 1
        while stem in self._names or any((self.folder / (stem + suffix)).exists() for suffix in FIXTURE_SUFFIXES):
            number += 1
            stem = f"{slug}-{digest}-{number}"
        return self.folder / f"{stem}.yaml"

    # -- writing ----------------------------------------------------------------------------------
    def _write(
        self,
        conversation: _Conversation,
        before: list[dict[str, Any]],
        message: dict[str, Any],
        after: list[dict[str, Any]],
        turn: RecordedTurn,
        model: str | None,
        action: str,
        redactor: Redactor,
    ) -> Written:
        path = conversation.path
        index = len(before)
        created_wav: Path | None = None
        if turn.wav is not None:
            wav_path = path.with_name(f"{path.stem}-audio-{hashlib.sha256(turn.wav).hexdigest()[:10]}.wav")
            if not wav_path.exists():
                _atomic_write(wav_path, turn.wav)
                created_wav = wav_path
            reply = message["replies"][-1] if "replies" in message else message
            reply["audio"] = {"file": wav_path.name, **reply.get("audio", {})}
        measured = conversation.measured + (turn.pacing is not None)
        stream = merge_pacing(conversation.data.get("stream"), conversation.measured, turn.pacing)
        data: dict[str, Any] = {"description": self._description(measured)}
        if model is not None:
            data["match"] = {"model": model}
        data["conversation"] = [*before, message, *after]
        if stream:
            data["stream"] = stream
        data = redactor.value(data)
        text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)
        try:
            fixture = self._checked(yaml.load(text, Loader=_Loader), path)
        except FixtureError as exc:
            if created_wav is not None:  # leave the folder as it was
                created_wav.unlink(missing_ok=True)
            raise NotWritten(str(exc)) from None
        _atomic_write(path, text.encode("utf-8"))
        _remove_unused_audio(path, data["conversation"])
        updated = _Conversation(path, data, _canon(data["conversation"]), model, measured)
        if action == "new":
            self._conversations.append(updated)
            self._names.add(path.stem)
        else:
            self._conversations[self._conversations.index(conversation)] = updated
        return Written(path, index, action, fixture)

    def _checked(self, data: dict[str, Any], path: Path) -> Fixture:
        from .app import check_fixture  # the start-up checks themselves; the app module is heavy to import

        fixture = fixture_from_dict(data, source=path)
        check_fixture(fixture, self.validator)
        return fixture

    def _description(self, measured: int) -> str:
        text = f"{RECORDED_BY} from {self.upstream}"
        if measured:
            text += f"; pacing measured over {measured} streamed repl{'y' if measured == 1 else 'ies'}"
        return text + "."

    # -- reading the folder -----------------------------------------------------------------------
    def _scan(self) -> None:
        """Find the files an earlier recording wrote (to extend them) and every name in use (to avoid it)."""
        for path in sorted(self.folder.rglob("*")):
            if (
                path.suffix.lower() not in FIXTURE_SUFFIXES
                or not path.is_file()
                or any(part.startswith(".") for part in path.relative_to(self.folder).parts)
            ):
                continue
            self._names.add(path.stem)
            try:
                text = path.read_text(encoding="utf-8")
                data = json.loads(text) if path.suffix.lower() == ".json" else yaml.load(text, Loader=_Loader)
            except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError):
                continue  # the server names what is wrong with it; here it is only a name in use
            if not isinstance(data, dict):
                continue
            if isinstance(data.get("name"), str):
                self._names.add(data["name"])
            description = data.get("description")
            conversation = data.get("conversation")
            if (
                path.parent != self.folder
                or path.suffix.lower() == ".json"
                or not isinstance(description, str)
                or not description.startswith(RECORDED_BY)
                or not isinstance(conversation, list)
                or not all(isinstance(m, dict) for m in conversation)
            ):
                continue
            match = data.get("match")
            if not isinstance(match, dict):
                match = {}
            model = match.get("model") if isinstance(match.get("model"), str) else None
            found = _MEASURED.search(description)
            measured = int(found.group(1)) if found else (1 if data.get("stream") else 0)
            self._conversations.append(_Conversation(path, data, _canon(conversation), model, measured))


def _answer_again(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A request answered before, answered again: a retry after a fault adds a reply, else the new one wins.

    A client retries after a 429, a 5xx or a dropped stream; keeping the fault and adding what
    the retry got makes the replay tell the same story ("429, then the reply"). An answer that
    did not fail is replaced, so recording a session again refreshes it instead of growing it.
    """
    replies = old.get("replies") if isinstance(old.get("replies"), list) else [_reply(old)]
    if not replies or not isinstance(replies[-1], dict) or "fault" not in replies[-1]:
        return "replaced", new
    merged: dict[str, Any] = {key: old[key] for key in ("role", "name") if key in old}
    merged["replies"] = [*replies, _reply(new)]
    if "then" in old:
        merged["then"] = old["then"]
    return "retried", merged


def _reply(message: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in message.items() if key not in ("role", "name", "replies", "then")}


def _echo(message: dict[str, Any]) -> dict[str, Any]:
    """A message as a client sends it back; for a turn with replies, the last one that says something."""
    if message.get("role") != "assistant" or not isinstance(message.get("replies"), list):
        return message
    said = [
        r
        for r in message["replies"]
        if isinstance(r, dict) and (r.get("content") or r.get("tool_calls") or r.get("refusal") or r.get("audio"))
    ]
    last = said[-1] if said else {}
    return {
        "role": "assistant",
        **{key: message[key] for key in ("name",) if key in message},
        **{key: last[key] for key in ("content", "tool_calls") if key in last},
    }


def _canon(conversation: list[dict[str, Any]]) -> tuple[Any, ...]:
    return tuple(canonical_message(_echo(message)) for message in conversation)


def _remove_unused_audio(path: Path, conversation: list[dict[str, Any]]) -> None:
    """Delete this file's recorded WAVs that no reply refers to any more (a replaced answer's)."""
    used = {
        reply["audio"]["file"]
        for message in conversation
        for reply in (message.get("replies") or [message])
        if isinstance(reply, dict)
        and isinstance(reply.get("audio"), dict)
        and isinstance(reply["audio"].get("file"), str)
    }
    for wav in path.parent.glob(f"{glob.escape(path.stem)}-audio-*.wav"):
        if wav.name not in used:
            wav.unlink(missing_ok=True)


def _file_message(message: Any) -> dict[str, Any]:
    """A request message in the fixture format: the keys the loader takes for its role, nothing else."""
    if not isinstance(message, dict):
        return {"role": "user", "content": message}
    role = message.get("role")
    if role == "assistant":
        out: dict[str, Any] = {"role": "assistant"}
        if isinstance(message.get("name"), str):
            out["name"] = message["name"]
        if message.get("content") not in (None, ""):
            out["content"] = message["content"]
        if isinstance(message.get("refusal"), str) and message["refusal"]:
            out["refusal"] = message["refusal"]
        calls = message.get("tool_calls")
        if isinstance(calls, list) and calls:
            out["tool_calls"] = [_sent_call(call) for call in calls]
        return out
    keys = (
        USER_KEYS
        if role in ("user", "system")
        else ("role", "tool_call_id", "content")
        if role == "tool"
        else OTHER_ROLE_KEYS
    )
    return {key: message[key] for key in keys if key in message and message[key] is not None}


def _sent_call(call: Any) -> Any:
    if not isinstance(call, dict):
        return call
    function = call.get("function")
    if not isinstance(function, dict):
        function = {}
    out = {key: call[key] for key in ("id", "type") if call.get(key) is not None}
    out["function"] = {key: function[key] for key in ("name", "arguments") if key in function}
    return out


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")
    if len(slug) > _SLUG_LENGTH:
        slug = slug[:_SLUG_LENGTH].rsplit("-", 1)[0] or slug[:_SLUG_LENGTH]
    return slug or "conversation"


def _atomic_write(path: Path, data: bytes) -> None:
    """Write next to ``path`` under a dot name (which the loader skips), then rename over it."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class _Loader(yaml.SafeLoader):
    """SafeLoader without timestamps, as the fixture loader reads files: dates stay the text written."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _Dumper(yaml.SafeDumper):
    """Block style, lists indented under their key, and multi-line text as ``|`` blocks, for people to read."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_text)
