"""A Responses API ``input`` read as the chat messages a fixture conversation is written in.

The Responses API sends a conversation as typed items (messages, function calls and their
outputs) where chat completions sends messages; the fixtures are written once, as chat messages,
so each item becomes the chat message it stands for. Consecutive ``function_call`` items are one
assistant turn with parallel tool calls (and join the assistant message just before them), as a
model that answered with text and calls wrote them; each ``function_call_output`` is a ``tool``
message. Anything the mock cannot take back is refused here, naming the item, rather than
matched as something it is not.
"""

from __future__ import annotations

from typing import Any, NoReturn

from .request_rules import Refusal

MESSAGE_ROLES = ("user", "system", "developer", "assistant")
_TEXT_PARTS = ("input_text", "output_text")
_ITEM_TYPES = ("message", "function_call", "function_call_output")
_IMAGE_DETAILS = ("auto", "low", "high", "original")


class RefusedRequest(Exception):
    """A request the Responses route refuses; carries the Refusal the route answers with."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


def refuse(message: str, code: str, param: str | None) -> NoReturn:
    raise RefusedRequest(Refusal(message, code, param))


def json_kind(value: Any) -> str:
    """What a JSON value is, in the words of an error message: ``a string``, ``an integer``..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def wrong_type(param: str, expected: str, value: Any) -> NoReturn:
    refuse(
        f"Invalid type for '{param}': expected {expected}, but got {json_kind(value)} instead.", "invalid_type", param
    )


def required_string(item: dict[str, Any], key: str, where: str) -> str:
    """``item[key]``, which must be a string; the refusal names ``where.key``."""
    if key not in item:
        refuse(f"Missing required parameter: '{where}.{key}'.", "missing_required_parameter", f"{where}.{key}")
    value = item[key]
    if not isinstance(value, str):
        wrong_type(f"{where}.{key}", "a string", value)
    return value


def input_messages(value: Any) -> list[dict[str, Any]]:
    """The chat messages ``input`` stands for: a string is one user message, a list is read item by item."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        wrong_type("input", "a string or an array of input items", value)
    messages: list[dict[str, Any]] = []
    for index, item in enumerate(value):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            wrong_type(where, "an object (a message, function_call or function_call_output item)", item)
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            messages.append(_message(item, where))
        elif kind == "function_call":
            _add_call(messages, _function_call(item, where))
        elif kind == "function_call_output":
            messages.append(_function_output(item, where))
        else:
            _unknown_item(item, kind, where)
    return messages


def _unknown_item(item: dict[str, Any], kind: Any, where: str) -> NoReturn:
    """Why an item cannot be taken: each kind the API knows gets its own reason, the rest one list."""
    if kind is None:
        refuse(
            f"Missing required parameter: '{where}.type' (an item with no 'role' must say its type: "
            f"{', '.join(_ITEM_TYPES)}).",
            "missing_required_parameter",
            f"{where}.type",
        )
    if kind == "reasoning":
        refuse(
            f"{where} is a 'reasoning' item; the mock's replies carry no reasoning, so it takes none back. "
            "Leave reasoning items out of the input.",
            "unsupported_value",
            f"{where}.type",
        )
    if kind == "item_reference":
        refuse(
            f"{where} is an 'item_reference' (id {item.get('id')!r}); the mock takes items themselves, or a "
            "whole earlier response through previous_response_id.",
            "unsupported_value",
            f"{where}.type",
        )
    refuse(
        f"Invalid value for '{where}.type': {kind!r} is not an item the mock takes; "
        f"supported values are {', '.join(map(repr, _ITEM_TYPES))}.",
        "invalid_value",
        f"{where}.type",
    )


def _message(item: dict[str, Any], where: str) -> dict[str, Any]:
    role = item.get("role")
    if role is None:
        refuse(f"Missing required parameter: '{where}.role'.", "missing_required_parameter", f"{where}.role")
    if role not in MESSAGE_ROLES:
        refuse(
            f"Invalid value for '{where}.role': {role!r}; supported values are {', '.join(map(repr, MESSAGE_ROLES))}.",
            "invalid_value",
            f"{where}.role",
        )
    if "content" not in item:
        refuse(f"Missing required parameter: '{where}.content'.", "missing_required_parameter", f"{where}.content")
    content = item["content"]
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        wrong_type(f"{where}.content", "a string or an array of content parts", content)
    if role == "assistant":
        return _assistant(content, f"{where}.content")
    parts = [_part(part, role, f"{where}.content[{index}]") for index, part in enumerate(content)]
    return {"role": role, "content": _plain_if_one_text(parts) if role != "user" else parts}


def _plain_if_one_text(parts: list[dict[str, Any]]) -> Any:
    """One text part as a plain string: what every dialect takes for system and tool content, and what
    a fixture's ``content: "..."`` matches; several parts stay parts."""
    return parts[0]["text"] if len(parts) == 1 else parts


