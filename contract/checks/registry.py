"""The registry: every check by name, in the order the reports list them, and how a selection runs.

Built-in checks are registered here, in one place; a user adds one with the
public :func:`check` decorator, and it then runs, shrinks and reports like the
built-in ones, because the runner only ever sees names and failures.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar, get_args, overload

from ..core.exchange import Exchange, Failure
from ..core.semantics import read_once
from . import response, semantic, stream
from .context import MAX_FAILURES_PER_CHECK, CheckContext, Verdict
from .helpers import one_line

Scope = Literal["response", "stream", "semantics"]
SCOPES: tuple[str, ...] = get_args(Scope)
CheckFunction = Callable[[CheckContext, Exchange], Any]
F = TypeVar("F", bound=CheckFunction)


@dataclass(frozen=True)
class Check:
    name: str
    func: Callable[[CheckContext, Exchange], Verdict]
    description: str
    scope: Scope
    default: bool = True


CHECKS: dict[str, Check] = {}


def register(
    func: Callable[[CheckContext, Exchange], Verdict],
    scope: Scope,
    default: bool = True,
    *,
    name: str | None = None,
    description: str | None = None,
) -> Check:
    """Add ``func`` to :data:`CHECKS` as it is; its description is its docstring's first paragraph."""
    check_name = name or func.__name__
    if scope not in SCOPES:
        raise ValueError(f"check {check_name!r}: scope {scope!r} is not one of {', '.join(SCOPES)}")
    if check_name == "all" or not check_name.isidentifier():
        raise ValueError(f"check name {check_name!r} must be an identifier other than 'all'")
    existing = CHECKS.get(check_name)
    if existing is not None and _origin(existing.func) != _origin(func):
        raise ValueError(f"a check named {check_name!r} is already registered ({_origin(existing.func)})")
    entry = Check(check_name, func, description or _first_paragraph(func), scope, default)
    CHECKS[check_name] = entry
    return entry


@overload
def check(func: F, /) -> F: ...


@overload
def check(
    *, scope: Scope = "response", default: bool = True, name: str | None = None, description: str | None = None
) -> Callable[[F], F]: ...


def check(
    func: Any = None,
    /,
    *,
    scope: Scope = "response",
    default: bool = True,
    name: str | None = None,
    description: str | None = None,
) -> Any:
    """Register a check of your own: ``@contract.check`` or ``@contract.check(scope="stream")``.

    The function takes ``(ctx, exchange)`` and returns ``None`` when the exchange is not for it
    (it did not judge), an empty list when it judged and found it right, or a list of failures
    (:class:`contract.Failure` records or plain message strings); a failed ``assert`` is one
    failure too. It is run on every exchange (by default; ``default=False`` makes it opt-in with
    ``--checks``) and its failures are shrunk and reported under its name. The function is
    returned unchanged, so it can still be called and tested directly.
    """

    def decorate(user_func: F) -> F:
        check_name = name or user_func.__name__
        register(
            _user_check(check_name, user_func),
            scope,
            default,
            name=check_name,
            description=description or _first_paragraph(user_func),
        )
        return user_func

    return decorate(func) if func is not None else decorate


def unregister(name: str) -> None:
    """Remove a check added with :func:`check` (tests register one for a test, then remove it)."""
    if name in BUILT_IN:
        raise ValueError(f"{name!r} is a built-in check; exclude it with --exclude-checks instead")
    CHECKS.pop(name, None)


def _user_check(name: str, func: CheckFunction) -> Callable[[CheckContext, Exchange], Verdict]:
    """``func`` held to the verdict the runner expects: failures under its own name, at most a few."""

    @functools.wraps(func)
    def judged(ctx: CheckContext, exchange: Exchange) -> Verdict:
        try:
            verdict = func(ctx, exchange)
        except AssertionError as exc:
            return [
                Failure(
                    name,
                    one_line(str(exc)) or f"{name} failed",
                    expected="the assertion to hold",
                    seen=one_line(str(exc))[:60],
                )
            ]
        if verdict is None:
            return None
        return [_as_failure(name, item) for item in verdict][:MAX_FAILURES_PER_CHECK]

    return judged


