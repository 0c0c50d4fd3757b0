"""``POST /v1/embeddings``: deterministic unit vectors, pinned vectors from fixtures, OpenAI's refusals.

Driven by the official ``openai`` SDK (which asks for base64 by default and decodes it), httpx for the bad
inputs, litellm and the Node AI SDK's ``embed``/``embedMany``; the error bodies are checked with the contract's
validator. Bad inputs handled here, each named in its test id: an empty string, an empty list, an empty string
or an empty list inside a batch, a batch that mixes kinds, a batch of 2049, token ids that are negative, too
large, true or fractional, an input that is an object or null or absent, a model absent or not a string,
``encoding_format`` other than float/base64, ``dimensions`` of 0, 8193, a string, true or 1.5, a ``user`` that
is not a string, a body that is not JSON, not an object, or not sent as application/json, and a pinned vector
the request's ``dimensions`` contradicts; and in fixture files: every malformed ``embeddings`` entry.
"""

from __future__ import annotations

import base64
import json
import math
import shutil
import struct
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mock_helpers import MockServers, RunningMock
from openai import BadRequestError, OpenAI

from contract.core.redaction import REDACTED
from contract.core.validate import ContractValidator
from mockserver.app import create_app
from mockserver.embedding_request import MAX_BATCH, read_embedding_request
from mockserver.embeddings import MAX_DIMENSIONS, base64_floats, hashed_vector
from mockserver.fixtures import FixtureError, fixture_from_dict, load_fixture_file
from mockserver.request_reading import ApiError
from mockserver.serve import ServerThread
from mockserver.settings import Settings
from mockserver.shared_store import create_state_file
from mockserver.tokenize import count_tokens

CLIENTS = Path(__file__).resolve().parent / "clients"
SMALL, LARGE = "text-embedding-3-small", "text-embedding-3-large"
PINS = """\
name: search-pins
embeddings:
  - input: "The cat sat on the mat."
    vector: [0.6, 0.8, 0.0]
  - input: "The cat sat on the mat."
    model: text-embedding-3-large
    vector: [0.0, 1.0, 0.0]
  - {input: "a dog", vector: [3, 4, 12]}
"""
HELLO = """\
conversation:
  - {role: user, content: "Say hello."}
  - {role: assistant, content: "Hello!"}
"""


@pytest.fixture(scope="module")
def server(module_mock_server_factory: MockServers, tmp_path_factory: pytest.TempPathFactory) -> RunningMock:
    folder = tmp_path_factory.mktemp("embedding-fixtures")
    (folder / "search").mkdir()
    (folder / "search" / "pins.yaml").write_text(PINS, encoding="utf-8")
    (folder / "hello.yaml").write_text(HELLO, encoding="utf-8")
    return module_mock_server_factory(folder, no_delay=True, fallback=False)


@pytest.fixture()
def sdk(server: RunningMock) -> Iterator[OpenAI]:
    with OpenAI(base_url=server.url + "/v1", api_key="sk-test-secret", max_retries=0) as client:
        yield client


@pytest.fixture()
def http(server: RunningMock) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def norm(vector: list[float]) -> float:
    return math.sqrt(math.fsum(x * x for x in vector))


def cosine(a: list[float], b: list[float]) -> float:
    return math.fsum(x * y for x, y in zip(a, b, strict=True)) / (norm(a) * norm(b))


# -- the official SDK --------------------------------------------------------------------------------------


