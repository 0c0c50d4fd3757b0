"""The admin API: list and remove conversations, and one reset for everything a run changes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from mock_helpers import BUSY_THEN_FREE as SCENARIO
from mock_helpers import MockServers, RunningMock, ask, write_conversations

URL = "/v1/chat/completions"
ADDED = {
    "name": "added/at run time",
    "conversation": [{"role": "user", "content": "Are you new?"}, {"role": "assistant", "content": "Brand new."}],
}


@pytest.fixture(scope="module")
def server(module_mock_server_factory: MockServers, tmp_path_factory: pytest.TempPathFactory) -> RunningMock:
    folder = write_conversations(tmp_path_factory.mktemp("conversations"))
    (folder / "nested").mkdir()
    (folder / "nested" / "deep.yaml").write_text(
        'conversation:\n  - {role: user, content: "Deep?"}\n  - {role: assistant, content: "Deep."}\n', encoding="utf-8"
    )
    return module_mock_server_factory(folder, no_delay=True)


@pytest.fixture()
def http(server: RunningMock) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def listing(http: httpx.Client) -> dict[str, dict[str, Any]]:
    response = http.get("/__mock/fixtures")
    assert response.status_code == 200
    return {item["name"]: item for item in response.json()["fixtures"]}


def test_the_listing_names_each_conversation_its_file_turns_and_hits(http: httpx.Client) -> None:
    before = listing(http)
    assert len(before) == 10 and http.get("/health").json()["fixtures"] == 10
    assert before["paris-weather"] == {
        "name": "paris-weather",
        "file": "paris-weather.yaml",
        "turns": 2,
        "hits": 0,
        "added": False,
    }
    assert before["deep"]["file"] == "nested/deep.yaml", "relative to the fixtures folder, with /"
    for _ in range(2):
        assert http.post(URL, json=ask("Say hello.")).status_code == 200
    http.post(URL, json=ask("No fixture says this."))
    after = listing(http)
    assert after["hello"]["hits"] == 2 and sum(item["hits"] for item in after.values()) == 2


def test_added_conversations_are_listed_replaced_by_name_and_removed(http: httpx.Client, validator: Any) -> None:
    added = http.post("/__mock/fixtures", json=ADDED).json()
    assert added == {"name": "added/at run time", "replaced": False, "fixtures": 11}
    assert listing(http)["added/at run time"] == {
        "name": "added/at run time",
        "file": None,
        "turns": 1,
        "hits": 0,
        "added": True,
    }
    assert (
        http.post(URL, json=ask("Are you new?", stream=False)).json()["choices"][0]["message"]["content"]
        == "Brand new."
    )
    changed = {**ADDED, "conversation": [ADDED["conversation"][0], {"role": "assistant", "content": "Newer."}]}
    assert http.post("/__mock/fixtures", json=changed).json()["replaced"] is True
    assert listing(http)["added/at run time"]["hits"] == 0, "a replaced conversation starts counting again"
    assert http.post(URL, json=ask("Are you new?", stream=False)).json()["choices"][0]["message"]["content"] == "Newer."
    removed = http.delete("/__mock/fixtures/added%2Fat%20run%20time")
    assert removed.status_code == 200 and removed.json() == {"removed": "added/at run time", "fixtures": 10}
    gone = http.post(URL, json=ask("Are you new?"))
    assert gone.status_code == 400 and gone.json()["error"]["code"] == "no_fixture_match"
    missing = http.delete("/__mock/fixtures/added%2Fat%20run%20time")
    assert missing.status_code == 404 and validator.validate_response(404, missing.json()) == []
    assert missing.json()["error"] | {"message": ""} == {
        "message": "",
        "type": "invalid_request_error",
        "param": "name",
        "code": "fixture_not_found",
    }


def test_a_file_conversation_can_be_removed_or_overridden_until_the_reset(http: httpx.Client) -> None:
    assert http.delete("/__mock/fixtures/hello").status_code == 200
    assert http.post(URL, json=ask("Say hello.")).json()["error"]["code"] == "no_fixture_match"
    assert "hello" not in listing(http)
    override = {
        "name": "counting",
        "conversation": [
            {"role": "user", "content": "Count to ten in words."},
            {"role": "assistant", "content": "Ten."},
        ],
    }
    assert http.post("/__mock/fixtures", json=override).json()["replaced"] is True
    assert (
        http.post(URL, json=ask("Count to ten in words.", stream=False)).json()["choices"][0]["message"]["content"]
        == "Ten."
    )
    assert http.post("/__mock/reset").status_code == 200
    assert http.post(URL, json=ask("Say hello.")).status_code == 200
    assert (
        http.post(URL, json=ask("Count to ten in words.", stream=False))
        .json()["choices"][0]["message"]["content"]
        .startswith("one two three")
    )
    assert listing(http)["counting"]["added"] is False


def test_reset_clears_journal_scenarios_header_counts_and_added_conversations(http: httpx.Client) -> None:
    http.post("/__mock/fixtures", json=SCENARIO)
    once = {"X-Mock-Fault": "http_error; status=500; times=1"}
    first = [
        http.post(URL, json=ask("Busy?")).status_code,
        http.post(URL, json=ask("Busy?")).status_code,
        http.post(URL, json=ask("Say hello."), headers=once).status_code,
        http.post(URL, json=ask("Say hello."), headers=once).status_code,
    ]
    assert first == [503, 200, 500, 200]
    assert len(http.get("/__mock/requests").json()["requests"]) == 4
    reset = http.post("/__mock/reset")
    assert reset.status_code == 200 and reset.json() == {"reset": True, "fixtures": 10}
    assert http.get("/__mock/requests").json()["requests"] == []
    assert "busy-then-free" not in listing(http)
    http.post("/__mock/fixtures", json=SCENARIO)
    again = [
        http.post(URL, json=ask("Busy?")).status_code,
        http.post(URL, json=ask("Say hello."), headers=once).status_code,
    ]
    assert again == [503, 500], "the scenario and the header count start over"


def test_after_a_reset_the_same_requests_get_the_same_bytes(http: httpx.Client) -> None:
    def replies() -> list[str]:
        return [http.post(URL, json=ask("Say hello.", stream=False)).json()["id"] for _ in range(3)]

    first = replies()
    assert len(set(first)) == 3, "each request has its own seeded id"
    http.post("/__mock/reset")
    assert replies() == first, "the request counter that seeds each reply starts over"


def test_admin_routes_refuse_other_methods_with_the_error_body(http: httpx.Client) -> None:
    for method, path, allowed in [
        ("GET", "/__mock/reset", "POST"),
        ("PUT", "/__mock/fixtures", "GET"),
        ("GET", "/__mock/fixtures/hello", "DELETE"),
    ]:
        response = http.request(method, path)
        assert response.status_code == 405, (method, path)
        assert allowed in response.headers["allow"]
        assert response.json()["error"]["code"] == "method_not_allowed"
        assert response.json()["error"]["type"] == "invalid_request_error"


def test_the_journal_keeps_each_streams_planned_timings(http: httpx.Client) -> None:
    """Known when the reply is decided, so recorded with it: the dashboard shows them beside each request."""
    with http.stream(
        "POST",
        "/v1/chat/completions",
        json=ask("Say hello.", stream=True),
        headers={"X-Mock-Pacing": "ttft_ms=40, tokens_per_second=200, jitter=0"},
    ) as response:
        response.read()
    http.post("/v1/chat/completions", json=ask("Say hello.", stream=False))
    streamed, plain = http.get("/__mock/requests").json()["requests"][-2:]
    tokens = sum(1 for line in response.text.splitlines() if '"content":"' in line and '"role"' not in line)
    assert streamed["timings"] == {"ttft_ms": 40.0, "total_ms": round(40 + (tokens - 1) * 5, 1)}
    assert plain["timings"] is None, "a JSON reply has no stream to time"
