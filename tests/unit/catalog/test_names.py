from hypothesis import given, settings
from hypothesis import strategies as st

from trellis.catalog.names import entity_names, fold_tag, is_valid_name, is_valid_tag


def test_valid_lowercase_names_are_kept_as_they_are():
    names = entity_names(["fraud-model", "churn_v2", "a", "x.y"])
    assert names == {"fraud-model": "fraud-model", "churn_v2": "churn_v2", "a": "a", "x.y": "x.y"}


def test_a_name_that_folds_without_collision_has_no_suffix():
    assert entity_names(["Fraud Model"]) == {"Fraud Model": "fraud-model"}


def test_colliding_names_get_stable_suffixes_and_the_exact_one_keeps_its_name():
    names = entity_names(["fraud-model", "Fraud Model", "FRAUD MODEL"])
    assert names["fraud-model"] == "fraud-model"
    assert names["Fraud Model"].startswith("fraud-model-")
    assert names["FRAUD MODEL"].startswith("fraud-model-")
    assert names["Fraud Model"] != names["FRAUD MODEL"]
    # Adding an unrelated model changes nothing.
    again = entity_names(["fraud-model", "Fraud Model", "FRAUD MODEL", "other"])
    assert {k: again[k] for k in names} == names


def test_long_names_are_truncated_with_a_suffix_and_stay_distinct():
    a, b = "y" * 200, "y" * 200 + "z"
    names = entity_names([a, b])
    assert all(len(n) <= 63 and is_valid_name(n) for n in names.values())
    assert names[a] != names[b]


def test_names_that_fold_to_nothing_become_model_with_a_hash():
    names = entity_names(["🔥", "!!!", "名前"])
    assert all(n.startswith("model-") for n in names.values())
    assert len(set(names.values())) == 3


def test_tags_fold_or_are_dropped():
    assert fold_tag("Sk Learn") == "sk-learn"
    assert fold_tag("🔥") is None
    assert fold_tag("x" * 100) == "x" * 63
    assert is_valid_tag("c++") and not is_valid_tag("a_b")


@settings(max_examples=300, deadline=None)
@given(st.sets(st.text(min_size=1, max_size=120), min_size=1, max_size=40))
def test_any_set_of_names_maps_to_valid_unique_names(originals):
    names = entity_names(originals)
    assert set(names) == originals
    assert all(is_valid_name(n) for n in names.values())
    assert len({n.lower() for n in names.values()}) == len(originals)
    assert entity_names(sorted(originals, reverse=True)) == names