def _as_failure(name: str, item: Any) -> Failure:
    if isinstance(item, str):
        return Failure(name, one_line(item))
    if isinstance(item, Failure):
        return item if item.check == name else replace(item, check=name)
    raise TypeError(f"check {name!r} returned {type(item).__name__}, not a Failure or a message string")


def _origin(func: Callable[..., Any]) -> str:
    inner = getattr(func, "__wrapped__", func)
    return f"{getattr(inner, '__module__', '?')}.{getattr(inner, '__qualname__', '?')}"


def _first_paragraph(func: Callable[..., Any]) -> str:
    paragraph = (func.__doc__ or "").strip().split("\n\n", 1)[0]
    return " ".join(paragraph.split())


def default_checks() -> list[str]:
    return [name for name, check in CHECKS.items() if check.default]


def select_checks(include: Iterable[str] | None = None, exclude: Iterable[str] = ()) -> list[str]:
    """The names ``--checks`` / ``--exclude-checks`` select; ``all`` selects every check."""
    wanted = list(include) if include is not None else default_checks()
    if "all" in wanted:
        wanted = list(CHECKS)
    excluded = list(exclude)
    unknown = [name for name in (*wanted, *excluded) if name not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check {unknown[0]!r} (known: {', '.join(CHECKS)})")
    return [name for name in CHECKS if name in wanted and name not in excluded]


@dataclass(frozen=True)
class Outcome:
    """What the selected checks made of one exchange: the failures, and which checks judged it at all."""

    failures: list[Failure]
    judged: frozenset[str]


def run_checks(ctx: CheckContext, exchange: Exchange, selected: Iterable[str]) -> list[Failure]:
    """Run the selected checks (``valid_request_accepted`` too when ``ctx.accept_valid``) in registry order."""
    return judge(ctx, exchange, selected).failures


def judge(ctx: CheckContext, exchange: Exchange, selected: Iterable[str]) -> Outcome:
    """Run the selected checks and note which of them judged the exchange (returned a list, not ``None``)."""
    names = set(selected)
    if ctx.accept_valid:
        names.add("valid_request_accepted")
    unknown = names - set(CHECKS)
    if unknown:
        raise ValueError(f"unknown check {sorted(unknown)[0]!r} (known: {', '.join(CHECKS)})")
    failures: list[Failure] = []
    judged: set[str] = set()
    with read_once(exchange, ctx.counterpart):  # every check reads the same parsed events and reply
        for name, check in CHECKS.items():
            if name in names:
                verdict = check.func(ctx, exchange)
                if verdict is not None:
                    judged.add(name)
                    failures.extend(verdict)
    return Outcome(failures, frozenset(judged))


# The built-in checks, in the order reports list them.
register(response.not_a_server_error, "response")
register(response.status_code_documented, "response")
register(response.content_type_matches, "response")
register(response.response_body_valid, "response")
register(response.error_body_valid, "response")
register(response.negative_rejected, "response")
register(response.valid_request_accepted, "response", default=False)
register(response.transport_ok, "response")
register(response.ttft_within_limit, "response")
register(stream.sse_framing, "stream")
register(stream.chunks_valid, "stream")
register(stream.stream_terminated, "stream")
register(stream.consistent_ids, "stream")
register(stream.role_first, "stream")
register(stream.finish_reason_once, "stream")
register(stream.usage_chunk_as_asked, "stream", default=False)  # on where the profile makes usage optional
register(semantic.tool_calls_assemble, "semantics")
register(semantic.tool_choice_honoured, "semantics")
register(semantic.parallel_tool_calls_honoured, "semantics")
register(semantic.response_format_honoured, "semantics")
register(semantic.audio_present, "semantics")
register(semantic.usage_consistent, "semantics")
register(semantic.stream_matches_nonstream, "semantics")
BUILT_IN = frozenset(CHECKS)  # what unregister() may not remove