def test_the_sdks_default_base64_decodes_to_the_float_vector(sdk: OpenAI, server: RunningMock) -> None:
    """The SDK asks for base64 when the caller does not say; ``.embedding`` comes back as floats either way."""
    by_default = sdk.embeddings.create(model=SMALL, input="hello")
    as_floats = sdk.embeddings.create(model=SMALL, input="hello", encoding_format="float")
    sent = [entry["body"]["encoding_format"] for entry in server.requests]
    assert sent == ["base64", "float"]
    vector = by_default.data[0].embedding
    assert all(type(x) is float for x in vector) and len(vector) == 1536
    assert abs(norm(vector) - 1) < 1e-6
    assert max(abs(a - b) for a, b in zip(vector, as_floats.data[0].embedding, strict=True)) < 1e-7  # float32
    assert as_floats.data[0].embedding == hashed_vector(SMALL, "hello", 1536)
    assert (by_default.object, by_default.model, by_default.data[0].index) == ("list", SMALL, 0)
    assert by_default.usage.prompt_tokens == by_default.usage.total_tokens == count_tokens("hello") == 1


def test_the_same_input_gives_the_same_vector_and_others_differ(sdk: OpenAI) -> None:
    first = sdk.embeddings.create(model=SMALL, input="hello", encoding_format="float").data[0].embedding
    again = sdk.embeddings.create(model=SMALL, input="hello", encoding_format="float").data[0].embedding
    other = sdk.embeddings.create(model=SMALL, input="hello!", encoding_format="float").data[0].embedding
    other_model = sdk.embeddings.create(model="my-embedder", input="hello", encoding_format="float").data[0].embedding
    assert first == again
    assert abs(cosine(first, other)) < 0.2 and abs(cosine(first, other_model)) < 0.2  # unrelated directions


def test_vectors_do_not_change_between_releases() -> None:
    """Stored vectors (a test's saved index) stay valid: the hash, the coordinates and their order are fixed."""
    assert [round(x, 12) for x in hashed_vector(SMALL, "hello", 1536)[:3]] == [
        0.00107441293,
        0.019919790103,
        -0.030871899194,
    ]
    assert hashed_vector("m", (1, 2, 3), 4) == pytest.approx(
        [-0.2720475817268315, 0.6303351405570349, -0.6661684570105432, -0.2913542701587162], abs=1e-15
    )


@pytest.mark.parametrize(("model", "length"), [(SMALL, 1536), (LARGE, 3072), ("text-embedding-ada-002", 1536)])
def test_each_model_has_its_default_length(sdk: OpenAI, model: str, length: int) -> None:
    assert len(sdk.embeddings.create(model=model, input="length").data[0].embedding) == length


def test_a_batch_answers_each_input_in_order(sdk: OpenAI) -> None:
    texts = ["first text", "second text", "third, and longer, text"]
    batch = sdk.embeddings.create(model=SMALL, input=texts)
    assert [item.index for item in batch.data] == [0, 1, 2]
    for text, item in zip(texts, batch.data, strict=True):
        single = sdk.embeddings.create(model=SMALL, input=text).data[0].embedding
        assert item.embedding == single
    assert batch.usage.prompt_tokens == sum(count_tokens(text) for text in texts)


def test_dimensions_gives_the_normalised_head_of_the_full_vector(sdk: OpenAI) -> None:
    """As OpenAI's shortened embeddings relate to the full ones."""
    full = sdk.embeddings.create(model=LARGE, input="shorten me", encoding_format="float").data[0].embedding
    short = sdk.embeddings.create(model=LARGE, input="shorten me", dimensions=256, encoding_format="float")
    vector = short.data[0].embedding
    assert len(vector) == 256 and abs(norm(vector) - 1) < 1e-12
    head = full[:256]
    assert vector == pytest.approx([x / norm(head) for x in head], abs=1e-12)
    based = sdk.embeddings.create(model=LARGE, input="shorten me", dimensions=256).data[0].embedding
    assert based == pytest.approx(vector, abs=1e-7)


