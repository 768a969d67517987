"""Label-selector matching as Kubernetes applies a NetworkPolicy's podSelector."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trellis.sources.label_selector import selects

POD = {
    "app.kubernetes.io/name": "fraud",
    "serving.kserve.io/inferenceservice": "fraud",
    "tier": "gpu",
}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({}, True),  # an empty selector selects every pod of the namespace
        ({"matchLabels": {}}, True),
        ({"matchLabels": {"serving.kserve.io/inferenceservice": "fraud"}}, True),
        ({"matchLabels": {"serving.kserve.io/inferenceservice": "other"}}, False),
        ({"matchLabels": {"app.kubernetes.io/name": "fraud", "tier": "cpu"}}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["gpu", "x"]}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["cpu"]}]}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["cpu"]}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["gpu"]}]}, False),
        # NotIn also matches pods without the label, as the API server does.
        ({"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["a"]}]}, True),
        ({"matchExpressions": [{"key": "team", "operator": "In", "values": ["a"]}]}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, True),
        ({"matchExpressions": [{"key": "team", "operator": "Exists"}]}, False),
        ({"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, False),
        # matchLabels and matchExpressions are ANDed.
        (
            {
                "matchLabels": {"app.kubernetes.io/name": "fraud"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["cpu"]}],
            },
            False,
        ),
    ],
)
def test_selectors_select_as_the_api_server_does(selector, expected):
    assert selects(selector, POD) is expected


@pytest.mark.parametrize(
    "selector",
    [
        None,
        {"matchExpressions": [{"key": "tier", "operator": "Like", "values": ["gpu"]}]},
        {"matchExpressions": [{"key": "tier", "operator": "In", "values": []}]},
        {"matchExpressions": [{"key": "tier", "operator": "In"}]},
        {"matchExpressions": "tier in (gpu)"},
        {"matchLabels": ["tier", "gpu"]},
        {"matchExpressions": [["tier", "In", "gpu"]]},
    ],
)
def test_a_missing_or_malformed_selector_protects_nothing(selector):
    assert selects(selector, POD) is False


labels = st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), st.sampled_from(["1", "2"]))


@given(match=labels, pod=labels)
def test_match_labels_selects_exactly_the_pods_holding_all_of_them(match, pod):
    assert selects({"matchLabels": match}, pod) == (match.items() <= pod.items())
