"""Structural defects of an OpenAPI document: what the OpenAPI specification itself forbids.

The lint's own rules look for contradictions a well-formed document can still
hold; whether it is well-formed at all is the job of ``openapi-spec-validator``,
the standard checker, run here first. Its answers are reshaped for a reader:
each problem gets a JSON pointer into the document as written, and a top-level
"is not valid under any of the given schemas" is replaced by the deepest reason
under it ("additional property 'description' is not allowed in a Media Type object").

The meta-schema is applied with the pure-Python ``jsonschema``, whatever backend
the library would pick, because only its errors keep the ``context`` to descend into.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from jsonschema.exceptions import ValidationError
from jsonschema.validators import validator_for
from jsonschema_path import SchemaPath
from openapi_spec_validator import OpenAPIV30SpecValidator, OpenAPIV31SpecValidator, OpenAPIV32SpecValidator
from openapi_spec_validator.schemas import schema_v30, schema_v31, schema_v32
from openapi_spec_validator.validation.keywords import KeywordValidator, ValueValidator
from openapi_spec_validator.validation.validators import SpecValidator
from referencing.exceptions import Unresolvable

from ..core.validate import json_type, short_json
from .findings import one_line

_MAX_MESSAGE = 200


@dataclass(frozen=True)
class StructureProblem:
    """One way the document breaks the OpenAPI specification."""

    path: tuple[str | int, ...]  # keys from the document's root; may pass through a $ref
    message: str


class StructureUnchecked(Exception):
    """The checker itself failed on this document; the message says how, in one line."""


def structure_problems(raw: dict[str, Any], version: str) -> list[StructureProblem]:
    """What the OpenAPI specification of ``version`` (3.0, 3.1, 3.2) says is wrong with ``raw``.

    Meta-schema errors first; only a document that passes them gets the library's semantic
    checks (duplicate operationIds, unresolved path parameters, defaults that break their schema),
    which assume a well-formed document. Those stop at a ``$ref`` that resolves nowhere, keeping
    what they found until then: the lint's rule dangling-ref names that reference.
    """
    checker = _checker(version)
    document = _json_keys(raw)
    problems: list[StructureProblem] = []
    try:
        errors = list(checker.schema_validator.iter_errors(document))
        if errors:
            return _unique(_meta_problem(error, checker.definitions) for error in errors)
        semantic = checker(document)  # its keyword walk alone: the meta-schema has been applied
        for error in semantic.root_validator(semantic.schema_path):
            problems.append(_semantic_problem(error))
    except Unresolvable:
        pass
    except Exception as exc:  # the checker's own failure, never the user's traceback
        raise StructureUnchecked(
            f"openapi-spec-validator failed on this document ({type(exc).__name__}: {one_line(str(exc), _MAX_MESSAGE)})"
        ) from exc
    return _unique(problems)


# -- the checker ----------------------------------------------------------------------


class _Checker:
    """For one OpenAPI version: a pure-Python validator of its meta-schema, and the library's
    validator class with keyword validators that say where their errors are."""

    def __init__(self, base: type[SpecValidator], meta_schema: Any) -> None:
        self.schema_validator = validator_for(meta_schema)(meta_schema)
        self.definitions = _definition_names(meta_schema)
        located = {name: _locating(cls) for name, cls in base.keyword_validators.items()}
        self._cls = type(f"Located{base.__name__}", (base,), {"keyword_validators": located})

    def __call__(self, document: dict[str, Any]) -> SpecValidator:
        return self._cls(document)


_CHECKERS: dict[str, _Checker] = {}
_BASES = {
    "3.0": (OpenAPIV30SpecValidator, schema_v30),
    "3.1": (OpenAPIV31SpecValidator, schema_v31),
    "3.2": (OpenAPIV32SpecValidator, schema_v32),
}


def _checker(version: str) -> _Checker:
    minor = version[:3]
    if minor not in _BASES:
        raise StructureUnchecked(f"no structural checks for OpenAPI {version}")
    if minor not in _CHECKERS:
        _CHECKERS[minor] = _Checker(*_BASES[minor])
    return _CHECKERS[minor]


# Set on an error: (the document path the keyword validator was looking at, whether it was a default value).
_WHERE = "_contract_lint_where"


def _locating(cls: type[KeywordValidator]) -> type[KeywordValidator]:
    """``cls`` marking each error it yields with the document path it was checking, since the
    library's semantic errors carry no path of their own (a default value's errors carry one
    relative to the default)."""

    def __call__(self: Any, *args: Any, **kwargs: Any) -> Iterator[ValidationError]:
        where = next((arg for arg in args if isinstance(arg, SchemaPath)), None)
        for error in super(located, self).__call__(*args, **kwargs):  # type: ignore[arg-type]  # made below
            if where is not None and not hasattr(error, _WHERE):
                if isinstance(self, ValueValidator):
                    setattr(error, _WHERE, ((*where.parts, "default", *error.absolute_path), True))
                else:
                    setattr(error, _WHERE, (tuple(where.parts), False))
            yield error

    located = type(cls.__name__, (cls,), {"__call__": __call__})
    return located


# -- reshaping errors -----------------------------------------------------------------


def _meta_problem(error: ValidationError, definitions: dict[int, str]) -> StructureProblem:
    error = _deepest(error, definitions)
    return StructureProblem(tuple(error.absolute_path), _describe(error, definitions))


def _semantic_problem(error: ValidationError) -> StructureProblem:
    path, of_default = getattr(error, _WHERE, ((), False))
    message = _describe(error, {})
    return StructureProblem(path, f"the default value does not fit its schema: {message}" if of_default else message)


def _deepest(error: ValidationError, definitions: dict[int, str]) -> ValidationError:
    """Under "valid under none of the branches", the error that says most: the deepest in the
    instance, and, between equally deep ones, not the one that wanted a Reference object."""
    if not error.context:
        return error
    candidates = [_deepest(sub, definitions) for sub in error.context]
    return max(candidates, key=lambda e: (len(e.absolute_path), _object_name(e, definitions) != "Reference"))


def _describe(error: ValidationError, definitions: dict[int, str]) -> str:
    kind, instance = error.validator, error.instance
    name = _object_name(error, definitions)
    where = f" in {_article(name)} {name} object" if name else ""
    if kind in ("additionalProperties", "unevaluatedProperties") and isinstance(instance, dict):
        extra = _extra_properties(error)
        if extra:
            listed = ", ".join(map(repr, extra))
            verb = "property {} is" if len(extra) == 1 else "properties {} are"
            return f"additional {verb.format(listed)} not allowed{where}"
    if kind == "required":
        missing = error.message.split(" is a required property")[0]
        return f"required property {missing} is missing{where}"
    if kind == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"expected {expected}, got {json_type(instance)} {short_json(instance)}"
    if kind == "enum":
        return f"{short_json(instance)} is not one of {short_json(error.validator_value, 120)}"
    if kind == "oneOf" and not error.context:  # no branch failed: several matched
        return f"{short_json(instance)} matches more than one of the shapes allowed here{where}"
    return one_line(error.message, _MAX_MESSAGE)


def _extra_properties(error: ValidationError) -> list[str]:
    if error.validator == "unevaluatedProperties":  # which ones the evaluation left over is in the message
        found = re.search(r"\((.*) (?:was|were) unexpected\)", error.message)
        return re.findall(r"'((?:[^'\\]|\\.)*)'", found.group(1)) if found else []
    schema = error.schema if isinstance(error.schema, dict) else {}
    known = schema.get("properties") or {}
    patterns = list(schema.get("patternProperties") or {})
    instance = error.instance if isinstance(error.instance, dict) else {}
    return [key for key in instance if key not in known and not any(re.search(p, key) for p in patterns)]


def _object_name(error: ValidationError, definitions: dict[int, str]) -> str | None:
    """``Media Type`` when the failing keyword belongs to the meta-schema's MediaType / media-type."""
    name = definitions.get(id(error.schema))
    if name is None:
        return None
    if "-" in name or name.islower():
        return " ".join(word.capitalize() for word in name.split("-"))
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)


def _definition_names(meta_schema: Any) -> dict[int, str]:
    defs = meta_schema.get("definitions") or meta_schema.get("$defs") or {}
    return {id(schema): name for name, schema in defs.items() if isinstance(schema, dict)}


def _article(name: str) -> str:
    return "an" if name[:1].lower() in "aeiou" else "a"


# -- helpers --------------------------------------------------------------------------


def _json_keys(node: Any) -> Any:
    """The document as JSON would carry it: YAML's ``200:`` key becomes ``"200"``."""
    if isinstance(node, dict):
        return {str(key): _json_keys(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_json_keys(item) for item in node]
    return node


def _unique(problems: Iterable[StructureProblem]) -> list[StructureProblem]:
    return list(dict.fromkeys(problems))
