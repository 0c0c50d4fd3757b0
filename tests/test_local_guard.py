"""Other web origins and hosts cannot drive the mock, its admin API or the recorder (mockserver.local_guard).

The requests are the ones a browser sends: a ``no-cors`` fetch (``Content-Type: text/plain`` and the
page's ``Origin``), a plain ``<form method=POST>`` (``application/x-www-form-urlencoded``), and a DNS
rebinding page's (its own domain in ``Host``). The last test sends them from a page in headless
Chromium served on another loopback port.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mock_helpers import MockServers, RunningMock, write_conversations
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from mockserver.local_guard import AllowedHosts
from mockserver.recording.recorder import create_recorder_app
from mockserver.recording.upstream import Upstream
from mockserver.serve import ServerThread

HELLO = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hello."}], "stream": False}
PLANTED = json.dumps(
    {
        "name": "planted",
        "conversation": [{"role": "user", "content": "Say hello."}, {"role": "assistant", "content": "pwned"}],
    }
)
FOREIGN = "http://attacker.example"


@pytest.fixture()
def mock(mock_server_factory: MockServers, tmp_path: Path) -> RunningMock:
    return mock_server_factory(write_conversations(tmp_path), no_delay=True)


def _hello_text(http: httpx.Client, url: str) -> str:
    return str(http.post(f"{url}/v1/chat/completions", json=HELLO).json()["choices"][0]["message"]["content"])


def _journal(http: httpx.Client, url: str) -> list[Any]:
    return list(http.get(f"{url}/__mock/requests").json()["requests"])


def test_a_no_cors_fetch_from_another_origin_cannot_plant_a_conversation(mock: RunningMock) -> None:
    with httpx.Client(timeout=10) as http:
        before = _hello_text(http, mock.url)
        for origin in (FOREIGN, "http://127.0.0.1:1", "null"):  # another site, another local port, a sandboxed frame
            refused = http.post(
                f"{mock.url}/__mock/fixtures",
                content=PLANTED,
                headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": origin},
            )
            assert refused.status_code == 403, refused.text
            error = refused.json()["error"]
            assert error["code"] == "origin_not_allowed" and origin in error["message"]
        assert _hello_text(http, mock.url) == before != "pwned"
        assert "planted" not in json.dumps(http.get(f"{mock.url}/__mock/fixtures").json())


def test_admin_writes_take_json_only_so_a_page_needs_a_preflight(mock: RunningMock) -> None:
    """Without an Origin (an old browser, a proxy that strips it) a form's content type is still refused."""
    with httpx.Client(timeout=10) as http:
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
            refused = http.post(f"{mock.url}/__mock/fixtures", content=PLANTED, headers={"Content-Type": content_type})
            assert refused.status_code == 415 and refused.json()["error"]["code"] == "unsupported_media_type"
        added = http.post(f"{mock.url}/__mock/fixtures", content=PLANTED, headers={"Content-Type": "application/json"})
        assert added.status_code in (200, 201), added.text
        assert _hello_text(http, mock.url) == "pwned", "the same request with its JSON type is served"


def test_a_form_posted_from_another_origin_cannot_empty_the_journal(mock: RunningMock) -> None:
    with httpx.Client(timeout=10) as http:
        _hello_text(http, mock.url)
        form = {"Content-Type": "application/x-www-form-urlencoded", "Origin": FOREIGN}
        assert http.post(f"{mock.url}/__mock/reset", content=b"a=1", headers=form).status_code == 403
        assert http.request("DELETE", f"{mock.url}/__mock/requests", headers={"Origin": FOREIGN}).status_code == 403
        assert len(_journal(http, mock.url)) == 1
        # The server's own pages (the dashboard) and a body-less `curl -X POST` still reset it.
        own = http.post(f"{mock.url}/__mock/reset", headers={"Origin": mock.url})
        assert own.status_code == 200, own.text
        assert http.post(f"{mock.url}/__mock/reset").status_code == 200
        assert _journal(http, mock.url) == []


def test_a_rebinding_host_is_refused_and_an_allowed_one_served(
    mock_server_factory: MockServers, tmp_path: Path
) -> None:
    folder = write_conversations(tmp_path)
    strict = mock_server_factory(folder, no_delay=True)
    open_to_one = mock_server_factory(folder, no_delay=True, allowed_hosts=("mock.internal",))
    with httpx.Client(timeout=10) as http:
        rebound = {"Host": "rebind.attacker.example"}
        for method, path in (("GET", "/__mock/requests"), ("GET", "/v1/models"), ("POST", "/v1/chat/completions")):
            answer = http.request(method, f"{strict.url}{path}", headers=rebound, json=HELLO)
            assert answer.status_code == (400 if "chat" in path else 403), path  # the chat operation's documented 400
            assert answer.json()["error"]["code"] == "host_not_allowed"
            assert "--allowed-host" in answer.json()["error"]["message"]
        port = strict.url.rsplit(":", 1)[1]
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", f"app.localhost:{port}"):
            assert http.get(f"{strict.url}/health", headers={"Host": host}).status_code == 200, host
        named = http.get(f"{open_to_one.url}/__mock/requests", headers={"Host": "mock.internal:8000"})
        assert named.status_code == 200
        assert http.get(f"{open_to_one.url}/health", headers=rebound).status_code == 403
        assert http.get(f"{strict.url}/health").status_code == 200, "the server keeps serving"


