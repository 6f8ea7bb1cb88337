"""The structured diff of two agent snapshots (pasar_core.agents.config_diff)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from pasar_core.agents.config_diff import diff

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)
OBJECTS = st.dictionaries(st.text(max_size=3), JSON, max_size=4)


def test_added_removed_and_changed_paths_nested_objects_walked_lists_whole() -> None:
    old = {"name": "a", "tools": ["x", "y"], "config": {"limits": {"max_steps": 5}, "memory": "none",
           "cache_ttl_s": 10}}  # fmt: skip
    new = {"name": "a", "tools": ["y", "x"], "config": {"limits": {"max_steps": 6}, "memory": "none",
           "system_prompt": "hi"}}  # fmt: skip
    assert [change.as_json() for change in diff(old, new)] == [
        {"path": "config.cache_ttl_s", "kind": "removed", "old": 10, "new": None},
        {"path": "config.limits.max_steps", "kind": "changed", "old": 5, "new": 6},
        {"path": "config.system_prompt", "kind": "added", "old": None, "new": "hi"},
        {"path": "tools", "kind": "changed", "old": ["x", "y"], "new": ["y", "x"]},
    ]


def test_a_value_of_another_type_is_a_change_even_when_python_calls_it_equal() -> None:
    assert [c.path for c in diff({"a": 1}, {"a": True})] == ["a"]
    assert [c.path for c in diff({"a": {"b": 1}}, {"a": [1]})] == ["a"]


@given(OBJECTS, OBJECTS)
def test_no_changes_exactly_when_equal_and_every_path_is_reported_once(old, new) -> None:
    changes = diff(old, new)
    assert (changes == []) == (old == new and _same_types(old, new))
    assert len({c.path for c in changes}) == len(changes)
    assert diff(old, old) == []


def _same_types(a: object, b: object) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return all(_same_types(a[k], b[k]) for k in a)
    if isinstance(a, list):
        assert isinstance(b, list)
        return all(_same_types(x, y) for x, y in zip(a, b, strict=True))
    return True
