"""Shared test helpers: real servers on free loopback ports."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from contract.core.spec import load_spec
from contract.core.validate import ContractValidator

ROOT = Path(__file__).resolve().parent.parent

# pytester's in-process runs (the plugin tests) forget every module first imported during them. httpx and
# the SDK's client import their transports (httpcore, httpcore2) lazily, so a first import inside such a run
# left the later tests of that worker with two copies of the transport's exception classes, and a dropped
# connection escaped the client's error mapping. Importing them here, before any such run, keeps one copy.
for _transport in ("httpcore", "httpcore2"):
    try:
        importlib.import_module(_transport)
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


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fuzz-examples",
        type=int,
        default=150,
        metavar="N",
        help="inputs the HTTP fuzz test sends to the mock (default 150; a long run: 20000)",
    )
