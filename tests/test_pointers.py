"""JSON pointers and $ref chains, read and followed in one place."""

from __future__ import annotations

import pytest

from contract.core import pointers

DOCUMENT = {
    "paths": {"/chat/completions": {"post": {"responses": {"200": {"$ref": "#/components/responses/Ok"}}}}},
    "components": {
        "responses": {
            "Ok": {"$ref": "#/components/responses/Real"},
            "Real": {"description": "ok"},
            "Loop": {"$ref": "#/components/responses/Loop"},
            "Dangling": {"$ref": "#/components/responses/Nowhere"},
        }
    },
    "list": [{"a~b": 1}],
}


def test_tokens_escape_and_join_are_inverse() -> None:
    pointer = pointers.join("#/paths", "/chat/completions", "post", 0, "a~b")
    assert pointer == "#/paths/~1chat~1completions/post/0/a~0b"
    assert pointers.tokens(pointer) == ["paths", "/chat/completions", "post", "0", "a~b"]
    assert pointers.tokens("/messages/0") == ["messages", "0"] and pointers.tokens("#") == pointers.tokens("") == []


def test_lookup_walks_objects_and_arrays_and_says_when_nothing_is_there() -> None:
    assert pointers.lookup(DOCUMENT, "#/list/0/a~0b") == 1
    assert pointers.lookup(DOCUMENT, "") is DOCUMENT
    for missing in ("#/list/1", "#/list/x", "#/paths/nothing", "/list/0/a~0b/deeper"):
        with pytest.raises(LookupError):
            pointers.lookup(DOCUMENT, missing)
        assert pointers.value_at(DOCUMENT, missing) is None


def test_a_ref_chain_is_followed_to_its_end() -> None:
    start = DOCUMENT["paths"]["/chat/completions"]["post"]["responses"]["200"]
    node, where = pointers.follow_refs(start, "#/paths/x", lambda target: pointers.lookup(DOCUMENT, target))
    assert node == {"description": "ok"} and where == "#/components/responses/Real"


def test_a_cycle_stops_the_chain_or_raises_and_a_dangling_target_ends_it_at_its_reference() -> None:
    def resolve(target: str) -> object:
        return pointers.lookup(DOCUMENT, target)

    loop = DOCUMENT["components"]["responses"]["Loop"]
    node, _ = pointers.follow_refs(loop, "#/components/responses/Loop", resolve)
    assert node == loop

    def refuse(target: str) -> None:
        raise ValueError(f"cycle at {target}")

    with pytest.raises(ValueError, match="cycle at #/components/responses/Loop"):
        pointers.follow_refs(loop, "#/x", resolve, on_cycle=refuse)
    dangling = DOCUMENT["components"]["responses"]["Dangling"]
    node, where = pointers.follow_refs(dangling, "#/components/responses/Dangling", resolve)
    assert node == dangling and where == "#/components/responses/Dangling"
    outside = {"$ref": "other.yaml#/x"}
    assert pointers.follow_refs(outside, "#/y", resolve) == (outside, "#/y")
