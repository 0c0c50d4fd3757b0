"""Why a run proved nothing, in one line, with the likely fix.

A server that answers every request with a documented error passes every check
that judges error bodies, and a wrong base URL looks exactly like that. A run
in which no schema-valid request got a 2xx, or in which the checks that carry
the contract judged nothing, must not pass: this module says what the server
answered and what to try instead.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

# The checks without which a run has not looked at a single successful reply.
CONTRACT_CHECKS = ("response_body_valid", "chunks_valid")


@dataclass(frozen=True)
class Answer:
    """How the server answered one schema-valid request: a status and the error code it gave, if any."""

    status: int | None  # None: no HTTP answer (timeout, reset, garbage)
    code: str | None = None

    def __str__(self) -> str:
        if self.status is None:
            return f"no answer ({self.code})" if self.code else "no answer"
        return f"{self.status} `{self.code}`" if self.code else str(self.status)


def most_common(answers: Mapping[Answer, int], limit: int = 3) -> str:
    """``"404 `unknown_path` ×12, 401 ×3"``: the commonest answers first, ties in a fixed order."""
    ranked = sorted(answers.items(), key=lambda item: (-item[1], item[0].status or 0, item[0].code or ""))
    return ", ".join(f"{answer} ×{count}" for answer, count in ranked[:limit])


def diagnose(
    base: str, operation_path: str, answers: Counter[Answer], judged: Mapping[str, int], selected: Iterable[str]
) -> str | None:
    """The one-line reason a run proves nothing, or ``None`` when it looked at real replies."""
    total = sum(answers.values())
    if total == 0:
        return "no schema-valid request was sent, so nothing of the contract was checked"
    successes = sum(
        count for answer, count in answers.items() if answer.status is not None and 200 <= answer.status < 300
    )
    if successes == 0:
        statuses = {answer.status for answer in answers}
        if len(answers) == 1:
            seen = f"all {total} valid requests got {next(iter(answers))}"
        else:
            seen = f"none of the {total} valid requests got a 2xx ({most_common(answers)})"
        return f"{seen}; {_likely_fix(base, operation_path, statuses)}"
    unjudged = [name for name in selected if name in CONTRACT_CHECKS and judged.get(name, 0) == 0]
    if unjudged and len(unjudged) == len([name for name in selected if name in CONTRACT_CHECKS]):
        return (
            f"{', '.join(unjudged)} judged no reply: {successes} request(s) got a 2xx, but none "
            "had a body or stream the document describes, so nothing of the contract was checked"
        )
    return None


def _likely_fix(base: str, operation_path: str, statuses: set[int | None]) -> str:
    if statuses <= {404, 405}:
        return f"is the base URL right? the operation is POST {base}{operation_path}; try {suggested_base(base)}"
    if statuses <= {401, 403}:
        return "does the server want credentials? pass them with --header 'Authorization: Bearer ...'"
    if statuses == {None}:
        return "is it the right server and port? raise --timeout if it is only slow"
    if all(status is not None and status >= 500 for status in statuses):
        return "the server fails on every valid request; see not_a_server_error below"
    return "the server refuses every request the contract calls valid; see the refusals below"


def suggested_base(base: str) -> str:
    """The base URL most OpenAI-compatible servers use: the given one ending in ``/v1``."""
    parts = urlsplit(base)
    path = parts.path.rstrip("/")
    if re.search(r"/v\d+$", path):
        path = re.sub(r"/v\d+$", "/v1", path) if not path.endswith("/v1") else path.removesuffix("/v1")
    else:
        path += "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


DIALECT_CHECK = "content_type_matches"


def is_openai_default(failure_check: str, expected: str | None, exchange_body: object, seen_json: bool) -> bool:
    """Whether a failure is the OpenAI dialect's default, not a defect: JSON for a request without ``stream``
    where the document streams by default."""
    return (
        failure_check == DIALECT_CHECK
        and expected == "text/event-stream"
        and seen_json
        and isinstance(exchange_body, dict)
        and not isinstance(exchange_body.get("stream"), bool)
    )


def dialect_hint(openai_defaults: int, other_failures: int) -> str | None:
    """The first line of a run whose stream failures are all the OpenAI dialect's default, else None."""
    if not openai_defaults or other_failures:
        return None
    return (
        f"every {DIALECT_CHECK} failure ({openai_defaults}) is a JSON reply to a request without `stream`: "
        "the server speaks the OpenAI dialect, where `stream` defaults to false; run with --profile openai "
        "to judge it by that dialect"
    )
