"""Kubernetes settings: contexts, the per-cluster timeout and the context → region map."""

import pytest
from pydantic import ValidationError

from trellis.config import Settings


def test_kubernetes_settings_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TRELLIS_KUBERNETES__KUBECONFIG", str(tmp_path / "kubeconfig"))
    monkeypatch.setenv("TRELLIS_KUBERNETES__CONTEXTS", "hub, edge")
    monkeypatch.setenv("TRELLIS_KUBERNETES__TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("TRELLIS_KUBERNETES__REGIONS", " hub=eu-west-1 , edge = us-east-1 ,")
    kubernetes = Settings().kubernetes
    assert kubernetes.kubeconfig == tmp_path / "kubeconfig"
    assert kubernetes.contexts == ["hub", "edge"]
    assert kubernetes.timeout_seconds == 2.5
    assert kubernetes.regions == {"hub": "eu-west-1", "edge": "us-east-1"}


def test_defaults_read_no_cluster_and_allow_five_seconds():
    kubernetes = Settings().kubernetes
    assert (kubernetes.contexts, kubernetes.regions, kubernetes.timeout_seconds) == ([], {}, 5.0)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("hub=eu-west-1,edge", "entry 'edge' is not context=region"),
        ("=eu-west-1", "entry '=eu-west-1' is not context=region"),
        ("hub=", "entry 'hub=' is not context=region"),
        ("hub=a,hub=b", "context 'hub' is given twice"),
    ],
)
def test_a_malformed_region_entry_is_named(monkeypatch, value, fragment):
    monkeypatch.setenv("TRELLIS_KUBERNETES__REGIONS", value)
    with pytest.raises(ValidationError) as info:
        Settings()
    assert "kubernetes.regions" in str(info.value) and fragment in str(info.value)


@pytest.mark.parametrize("timeout", ["0", "-1", "121"])
def test_the_timeout_must_be_positive_and_bounded(monkeypatch, timeout):
    monkeypatch.setenv("TRELLIS_KUBERNETES__TIMEOUT_SECONDS", timeout)
    with pytest.raises(ValidationError, match="timeout_seconds"):
        Settings()
