"""The registry: every layer type and every merge declares every part; lookups never fall
through to another type's rule."""

import pytest

from cnncalc import layers as L
from cnncalc.registry import ALL_TYPES, PARTS, MissingRule, lookup, missing, rule


def test_every_type_has_every_part():
    assert missing() == []


@pytest.mark.parametrize("part", sorted(PARTS))
@pytest.mark.parametrize("kind", ALL_TYPES)
def test_each_part_is_callable(kind, part):
    assert callable(lookup(part, L.model(kind)))


def test_every_type_is_reachable_from_a_spec():
    # layers by their type key; merges by their block key
    for model in L.LAYER_TYPES:
        assert L.BY_KEY[L.type_key(L.canonical_type(model))] == L.canonical_type(model)
    assert set(L.MERGE_CLASSES) == {"add", "concat", "mul"}


def test_every_type_name_builds_its_own_class():
    # the catalogue, the registered definitions and the classes they build agree
    assert set(L._BUILDERS) == set(L.LAYER_CLASSES) | set(L.MERGE_CLASSES)
    for kind, name in {**L.LAYER_CLASSES, **L.MERGE_CLASSES}.items():
        cls = L.model(kind)
        assert cls.__name__ == name and L.canonical_type(cls) == kind
        assert getattr(L, name) is cls and L.model(kind) is cls  # built once


def test_a_type_without_a_rule_is_an_error_not_a_fallthrough():
    class Fake(L.Conv2d):  # inherits Conv2d's fields, but not its rules
        pass

    for part in PARTS:
        with pytest.raises(MissingRule, match=f"Fake has no '{part}' rule"):
            lookup(part, Fake)


def test_two_rules_for_one_part_are_refused():
    import cnncalc.arithmetic  # noqa: F401 (registers conv2d's rule first)

    with pytest.raises(MissingRule, match="two 'infer' rules"):
        rule("infer", "conv2d")(lambda layer, shape: None)


def test_a_rule_for_an_unknown_type_is_refused():
    with pytest.raises(MissingRule, match="'conv2' is not a layer type"):
        rule("infer", "conv2")
