"""A warning, once, for the surprise every OpenAI SDK user meets first with this contract.

The contract says ``stream`` defaults to true. The official SDKs assume the
opposite: ``client.chat.completions.create(...)`` without ``stream`` expects one
JSON body, so it gets a stream it does not parse (the Python SDK returns the raw
SSE text as a ``str``). The mock keeps the contract's default and says so in its
log the first time such a request arrives, naming the fix.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request

logger = logging.getLogger("mockserver")
_SDK_AGENTS = ("openai/python", "openai/js", "asyncopenai/python")


def warn_once_if_sdk_omits_stream(request: Request, agent: str, body: dict[str, Any]) -> None:
    """Log one warning per server when an OpenAI SDK request (its ``User-Agent`` is ``agent``) leaves ``stream`` out."""
    if "stream" in body or not agent.lower().startswith(_SDK_AGENTS):
        return
    state = request.app.state
    if getattr(state, "sdk_stream_warned", False):
        return
    state.sdk_stream_warned = True
    logger.warning(
        "a request from %s has no 'stream'; this contract's default is true, so it gets a stream, "
        "which the SDK does not parse as a completion: pass stream=True to iterate the chunks, or "
        "stream=False for one JSON reply",
        agent.split()[0],
    )