def test_token_ids_and_lists_of_token_ids_are_inputs(sdk: OpenAI) -> None:
    one = sdk.embeddings.create(model=SMALL, input=[9906, 1917])
    assert len(one.data) == 1 and one.usage.prompt_tokens == 2
    many = sdk.embeddings.create(model=SMALL, input=[[9906, 1917], [9906], [1, 2, 3]])
    assert [len(item.embedding) for item in many.data] == [1536] * 3 and many.usage.prompt_tokens == 6
    assert many.data[0].embedding == one.data[0].embedding
    as_text = sdk.embeddings.create(model=SMALL, input="9906").data[0].embedding
    assert as_text != sdk.embeddings.create(model=SMALL, input=[9906]).data[0].embedding


def test_a_full_batch_of_2048_is_served(sdk: OpenAI) -> None:
    batch = sdk.embeddings.create(model=SMALL, input=[f"item {i}" for i in range(MAX_BATCH)], dimensions=8)
    assert len(batch.data) == MAX_BATCH and batch.data[-1].index == MAX_BATCH - 1


def test_both_paths_answer(http: httpx.Client) -> None:
    bodies = [http.post(path, json={"model": SMALL, "input": "x"}).json() for path in ("/embeddings", "/v1/embeddings")]
    assert bodies[0] == bodies[1] and bodies[0]["data"][0]["object"] == "embedding"


# -- pinned vectors ----------------------------------------------------------------------------------------


def test_a_pinned_vector_is_returned_as_written(sdk: OpenAI, http: httpx.Client) -> None:
    raw = sdk.embeddings.with_raw_response.create(model=SMALL, input="The cat sat on the mat.", encoding_format="float")
    assert raw.parse().data[0].embedding == [0.6, 0.8, 0.0]
    assert raw.headers["x-mock-fixture"] == "search-pins (search/pins.yaml:3)"
    decoded = sdk.embeddings.create(model=SMALL, input="The cat sat on the mat.").data[0].embedding
    assert decoded == pytest.approx([0.6, 0.8, 0.0], abs=1e-7)
    unnormalised = http.post("/v1/embeddings", json={"model": SMALL, "input": "a dog"}).json()
    assert unnormalised["data"][0]["embedding"] == [3.0, 4.0, 12.0]


def test_a_pin_for_the_model_wins_over_one_for_any_model(sdk: OpenAI) -> None:
    vector = sdk.embeddings.create(model=LARGE, input="The cat sat on the mat.", encoding_format="float")
    assert vector.data[0].embedding == [0.0, 1.0, 0.0]


def test_a_batch_mixes_pinned_and_hashed_vectors(sdk: OpenAI, server: RunningMock) -> None:
    batch = sdk.embeddings.create(model=SMALL, input=["a dog", "not pinned", "a dog"], dimensions=3)
    assert batch.data[0].embedding == batch.data[2].embedding == pytest.approx([3, 4, 12])
    assert batch.data[1].embedding == pytest.approx(hashed_vector(SMALL, "not pinned", 3), abs=1e-7)
    assert server.requests[-1]["fixture"] == "search-pins"


def test_dimensions_that_contradict_a_pin_are_refused(sdk: OpenAI) -> None:
    with pytest.raises(BadRequestError) as caught:
        sdk.embeddings.create(model=SMALL, input=["not pinned", "a dog"], dimensions=256)
    assert (caught.value.code, caught.value.param) == ("fixture_mismatch", "dimensions")
    assert "search-pins (search/pins.yaml:8) pins a vector of 3 numbers to 'a dog'" in caught.value.message


def test_a_conversation_posted_at_run_time_can_pin_vectors(http: httpx.Client, server: RunningMock) -> None:
    posted = {"name": "posted-pins", "embeddings": [{"input": "posted", "vector": [1, 0]}]}
    assert http.post("/__mock/fixtures", json=posted).status_code == 200
    assert http.post("/v1/embeddings", json={"model": SMALL, "input": "posted"}).json()["data"][0]["embedding"] == [
        1.0,
        0.0,
    ]
    server.reset()
    after = http.post("/v1/embeddings", json={"model": SMALL, "input": "posted"}).json()["data"][0]["embedding"]
    assert len(after) == 1536
    bad = http.post("/__mock/fixtures", json={"embeddings": [{"input": "x", "vector": [1, "2"]}]})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_fixture"
    assert "embeddings[0].vector[1]" in bad.json()["error"]["message"]


