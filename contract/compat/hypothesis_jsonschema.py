"""hypothesis-jsonschema's builder of one (sub-)schema's strategy, which it calls recursively.

Checked against hypothesis-jsonschema 0.23.1 (its latest release). ``from_schema``, the only
public name, builds through ``hypothesis_jsonschema._from_schema.__from_schema(schema, *,
alphabet, custom_formats)``, a module-level function looked up by name at each recursive call,
so a wrapper set in its place sees every sub-schema. The ``alphabet`` it passes is a
``CharStrategy`` with ``allow_x00`` and ``codec``, which with the schema decide the strategy.

Swapping the builder is what lets a run build each schema's strategy once
(:func:`contract.strategies.reused_schema_strategies`); a release that renames it raises
:class:`IncompatibleLibrary` instead of leaving runs ten times slower.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from types import ModuleType
from typing import Any

import hypothesis_jsonschema
from hypothesis.strategies import SearchStrategy

from . import IncompatibleLibrary

BUILDER_MODULE = "hypothesis_jsonschema._from_schema"
BUILDER = "__from_schema"  # (schema, *, alphabet, custom_formats) -> SearchStrategy

SchemaBuilder = Callable[..., SearchStrategy[Any]]


def builder_module() -> ModuleType:
    """The module whose ``__from_schema`` every draw builds through."""
    module = import_module(BUILDER_MODULE)
    if not callable(getattr(module, BUILDER, None)):
        raise IncompatibleLibrary(
            "hypothesis-jsonschema",
            hypothesis_jsonschema.__version__,
            f"{BUILDER_MODULE}.{BUILDER}",
            "each draw would build its schema's strategy again",
            __name__,
        )
    return module


def schema_builder() -> SchemaBuilder:
    """The per-schema builder in place now (the library's own, or a wrapper of it)."""
    found: SchemaBuilder = getattr(builder_module(), BUILDER)
    return found


def set_schema_builder(builder: SchemaBuilder) -> None:
    """Make every (sub-)schema, from now on, be built by ``builder``."""
    setattr(builder_module(), BUILDER, builder)


def alphabet_key(alphabet: Any) -> tuple[bool, str | None] | None:
    """What of the builder's ``alphabet`` decides the strategy; None for an alphabet of another shape."""
    if not hasattr(alphabet, "allow_x00") or not hasattr(alphabet, "codec"):
        return None
    return bool(alphabet.allow_x00), alphabet.codec