def _part(part: Any, role: str, where: str) -> dict[str, Any]:
    """One content part of a user, system or developer message (or a tool output) as a chat part."""
    if not isinstance(part, dict):
        wrong_type(where, "an object (a content part)", part)
    kind = part.get("type")
    if kind in _TEXT_PARTS:
        return {"type": "text", "text": required_string(part, "text", where)}
    if kind == "input_image" and role == "user":
        return _image(part, where)
    if kind == "input_file" and role == "user":
        return _file(part, where)
    if kind in ("input_image", "input_file", "refusal"):
        refuse(
            f"{where} is an {kind!r} part in a {role} message; chat conversations hold it only in "
            f"{'an assistant' if kind == 'refusal' else 'a user'} message.",
            "invalid_value",
            f"{where}.type",
        )
    refuse(
        f"Invalid value for '{where}.type': {kind!r}; supported values are 'input_text', 'input_image' and "
        "'input_file'.",
        "invalid_value",
        f"{where}.type",
    )


def _image(part: dict[str, Any], where: str) -> dict[str, Any]:
    url = part.get("image_url")
    if url is None:
        if part.get("file_id") is not None:
            refuse(
                f"{where} names an uploaded file (file_id); the mock has no file store, so send the image as "
                "image_url (an https or data: URL).",
                "unsupported_value",
                f"{where}.file_id",
            )
        refuse(f"Missing required parameter: '{where}.image_url'.", "missing_required_parameter", f"{where}.image_url")
    if not isinstance(url, str):
        wrong_type(f"{where}.image_url", "a string", url)
    image: dict[str, Any] = {"url": url}
    detail = part.get("detail")
    if detail is not None:
        if detail not in _IMAGE_DETAILS:
            refuse(
                f"Invalid value for '{where}.detail': {detail!r}; supported values are "
                f"{', '.join(map(repr, _IMAGE_DETAILS))}.",
                "invalid_value",
                f"{where}.detail",
            )
        image["detail"] = detail
    return {"type": "image_url", "image_url": image}


def _file(part: dict[str, Any], where: str) -> dict[str, Any]:
    if part.get("file_url") is not None:
        refuse(
            f"{where} gives a file_url; the mock fetches nothing, so send the file as file_data.",
            "unsupported_value",
            f"{where}.file_url",
        )
    file: dict[str, Any] = {}
    for key in ("file_data", "file_id", "filename"):
        if part.get(key) is not None:
            file[key] = required_string(part, key, where)
    if "file_data" not in file and "file_id" not in file:
        refuse(f"Missing required parameter: '{where}.file_data'.", "missing_required_parameter", f"{where}.file_data")
    return {"type": "file", "file": file}


def _assistant(content: list[Any], where: str) -> dict[str, Any]:
    """An assistant message given back (``response.output`` in the next input): its text and its refusal."""
    texts: list[str] = []
    refusals: list[str] = []
    for index, part in enumerate(content):
        here = f"{where}[{index}]"
        if not isinstance(part, dict):
            wrong_type(here, "an object (a content part)", part)
        kind = part.get("type")
        if kind in _TEXT_PARTS:
            texts.append(required_string(part, "text", here))
        elif kind == "refusal":
            refusals.append(required_string(part, "refusal", here))
        else:
            refuse(
                f"Invalid value for '{here}.type': {kind!r}; an assistant message holds 'output_text' and "
                "'refusal' parts.",
                "invalid_value",
                f"{here}.type",
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if refusals:
        message["refusal"] = "".join(refusals)
    return message


def _function_call(item: dict[str, Any], where: str) -> dict[str, Any]:
    call_id = required_string(item, "call_id", where)
    name = required_string(item, "name", where)
    arguments = required_string(item, "arguments", where)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _add_call(messages: list[dict[str, Any]], call: dict[str, Any]) -> None:
    """A call joins the assistant message just before it (a reply of text and calls, or parallel calls);
    after anything else it starts an assistant message of its own."""
    last = messages[-1] if messages else None
    if last is not None and last.get("role") == "assistant" and "refusal" not in last:
        last.setdefault("tool_calls", []).append(call)
        return
    messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _function_output(item: dict[str, Any], where: str) -> dict[str, Any]:
    call_id = required_string(item, "call_id", where)
    if "output" not in item:
        refuse(f"Missing required parameter: '{where}.output'.", "missing_required_parameter", f"{where}.output")
    output = item["output"]
    if isinstance(output, list):
        parts = [_part(part, "tool", f"{where}.output[{index}]") for index, part in enumerate(output)]
        output = _plain_if_one_text(parts)
    elif not isinstance(output, str):
        wrong_type(f"{where}.output", "a string or an array of content parts", output)
    return {"role": "tool", "tool_call_id": call_id, "content": output}