def test_a_pin_posted_to_one_worker_answers_in_another(tmp_path: Path) -> None:
    """With ``--workers``, the pins of a posted conversation travel through the shared state file like its turns."""
    state_file = create_state_file(tmp_path / "state.sqlite3")
    apps = [create_app(None, Settings(no_delay=True), state_file=state_file) for _ in range(2)]
    threads = [ServerThread(app, log_level="warning").start() for app in apps]
    try:
        posted = {"name": "shared-pins", "embeddings": [{"input": "shared", "vector": [0.0, 1.0]}]}
        assert httpx.post(f"{threads[0].url}/__mock/fixtures", json=posted, timeout=10).status_code == 200
        answer = httpx.post(f"{threads[1].url}/v1/embeddings", json={"model": SMALL, "input": "shared"}, timeout=10)
        assert answer.json()["data"][0]["embedding"] == [0.0, 1.0]
    finally:
        for thread in threads:
            thread.stop()


# -- the journal -----------------------------------------------------------------------------------------


def test_each_request_is_journaled_with_its_body_and_no_credential(sdk: OpenAI, server: RunningMock) -> None:
    sdk.embeddings.create(model=SMALL, input=["journal me"], dimensions=4)
    with pytest.raises(BadRequestError):
        sdk.embeddings.create(model=SMALL, input="")
    ok, refused = server.requests
    assert (ok["method"], ok["path"], ok["status"], ok["fixture"]) == ("POST", "/v1/embeddings", 200, "hashed")
    assert ok["body"] == {"model": SMALL, "input": ["journal me"], "dimensions": 4, "encoding_format": "base64"}
    assert ok["headers"]["authorization"] == REDACTED
    assert "sk-test-secret" not in json.dumps(server.requests)
    assert refused["status"] == 400 and refused["error"]["code"] == "invalid_request"


# -- bad inputs ---------------------------------------------------------------------------------------------

BAD_BODIES: dict[str, tuple[Any, str, str]] = {  # id -> (body, param, a piece of the message)
    "empty string": ({"model": SMALL, "input": ""}, "input", "must not be an empty string"),
    "empty list": ({"model": SMALL, "input": []}, "input", "must not be an empty list"),
    "empty string in a batch": ({"model": SMALL, "input": ["a", ""]}, "input", "input[1] must not be an empty"),
    "empty token list in a batch": ({"model": SMALL, "input": [[1], []]}, "input", "input[1] must not be an empty"),
    "batch mixes strings and numbers": ({"model": SMALL, "input": ["a", 1]}, "input", "input[1] must be a string"),
    "batch mixes lists and strings": ({"model": SMALL, "input": [[1], "a"]}, "input", "input[1] must be a list"),
    "batch of 2049": ({"model": SMALL, "input": ["a"] * 2049}, "input", "at most 2048"),
    "negative token id": ({"model": SMALL, "input": [1, -1]}, "input", "input[1] must be a token id"),
    "token id too large": ({"model": SMALL, "input": [[2**31]]}, "input", "input[0][0] must be a token id"),
    "token id true": ({"model": SMALL, "input": [1, True]}, "input", "input[1] must be a token id"),
    "token id 1.5": ({"model": SMALL, "input": [[1.5]]}, "input", "input[0][0] must be a token id"),
    "input an object": ({"model": SMALL, "input": {"text": "a"}}, "input", "got an object"),
    "input null": ({"model": SMALL, "input": None}, "input", "got a null"),
    "input a list of objects": ({"model": SMALL, "input": [{}]}, "input", "input[0] must be a string"),
    "input absent": ({"model": SMALL}, "input", "you must give an input"),
    "model absent": ({"input": "a"}, "model", "you must give a model"),
    "model a number": ({"model": 3, "input": "a"}, "model", "model must be a model name"),
    "model empty": ({"model": "", "input": "a"}, "model", "model must be a model name"),
    "encoding_format hex": ({"model": SMALL, "input": "a", "encoding_format": "hex"}, "encoding_format", "base64"),
    "dimensions 0": ({"model": SMALL, "input": "a", "dimensions": 0}, "dimensions", "from 1 to 8192"),
    "dimensions 8193": ({"model": SMALL, "input": "a", "dimensions": 8193}, "dimensions", "got 8193"),
    "dimensions a string": ({"model": SMALL, "input": "a", "dimensions": "256"}, "dimensions", 'got "256"'),
    "dimensions true": ({"model": SMALL, "input": "a", "dimensions": True}, "dimensions", "got true"),
    "dimensions 1.5": ({"model": SMALL, "input": "a", "dimensions": 1.5}, "dimensions", "got 1.5"),
    "user a number": ({"model": SMALL, "input": "a", "user": 7}, "user", "user must be a string"),
    "body an array": (["a"], "", "must be a JSON object"),
    "body a string": ("hello", "", "must be a JSON object"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES), ids=list(BAD_BODIES))
