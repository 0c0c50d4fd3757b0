"""A hint, for the surprise every OpenAI-style client meets first with the seed contract.

The seed contract says ``stream`` defaults to true. OpenAI's SDKs and the libraries built on them
(litellm, LangChain, the AI SDK, instructor...) assume the opposite: a request without ``stream``
expects one JSON body, so it gets a stream it does not parse. Under a profile whose default is true,
the mock keeps it, marks each such stream with a response header saying why, and logs it once per
client (by ``User-Agent``), naming ``--profile openai``.
"""

from __future__ import annotations

import logging
from typing import Any

from contract.core.dialect import Dialect

logger = logging.getLogger("mockserver")
STREAM_DEFAULT_HEADER = "X-Mock-Stream-Default"
STREAM_DEFAULT_HINT = "true; this contract streams when 'stream' is absent (mockserver --profile openai answers JSON)"
MAX_WARNED_AGENTS = 64  # a bounded memory of who was told: the log says it once per client, not per request


def warn_once_if_stream_omitted(app_state: Any, agent: str, body: dict[str, Any], dialect: Dialect) -> str | None:
    """The header value to send when ``body`` has no ``stream`` and the dialect streams by default, else None.

    The first such request from each client (its ``User-Agent`` product, whatever the client) is logged.
    """
    if "stream" in body or not dialect.stream_default:
        return None
    warned = getattr(app_state, "sdk_stream_warned", None)  # the clients told so far; False or absent: none
    if not isinstance(warned, set):
        warned = app_state.sdk_stream_warned = set()
    client = agent.split()[0][:80] if agent.strip() else "a client with no User-Agent"
    if client not in warned and len(warned) < MAX_WARNED_AGENTS:
        warned.add(client)
        logger.warning(
            "a request from %s has no 'stream'; profile %s streams by default, so it gets a stream, which "
            "OpenAI-style clients do not parse as one reply: run mockserver --profile openai, or pass "
            "stream=True to iterate the chunks, or stream=False for one JSON reply",
            client,
            dialect.label,
        )
    return STREAM_DEFAULT_HINT
