"""The registry: every layer type and every merge declares every part; lookups never fall
through to another type's rule."""

import pytest

from cnncalc import layers as L
from cnncalc.registry import ALL_TYPES, PARTS, MissingRule, lookup, missing, rule


def test_every_type_has_every_part():
    assert missing() == []


@pytest.mark.parametrize("part", sorted(PARTS))
@pytest.mark.parametrize("model", ALL_TYPES, ids=lambda m: m.__name__)
def test_each_part_is_callable(model, part):
    assert callable(lookup(part, model))


def test_every_type_is_reachable_from_a_spec():
    # layers by their type key; merges by their block key
    for model in L.LAYER_TYPES:
        assert L.BY_KEY[L.type_key(L.canonical_type(model))] is model
    assert set(L.MERGE_BY_KIND) == {"add", "concat", "mul"}


def test_a_type_without_a_rule_is_an_error_not_a_fallthrough():
    class Fake(L.Conv2d):  # inherits Conv2d's fields, but not its rules
        pass

    for part in PARTS:
        with pytest.raises(MissingRule, match=f"Fake has no '{part}' rule"):
            lookup(part, Fake)


def test_two_rules_for_one_part_are_refused():
    with pytest.raises(MissingRule, match="two 'infer' rules"):
        rule("infer", L.Conv2d)(lambda layer, shape: None)