def test_each_bad_input_is_a_400_naming_its_field(http: httpx.Client, validator: ContractValidator, case: str) -> None:
    body, param, piece = BAD_BODIES[case]
    response = http.post("/v1/embeddings", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_request", param or None)
    assert piece in error["message"], error["message"]
    assert validator.validate_response(400, response.json()) == []


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        pytest.param(b'{"model": "m", "input": ', {"content-type": "application/json"}, id="truncated JSON"),
        pytest.param(b'{"model": "m", "input": NaN}', {"content-type": "application/json"}, id="NaN"),
        pytest.param(b'{"model": "m", "input": "a"}', {"content-type": "text/plain"}, id="text/plain"),
        pytest.param(b'{"model": "m", "input": "a"}', {}, id="no content type"),
        pytest.param(b"[1, 2]", {"content-type": "application/json"}, id="not an object"),
    ],
)
def test_bad_bodies_get_the_chat_routes_error(http: httpx.Client, content: bytes, headers: dict[str, str]) -> None:
    embedding = http.post("/v1/embeddings", content=content, headers=headers)
    chat = http.post("/v1/chat/completions", content=content, headers=headers)
    assert embedding.status_code == chat.status_code == 400
    mine, theirs = embedding.json()["error"], chat.json()["error"]
    assert mine["code"] == theirs["code"] and mine["type"] == theirs["type"]
    if theirs["code"] != "invalid_request":  # the contract words its own refusal of a non-object
        assert mine["message"] == theirs["message"]


def test_get_is_the_wrong_method(http: httpx.Client) -> None:
    response = http.get("/v1/embeddings")
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_a_body_over_max_body_is_refused(mock_server_factory: MockServers) -> None:
    server = mock_server_factory(None, no_delay=True, max_body=1000)
    response = httpx.post(f"{server.url}/v1/embeddings", json={"model": SMALL, "input": "x" * 2000}, timeout=10)
    assert response.status_code == 400 and response.json()["error"]["code"] == "body_too_large"


def test_a_foreign_host_is_refused(http: httpx.Client) -> None:
    response = http.post("/v1/embeddings", json={"model": SMALL, "input": "a"}, headers={"host": "evil.example"})
    assert response.status_code == 403, response.text


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2**32) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    body=st.fixed_dictionaries(
        {},
        optional={
            "model": JSON_VALUES | st.just(SMALL),
            "input": JSON_VALUES,
            "dimensions": JSON_VALUES | st.integers(-2, MAX_DIMENSIONS + 2),
            "encoding_format": JSON_VALUES | st.sampled_from(["float", "base64"]),
            "user": JSON_VALUES,
        },
    )
    | JSON_VALUES
)
def test_any_json_body_is_read_or_refused_with_a_400(body: Any) -> None:
    try:
        asked = read_embedding_request(body)
    except ApiError as exc:
        assert exc.status == 400 and exc.code == "invalid_request" and exc.message
    else:
        assert asked.inputs and 1 <= asked.length <= MAX_DIMENSIONS


