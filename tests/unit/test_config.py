import pytest
from pydantic import ValidationError

from trellis.config import Settings

TOKEN = "t" * 32


def test_defaults_are_embedded(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.tracking_uri == f"sqlite:///{tmp_path / '.trellis' / 'mlflow.db'}"
    assert settings.mlflow_ui_url is None
    assert settings.prometheus.url is None and settings.kubernetes.contexts == []


def test_environment_variables_configure_nested_settings(monkeypatch):
    monkeypatch.setenv("TRELLIS_MLFLOW__TRACKING_URI", "http://mlflow:5000/")
    monkeypatch.setenv("TRELLIS_API_TOKENS", f"{TOKEN},{'u' * 20}")
    monkeypatch.setenv("TRELLIS_KUBERNETES__CONTEXTS", "hub, edge-eu")
    monkeypatch.setenv("TRELLIS_CATALOG__EMIT_SYSTEMS", "false")
    settings = Settings()
    assert settings.tracking_uri == "http://mlflow:5000"
    assert settings.mlflow_ui_url == "http://mlflow:5000"
    assert [t.get_secret_value() for t in settings.api_tokens] == [TOKEN, "u" * 20]
    assert settings.kubernetes.contexts == ["hub", "edge-eu"]
    assert settings.catalog.emit_systems is False


def test_credentials_never_show_in_the_registry_label():
    settings = Settings(mlflow={"tracking_uri": "https://user:secret@mlflow.example:8443/x"})
    assert settings.registry_label == "https://mlflow.example:8443/x"
    assert TOKEN not in repr(Settings(api_tokens=[TOKEN]))


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"api_tokens": ["changeme"]}, "api_tokens"),
        ({"api_tokens": ["short"]}, "api_tokens"),
        ({"mlflow": {"tracking_uri": "ftp://x"}}, "tracking_uri"),
        ({"mlflow": {"model_page_size": 1001}}, "model_page_size"),
        ({"catalog": {"fallback_owner": "not an owner!"}}, "fallback_owner"),
        ({"catalog": {"requires_token": True}}, "REQUIRES_TOKEN"),
        ({"webhooks": {"secret": "short-secret"}}, "TRELLIS_WEBHOOKS__SECRET"),
        ({"webhooks": {"tolerance_seconds": 1}}, "tolerance_seconds"),
    ],
)
def test_settings_that_cannot_work_are_rejected_naming_the_key(kwargs, fragment):
    with pytest.raises(ValidationError) as info:
        Settings(**kwargs)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "token", ["tøken-" + "x" * 30, "x" * 30 + " y", "x" * 30 + "\x00", "é" * 40]
)
def test_a_token_that_cannot_travel_in_a_header_is_refused_without_echoing_it(token):
    with pytest.raises(ValidationError) as info:
        Settings(api_tokens=[token])
    assert "TRELLIS_API_TOKENS" in str(info.value)
    assert token not in str(info.value)


def test_the_lineage_policies_default_safe_and_read_json_from_the_environment(monkeypatch):
    defaults = Settings().scorecards
    assert defaults.adapter_serving == {"confidential": "data-region", "restricted": "data-region"}
    assert "apache-2.0" in defaults.licenses
    monkeypatch.setenv("TRELLIS_SCORECARDS__ADAPTER_SERVING", '{"internal": "data-region"}')
    monkeypatch.setenv("TRELLIS_SCORECARDS__LICENSES", '["llama3.1"]')
    settings = Settings().scorecards
    assert (settings.adapter_serving, settings.licenses) == (
        {"internal": "data-region"},
        ["llama3.1"],
    )
    monkeypatch.setenv("TRELLIS_SCORECARDS__ADAPTER_SERVING", '{"internal": "nowhere"}')
    with pytest.raises(ValidationError, match="adapter_serving"):
        Settings()


def test_the_webhook_secret_is_a_secret_to_scrub(monkeypatch):
    monkeypatch.setenv("TRELLIS_WEBHOOKS__SECRET", "w" * 24)
    settings = Settings()
    assert "w" * 24 in settings.secret_values()
    assert "w" * 24 not in repr(settings)
