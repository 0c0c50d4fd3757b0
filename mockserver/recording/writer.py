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
import secrets as random_names
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from contract.core.redaction import Redactor
from contract.core.textfile import UnreadableFile, read_text
from contract.core.validate import ContractValidator

from ..fixtures import (
    FIXTURE_SUFFIXES,
    MAX_FIXTURE_BYTES,
    OTHER_ROLE_KEYS,
    USER_KEYS,
    Fixture,
    FixtureError,
    fixture_document,
    fixture_from_text,
)
from ..matching import canonical_message, message_text
from ..startup_checks import check_fixture
from .capture import RecordedTurn, merge_pacing

logger = logging.getLogger("mockserver.record")

RECORDED_BY = "Recorded by mockserver record"
_MEASURED = re.compile(r"pacing measured over (\d+) streamed repl")
_SLUG_LENGTH = 40
_LIMIT_MB = MAX_FIXTURE_BYTES // 2**20


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
        self._lock = threading.Lock()  # guards the index below, never held while a file is written
        self._file_locks: dict[Path, threading.Lock] = {}
        self._conversations: list[_Conversation] = []
        self._names: set[str] = set()  # fixture names in use in the folder: a new file must not repeat one
        self._reserved: set[str] = set()  # names of new files being written
        self.folder.mkdir(parents=True, exist_ok=True)
        self._scan()

    @property
    def count(self) -> int:
        return len(self._conversations)

    def record(self, request: dict[str, Any], turn: RecordedTurn, secrets: Iterable[str] = ()) -> Written:
        """Add ``turn`` as the answer to ``request``; NotWritten when the result would not load.

        Only writes to the same file wait for each other: a long reply being written does not hold up
        the recording of another conversation.
        """
        redactor = Redactor(secrets)
        raw_messages = request.get("messages")
        if not isinstance(raw_messages, list) or not raw_messages:
            raise NotWritten("the request has no messages")
        messages = [_file_message(m) for m in _joined(redactor.value(raw_messages))]
        message = _joined(redactor.value(turn.message))
        model = request.get("model") if isinstance(request.get("model"), str) else None
        canon = tuple(canonical_message(m) for m in messages)
        while True:
            with self._lock:
                conversation, action = self._target(canon, messages, model)
                file_lock = self._file_locks.setdefault(conversation.path, threading.Lock())
            with file_lock:
                if action != "new" and not self._is_current(conversation):
                    continue  # another write changed this file while this one waited: look again
                try:
                    return self._write(conversation, canon, messages, message, turn, model, action, redactor)
                finally:
                    if action == "new":
                        with self._lock:
                            self._reserved.discard(conversation.path.stem)

    def _target(
        self, canon: tuple[Any, ...], messages: list[dict[str, Any]], model: str | None
    ) -> tuple[_Conversation, str]:
        """The conversation the request goes into and how: ``extended``, ``answered`` or ``new`` (its name reserved)."""
        extended, answered = self._continued(canon, model)
        if extended is not None:
            return extended, "extended"
        if answered is not None:
            return answered, "answered"
        path = self._new_path(messages, model)
        self._reserved.add(path.stem)
        return _Conversation(path, {}, (), model, 0), "new"

    def _is_current(self, conversation: _Conversation) -> bool:
        with self._lock:
            return any(known is conversation for known in self._conversations)

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
        while (
            stem in self._names
            or stem in self._reserved
            or any((self.folder / (stem + suffix)).exists() for suffix in FIXTURE_SUFFIXES)
        ):
            number += 1
            stem = f"{slug}-{digest}-{number}"
        return self.folder / f"{stem}.yaml"

    # -- writing ----------------------------------------------------------------------------------
    def _write(
        self,
        conversation: _Conversation,
        canon: tuple[Any, ...],
        messages: list[dict[str, Any]],
        message: dict[str, Any],
        turn: RecordedTurn,
        model: str | None,
        action: str,
        redactor: Redactor,
    ) -> Written:
        action, before, message, after = _placed(conversation, action, canon, messages, message)
        path = conversation.path
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
        try:
            encoded, fixture = self._checked(data, path)
        except FixtureError as exc:
            if created_wav is not None:  # leave the folder as it was
                created_wav.unlink(missing_ok=True)
            raise NotWritten(str(exc)) from None
        _atomic_write(path, encoded)
        _remove_unused_audio(path, data["conversation"])
        self._remember(conversation, _Conversation(path, data, _canon(data["conversation"]), model, measured), action)
        return Written(path, len(before), action, fixture)

    def _remember(self, old: _Conversation, new: _Conversation, action: str) -> None:
        with self._lock:
            if action == "new":
                self._conversations.append(new)
                self._names.add(new.path.stem)
            else:
                at = next(i for i, known in enumerate(self._conversations) if known is old)
                self._conversations[at] = new

    def _checked(self, data: dict[str, Any], path: Path) -> tuple[bytes, Fixture]:
        """The file's bytes and fixture, read as ``mockserver --fixtures`` reads it: same reader, limits and checks.

        A file the start-up loader would refuse must not be written: one such file stops the whole folder.
        """
        if _text_bytes(data) > MAX_FIXTURE_BYTES:  # known before the slow dump: the file holds all this text
            raise FixtureError(f"{path}: the file would be more than the {_LIMIT_MB} MB a fixture file may have")
        text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)
        encoded = text.encode("utf-8")
        if len(encoded) > MAX_FIXTURE_BYTES:
            raise FixtureError(
                f"{path}: the file would be {len(encoded) / 2**20:.1f} MB, more than the "
                f"{_LIMIT_MB} MB a fixture file may have"
            )
        fixture = fixture_from_text(text, path, root=self.folder)
        check_fixture(fixture, self.validator)
        return encoded, fixture

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
                text = read_text(path, limit=MAX_FIXTURE_BYTES)
                data, _ = fixture_document(text, path)
            except (UnreadableFile, FixtureError, ValueError, RecursionError):
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