@settings(max_examples=100, deadline=None)
@given(text=st.text(min_size=1, max_size=40), dimensions=st.integers(1, 300))
def test_every_hashed_vector_is_a_unit_vector(text: str, dimensions: int) -> None:
    vector = hashed_vector(SMALL, text, dimensions)
    assert len(vector) == dimensions and abs(norm(vector) - 1) < 1e-9
    decoded = struct.unpack(f"<{dimensions}f", base64.b64decode(base64_floats(vector)))
    assert list(decoded) == pytest.approx(vector, abs=1e-7)  # float32 holds every coordinate


# -- the fixture format -------------------------------------------------------------------------------------

BAD_PINS: dict[str, tuple[str, int, str]] = {  # id -> (file text, line, a piece of the error)
    "embeddings not a list": ("embeddings: {input: a}\n", 1, "embeddings must be a non-empty list"),
    "embeddings empty": ("embeddings: []\n", 1, "got an empty list"),
    "entry not a mapping": ("embeddings:\n  - just text\n", 2, "embedding 1 must be a mapping"),
    "no vector": ("embeddings:\n  - input: a\n", 2, "embedding 1 has no vector"),
    "no input": ("embeddings:\n  - vector: [1]\n", 2, "embedding 1 has no input"),
    "empty input": ('embeddings:\n  - {input: "", vector: [1]}\n', 2, "input must be a non-empty string"),
    "input a number": ("embeddings:\n  - {input: 3, vector: [1]}\n", 2, "input must be a non-empty string"),
    "model empty": ('embeddings:\n  - {input: a, model: "", vector: [1]}\n', 2, "model must be a model name"),
    "vector a string": ('embeddings:\n  - {input: a, vector: "1, 2"}\n', 2, "vector must be a non-empty list"),
    "vector empty": ("embeddings:\n  - {input: a, vector: []}\n", 2, "got an empty list"),
    "vector holds a string": (
        "embeddings:\n  - input: a\n    vector:\n      - 1\n      - two\n",
        5,
        "vector[1] must be a finite number",
    ),
    "vector holds true": ("embeddings:\n  - {input: a, vector: [1, true]}\n", 2, "vector[1] must be a finite"),
    "vector holds NaN": ("embeddings:\n  - {input: a, vector: [.nan]}\n", 2, "NaN and Infinity are not JSON"),
    "vector past float32": ("embeddings:\n  - {input: a, vector: [1e39]}\n", 2, "fits a float32"),
    "unknown key": ("embeddings:\n  - {input: a, vectors: [1]}\n", 2, "did you mean 'vector'?"),
    "same input twice": (
        "embeddings:\n  - {input: a, vector: [1]}\n  - {input: a, vector: [2]}\n",
        3,
        "pinned twice (first at ",
    ),
    "match without a conversation": (
        "match: {model: gpt-4o}\nembeddings:\n  - {input: a, vector: [1]}\n",
        1,
        "match applies to a conversation",
    ),
    "neither conversation nor embeddings": ("name: nothing\n", 1, "(or 'embeddings'"),
}


@pytest.mark.parametrize("case", list(BAD_PINS), ids=list(BAD_PINS))
def test_a_bad_pin_stops_start_up_with_its_line(tmp_path: Path, case: str) -> None:
    text, line, piece = BAD_PINS[case]
    path = tmp_path / "pins.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FixtureError) as caught:
        load_fixture_file(path)
    assert str(caught.value).startswith(f"{path}:{line}: "), caught.value
    assert piece in str(caught.value), caught.value


