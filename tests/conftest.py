"""Shared test helpers: real servers on free loopback ports."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from mock_helpers import MockServers

from contract.core.spec import load_spec
from contract.core.validate import ContractValidator

ROOT = Path(__file__).resolve().parent.parent

# pytester's in-process runs (the plugin tests) forget every module first imported during them. httpx and
# the SDK's client import their transports (httpcore, httpcore2) lazily, so a first import inside such a run
# left the later tests of that worker with two copies of the transport's exception classes, and a dropped
# connection escaped the client's error mapping. Importing them here, before any such run, keeps one copy.
# The overlay's JSONPath engine (jsonpath_rfc9535, imported only when a profile is applied) loads a PyO3
# module that cannot be loaded twice in one process: first imported inside such a run, it failed every
# later test of that process that loads a spec with a profile.
for _module in ("httpcore", "httpcore2", "jsonpath_rfc9535"):
    try:
        importlib.import_module(_module)
    except ImportError:
        pass
# A verbatim copy of the seed, so the tests run on a clone with no shared/ folder beside it;
# tests/test_errata.py checks it still equals ../shared/seed-openapi.yaml where that exists.
SEED = ROOT / "tests" / "data" / "seed-openapi.yaml"


@pytest.fixture(scope="session")
def validator() -> ContractValidator:
    """The project's own validator over the project's openapi.yaml."""
    return ContractValidator(load_spec(ROOT / "openapi.yaml"))


@pytest.fixture(scope="session")
def seed_path() -> Path:
    if not SEED.is_file():
        pytest.fail(f"the seed document is missing at {SEED}")
    return SEED


@pytest.fixture()
def reused_strategies() -> Iterator[None]:
    """Build each (sub-)schema's strategy once while the test draws, as a contract-check run does
    (``contract.strategies.reused_schema_strategies``): a test that draws from the request schema outside it
    builds the schema's strategies again on every draw. For ``@given`` tests, through ``usefixtures``."""
    # Imported here, not at the top: importing contract.strategies builds Hypothesis strategies, which read
    # Hypothesis's character tables, and Hypothesis warns when that happens while pytest loads a conftest.
    from contract.strategies import reused_schema_strategies

    with reused_schema_strategies():
        yield


@pytest.fixture()
def mock_server_factory() -> Iterator[MockServers]:
    """Mock servers of this test's own, as ``mockserver_factory`` starts them for a user's test:
    ``mock_server_factory(folder, no_delay=True, ...)`` (see ``MockServers``); they stop when the test ends."""
    servers = MockServers()
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture(scope="module")
def module_mock_server_factory() -> Iterator[MockServers]:
    """Mock servers one module's tests share, started from a module-scoped fixture; they stop when the module
    ends. Each is reset before every test that uses it (``reset_shared_mock_servers``), so no test sees the
    journal, scenario positions or added conversations of another, in whatever order they run."""
    servers = MockServers()
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture(autouse=True)
def reset_shared_mock_servers(request: pytest.FixtureRequest) -> None:
    """Before a test that uses a module's shared servers, reset them, as the plugin's ``mockserver`` fixture does.

    Runs after the module-scoped fixtures (pytest sets up wider scopes first) and before the test's own.
    """
    if "module_mock_server_factory" in request.fixturenames:
        request.getfixturevalue("module_mock_server_factory").reset()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fuzz-examples",
        type=int,
        default=150,
        metavar="N",
        help="inputs the HTTP fuzz test sends to the mock (default 150; a long run: 20000)",
    )