def _placed(
    conversation: _Conversation,
    action: str,
    canon: tuple[Any, ...],
    messages: list[dict[str, Any]],
    message: dict[str, Any],
) -> tuple[str, list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
    """The action taken and the messages before, in place of, and after the recorded turn."""
    if action == "new":
        return "new", messages, message, []
    recorded = conversation.data["conversation"]
    if action == "extended":
        return "extended", [*recorded, *messages[len(conversation.canon) :]], message, []
    before, old = list(recorded[: len(canon)]), recorded[len(canon)]
    action, message = _answer_again(old, message)
    same_echo = canonical_message(_echo(message)) == canonical_message(_echo(old))
    after = list(recorded[len(canon) + 1 :]) if same_echo else []  # they continued the old answer
    return action, before, message, after


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _joined(value: Any) -> Any:
    """``value`` with UTF-16 surrogate pairs made into the characters they encode.

    A stream may split an emoji into its two halves (``"\\ud83c"``, then ``"\\udf89"``), each a JSON
    escape of its own; put together they are one character, which a file holds as UTF-8. A half
    with no partner is not text at all, so such a reply is not written.
    """
    if isinstance(value, str):
        if not _SURROGATE.search(value):
            return value
        text = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
        if _SURROGATE.search(text):
            raise NotWritten("the exchange holds half of a UTF-16 surrogate pair, which is not text")
        return text
    if isinstance(value, list):
        return [_joined(item) for item in value]
    if isinstance(value, dict):
        return {_joined(key): _joined(item) for key, item in value.items()}
    return value


def _text_bytes(value: Any) -> int:
    """The UTF-8 size of every string in ``value``: a lower bound on the size of the file that holds it."""
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, list):
        return sum(_text_bytes(item) for item in value)
    if isinstance(value, dict):
        return sum(_text_bytes(key) + _text_bytes(item) for key, item in value.items())
    return 0


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
    handle, temporary = _temporary_beside(path)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _temporary_beside(path: Path) -> tuple[int, Path]:
    """A new hidden file next to ``path``, with the mode the user's umask gives (mkstemp's is always 0600)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        temporary = path.with_name(f".{path.name}.{random_names.token_hex(6)}.tmp")
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue


class _Dumper(yaml.SafeDumper):
    """Block style, lists indented under their key, and multi-line text as ``|`` blocks, for people to read."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_text)