def test_a_vector_too_long_for_any_request_is_refused() -> None:
    with pytest.raises(FixtureError, match=r"<python>: embeddings\[0\]\.vector: vector has 8193 numbers"):
        fixture_from_dict({"embeddings": [{"input": "a", "vector": [0.0] * 8193}]})


def test_a_conversation_file_may_pin_vectors_too(tmp_path: Path) -> None:
    path = tmp_path / "both.yaml"
    path.write_text(HELLO + "embeddings:\n  - {input: Say hello., vector: [1, 2]}\n", encoding="utf-8")
    fixture = load_fixture_file(path)
    assert len(fixture.turns) == 1
    assert [(pin.input, pin.vector, pin.where) for pin in fixture.embeddings] == [
        ("Say hello.", (1.0, 2.0), f"{path}:5")
    ]


# -- other clients -------------------------------------------------------------------------------------------


# litellm's import warns about its own TypedDicts (pydantic on ReadOnly items): noise, not about the mock.
@pytest.mark.filterwarnings("ignore:Item.*ReadOnly:UserWarning", "ignore:Items.*ReadOnly:UserWarning")
def test_litellm_embedding(server: RunningMock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # its bundled price list, not a download
    monkeypatch.setenv("LITELLM_TELEMETRY", "False")
    litellm = pytest.importorskip("litellm", reason="litellm is in the optional clients extra")
    response = litellm.embedding(
        model=f"openai/{SMALL}",
        api_base=f"{server.url}/v1",
        api_key="x",
        input=["litellm one", "The cat sat on the mat."],
    )
    vectors = [item["embedding"] for item in response.data]
    assert vectors[0] == pytest.approx(hashed_vector(SMALL, "litellm one", 1536), abs=1e-7)
    assert vectors[1] == pytest.approx([0.6, 0.8, 0.0], abs=1e-7)
    assert response.usage.prompt_tokens == count_tokens("litellm one") + count_tokens("The cat sat on the mat.")


def test_ai_sdk_embed_and_embed_many(server: RunningMock) -> None:
    """The Vercel AI SDK asks for floats, and passes ``dimensions`` through its provider options."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH")
    if not (CLIENTS / "node_modules").is_dir():
        pytest.skip("tests/clients/node_modules is missing: run npm ci --prefix tests/clients")
    done = subprocess.run(
        [node, "ai_embed.mjs", f"{server.url}/v1"], cwd=CLIENTS, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"ai_embed.mjs exited {done.returncode}:\n{done.stderr}"
    out = json.loads(done.stdout.strip().splitlines()[-1])
    texts = ["ai-sdk: a sunny day in Paris", "ai-sdk: rain in Rome", "ai-sdk: snow in Oslo"]
    assert out["one"] == pytest.approx(hashed_vector(SMALL, texts[0], 1536), abs=1e-12)
    assert [len(vector) for vector in out["many"]] == [64, 64, 64]
    assert out["many"][2] == pytest.approx(hashed_vector(SMALL, texts[2], 64), abs=1e-12)
    assert out["usage"] == {"tokens": sum(count_tokens(text) for text in texts)}
    assert out["cosine"] == pytest.approx(cosine(out["many"][0], out["many"][1]), abs=1e-9)
    sent = [entry["body"] for entry in server.requests]
    assert [body.get("encoding_format") for body in sent] == ["float", "float"]
    assert sent[1]["dimensions"] == 64


def test_the_fixture_file_format_example_in_the_docs_loads(tmp_path: Path) -> None:
    """The ``embeddings`` example of docs/fixtures.md, as written there, is a valid fixture file."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "fixtures.md").read_text(encoding="utf-8")
    example = doc.split("```yaml\nname: search-vectors\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "search-vectors.yaml"
    path.write_text(textwrap.dedent("name: search-vectors\n" + example), encoding="utf-8")
    assert [pin.input for pin in load_fixture_file(path).embeddings]
