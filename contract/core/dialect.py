"""What a profile's document says about behaviour a schema alone does not carry, read once for both tools.

The mock serves by it and the checks judge by it, so they cannot disagree: whether a request without
``stream`` gets a stream (the ``stream`` default), whether the usage chunk waits to be asked for
(``x-usage-chunk: stream_options.include_usage`` on the event stream), and whether ``n`` and
``logprobs`` are parameters of the dialect at all (the seed's request schema does not close its
properties, so a seed request may carry an ``n`` that means nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .spec import DOCUMENT_URI, Spec, SpecError

USAGE_WHEN_ASKED = "stream_options.include_usage"
_MAX_REF_HOPS = 16


@dataclass(frozen=True)
class Dialect:
    label: str = "seed"
    stream_default: bool = True
    usage_when_asked: bool = False  # the usage chunk only with stream_options.include_usage
    takes_n: bool = False
    takes_logprobs: bool = False

    @classmethod
    def of(cls, spec: Spec, path: str = "/chat/completions") -> Dialect:
        try:
            operation = spec.operation(path)
        except SpecError:
            return cls(label=spec.profile.label)
        media = operation.request_body.get("application/json")
        properties = _properties(spec, media.schema) if media is not None else {}
        stream = properties.get("stream")
        default = stream.get("default") if isinstance(stream, dict) else None
        ok = operation.responses.get("200")
        events = ok.content.get("text/event-stream") if ok is not None else None
        usage_rule = events.extensions.get("x-usage-chunk") if events is not None else None
        return cls(
            label=spec.profile.label,
            stream_default=default if isinstance(default, bool) else False,
            usage_when_asked=usage_rule == USAGE_WHEN_ASKED,
            takes_n="n" in properties,
            takes_logprobs="logprobs" in properties,
        )

    def streams(self, body: dict[str, Any]) -> bool:
        """Whether the reply to ``body`` is a stream: its ``stream``, or the dialect's default (also for null)."""
        value = body.get("stream")
        return value if isinstance(value, bool) else self.stream_default

    def sends_usage_chunk(self, body: dict[str, Any]) -> bool:
        if not self.usage_when_asked:
            return True
        options = body.get("stream_options")
        return isinstance(options, dict) and options.get("include_usage") is True

    def choice_count(self, body: dict[str, Any]) -> int:
        count = body.get("n") if self.takes_n else None
        return count if isinstance(count, int) and not isinstance(count, bool) and count > 1 else 1


def _properties(spec: Spec, schema: Any) -> dict[str, Any]:
    node = _deref(spec, schema)
    properties = node.get("properties") if isinstance(node, dict) else None
    if not isinstance(properties, dict):
        return {}
    return {name: _deref(spec, value) for name, value in properties.items()}


def _deref(spec: Spec, node: Any) -> Any:
    for _ in range(_MAX_REF_HOPS):
        if not (isinstance(node, dict) and isinstance(node.get("$ref"), str)):
            break
        node = spec.resolve(node["$ref"].removeprefix(DOCUMENT_URI))
    return node
