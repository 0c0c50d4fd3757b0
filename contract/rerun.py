"""The options that decide what a run sends, and the command lines that send it again.

A seed alone does not repeat a run: ``--max-examples``, the phases, the checks, the document, the
profile, the deadline and the headers all change which requests are drawn or how they are judged.
Every report prints the command built from these, for ``contract-check`` and for the pytest plugin.
Header values never appear: each is a shell variable named after its header (``"Authorization:
$AUTHORIZATION"``), which the user sets before pasting the line. Credentials in the URL are shown
the same way: ``"http://user:${URL_PASSWORD}@host/v1"`` (a bare ``token@`` as ``${URL_USERINFO}@``).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from urllib.parse import urlsplit

from .core.redaction import URL_PASSWORD_VARIABLE, URL_USERINFO_VARIABLE

DEFAULT_MAX_EXAMPLES = 50
DEFAULT_TIMEOUT = 10.0
ALL_PHASES = ("coverage", "schema", "realistic", "negative")
_PLUGIN_FLAGS = {"--profile": "--contract-profile", "--overlay": "--contract-overlay"}


@dataclass(frozen=True)
class RerunOptions:
    """What a run was given that changes the requests it sends or how their answers are judged."""

    spec: str | None = None  # a document of the user's; None for the bundled one
    profile_options: tuple[str, ...] = ()  # --profile / --overlay as given
    max_examples: int = DEFAULT_MAX_EXAMPLES
    phases: tuple[str, ...] = ALL_PHASES
    checks: tuple[str, ...] = ()  # --checks, as given; empty for the defaults
    exclude_checks: tuple[str, ...] = ()
    imports: tuple[str, ...] = ()  # modules whose checks ran (--import)
    accept_valid: bool = False
    max_ttft_ms: float | None = None
    timeout: float = DEFAULT_TIMEOUT
    header_names: tuple[str, ...] = ()


def header_variable(name: str) -> str:
    """The shell variable a header's value is shown as: ``X-Api-Key`` -> ``$X_API_KEY``."""
    return "$" + (re.sub(r"[^A-Za-z0-9]", "_", name).upper() or "HEADER")


def _header_word(flag: str, name: str) -> str:
    """``--header "Name: $NAME"``: double quotes, so the shell puts the value in and nothing shows it."""
    return f'{flag} "{_in_double_quotes(name)}: {header_variable(name)}"'


def url_word(url: str) -> str:
    """The URL as one shell word, its password (or bare userinfo) a shell variable the user sets first."""
    try:
        has_userinfo = "@" in urlsplit(url).netloc
    except ValueError:
        has_userinfo = False
    if not has_userinfo:
        return shlex.quote(url)
    scheme, _, rest = url.partition("://")
    host_at = _authority_length(rest)
    userinfo, _, after = rest[:host_at].rpartition("@")
    user, colon, _ = userinfo.partition(":")
    hidden = f"{_in_double_quotes(user)}:{URL_PASSWORD_VARIABLE}" if colon else URL_USERINFO_VARIABLE
    return f'"{_in_double_quotes(scheme)}://{hidden}@{_in_double_quotes(after + rest[host_at:])}"'


def _authority_length(rest: str) -> int:
    """Where the authority of ``rest`` (a URL after ``scheme://``) ends: at its path, query or fragment."""
    return next((index for index, char in enumerate(rest) if char in "/?#"), len(rest))


def _in_double_quotes(text: str) -> str:
    """``text`` as it must be written inside shell double quotes to mean itself."""
    return re.sub(r'([\\"$`])', r"\\\1", text)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def command_line(url: str, seed: int, options: RerunOptions) -> str:
    """The ``contract-check`` command that sends the same requests again and judges them the same way."""
    words = ["contract-check", url_word(url), "--seed", str(seed)]
    if options.spec is not None:
        words += ["--spec", shlex.quote(options.spec)]
    words += [shlex.quote(option) for option in options.profile_options]
    if options.max_examples != DEFAULT_MAX_EXAMPLES:
        words += ["--max-examples", str(options.max_examples)]
    if tuple(options.phases) != ALL_PHASES:
        words += ["--phases", shlex.quote(",".join(options.phases))]
    if options.checks:
        words += ["--checks", shlex.quote(",".join(options.checks))]
    if options.exclude_checks:
        words += ["--exclude-checks", shlex.quote(",".join(options.exclude_checks))]
    for module in options.imports:
        words += ["--import", shlex.quote(module)]
    if options.accept_valid:
        words.append("--accept-valid")
    if options.max_ttft_ms is not None:
        words += ["--max-ttft-ms", _number(options.max_ttft_ms)]
    if options.timeout != DEFAULT_TIMEOUT:
        words += ["--timeout", _number(options.timeout)]
    words += [_header_word("--header", name) for name in options.header_names]
    return " ".join(words)


def plugin_line(url: str, seed: int, options: RerunOptions) -> str:
    """The same for the pytest plugin, in its ``--contract-*`` options."""
    words = ["pytest", "--contract-url", url_word(url), "--contract-seed", str(seed)]
    if options.spec is not None:
        words += ["--contract-spec", shlex.quote(options.spec)]
    words += [shlex.quote(_PLUGIN_FLAGS.get(word, word)) for word in options.profile_options]
    if options.max_examples != DEFAULT_MAX_EXAMPLES:
        words += ["--contract-max-examples", str(options.max_examples)]
    if options.timeout != DEFAULT_TIMEOUT:
        words += ["--contract-timeout", _number(options.timeout)]
    words += [_header_word("--contract-header", name) for name in options.header_names]
    return " ".join(words)