def test_allowed_host_names() -> None:
    allowed = AllowedHosts(("example.test", ".corp.test"))
    assert allowed.allows("example.test") and allowed.allows("EXAMPLE.test.") and allowed.allows("a.b.corp.test")
    assert allowed.allows("corp.test") and allowed.allows("10.0.0.7") and allowed.allows("::1")
    assert not allowed.allows("example.test.attacker.example") and not allowed.allows("xcorp.test")
    assert AllowedHosts(("*",)).allows("anything.example") and not AllowedHosts().allows("anything.example")


@pytest.fixture()
def upstream_and_recorder(
    mock_server_factory: MockServers, tmp_path: Path
) -> Iterator[tuple[RunningMock, ServerThread, Path]]:
    folder = tmp_path / "recorded"
    upstream = mock_server_factory(write_conversations(tmp_path / "up"), no_delay=True)
    with ServerThread(
        create_recorder_app(Upstream.parse(upstream.url, [("Authorization", "Bearer sk-users-own-key")]), folder)
    ) as recorder:
        yield upstream, recorder, folder


def test_the_recorder_sends_nothing_upstream_for_another_origin(
    upstream_and_recorder: tuple[RunningMock, ServerThread, Path],
) -> None:
    upstream, recorder, folder = upstream_and_recorder
    with httpx.Client(timeout=10) as http:
        no_cors = {"Content-Type": "text/plain;charset=UTF-8", "Origin": FOREIGN}
        refused = http.post(f"{recorder.url}/v1/chat/completions", content=json.dumps(HELLO), headers=no_cors)
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "origin_not_allowed"
        rebound = http.post(f"{recorder.url}/v1/chat/completions", json=HELLO, headers={"Host": "rebind.example"})
        assert rebound.status_code == 400 and rebound.json()["error"]["code"] == "host_not_allowed"
        assert _journal(http, upstream.url) == [], "nothing went upstream with the user's key"
        assert not folder.exists() or not any(folder.glob("*.yaml")), "nothing was recorded"
        served = http.post(f"{recorder.url}/v1/chat/completions", json=HELLO)
        assert served.status_code == 200 and len(_journal(http, upstream.url)) == 1


@pytest.mark.parametrize(
    "command", [["--allowed-host", "a/b"], ["record", "--upstream", "http://127.0.0.1:9", "--allowed-host", ""]]
)
def test_a_bad_allowed_host_is_one_line_and_exit_2(command: list[str], tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mockserver.cli", *command], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--allowed-host" in done.stderr.strip().splitlines()[-1]


# -- in a real browser: a page on another loopback port ------------------------------------------

ATTACK_PAGE = """<!doctype html><html><body>
<form id="reset" method="POST" action="{mock}/__mock/reset" target="sink"><input name="a" value="1"></form>
<iframe name="sink"></iframe>
<script>
window.attack = async () => {{
  await fetch("{mock}/__mock/fixtures", {{method: "POST", mode: "no-cors", body: {planted}}});
  await fetch("{recorder}/v1/chat/completions", {{method: "POST", mode: "no-cors", body: {hello}}});
  return true;
}};
</script></body></html>"""


def _attack_site(mock: str, recorder: str) -> Starlette:
    page = ATTACK_PAGE.format(
        mock=mock, recorder=recorder, planted=json.dumps(PLANTED), hello=json.dumps(json.dumps(HELLO))
    )

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/", index), Route("/health", health)])


def test_a_page_on_another_loopback_port_cannot_drive_the_mock_or_the_recorder(
    mock_server_factory: MockServers, tmp_path: Path, upstream_and_recorder: tuple[RunningMock, ServerThread, Path]
) -> None:
    playwright_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("the browser test needs Debian's chromium (apt-get install chromium)")
    upstream, recorder, folder = upstream_and_recorder
    with (
        mock_server_factory(write_conversations(tmp_path / "mock"), no_delay=True) as mock,
        ServerThread(_attack_site(mock.url, recorder.url)) as site,
        httpx.Client(timeout=10) as http,
        playwright_api.sync_playwright() as driver,
    ):
        before = _hello_text(http, mock.url)
        browser = driver.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(site.url + "/")
            assert page.evaluate("window.attack()") is True
            with page.expect_event("framenavigated"):
                page.evaluate("document.getElementById('reset').submit()")
        finally:
            browser.close()
        assert _hello_text(http, mock.url) == before != "pwned"
        assert len(_journal(http, mock.url)) == 2, "the form did not empty the journal"
        assert _journal(http, upstream.url) == [] and not any(folder.glob("*.yaml"))


def test_forwarded_headers_do_not_change_who_the_client_is() -> None:
    async def who(request: Request) -> JSONResponse:
        client = request.scope["client"]
        return JSONResponse({"host": client[0] if client else None, "scheme": request.url.scheme})

    forged = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    with ServerThread(Starlette(routes=[Route("/who", who)])) as server:
        seen = httpx.get(f"{server.url}/who", headers=forged, timeout=10).json()
    assert seen == {"host": "127.0.0.1", "scheme": "http"}, "a client on this machine cannot claim to be elsewhere"
