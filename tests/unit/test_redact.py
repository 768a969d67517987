"""The scrubber: URLs lose credentials, text loses secret values, log records both."""

from __future__ import annotations

import logging
from urllib.parse import quote

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from trellis.config import Settings
from trellis.errors import ConfigError, SourceUnavailable
from trellis.redact import (
    MASK,
    RedactingFilter,
    Redactor,
    install_log_redaction,
    scrub_text,
    scrub_url,
    url_base,
)
from trellis.sources.kubernetes import kubeconfig_secrets
from trellis.wiring import redactor


@pytest.mark.parametrize(
    ("url", "scrubbed"),
    [
        ("http://user:pw@mlflow:5000/api", "http://mlflow:5000/api"),
        ("https://token@github.com/acme/x.git", "https://github.com/acme/x.git"),
        ("http://host/a?token=abc&page=2", f"http://host/a?token={MASK}&page=2"),
        ("http://host/a?Access_Token=abc", f"http://host/a?Access_Token={MASK}"),
        (
            "https://s3/b?X-Amz-Signature=s&X-Amz-Credential=c",
            f"https://s3/b?X-Amz-Signature={MASK}&X-Amz-Credential={MASK}",
        ),
        ("https://gl/raw?private_token=p", f"https://gl/raw?private_token={MASK}"),
        (
            "https://h/x?sig=1&api_key=2&password=3",
            f"https://h/x?sig={MASK}&api_key={MASK}&password={MASK}",
        ),
        (
            "postgresql+psycopg://u:p@db:5432/t?sslpassword=x",
            f"postgresql+psycopg://db:5432/t?sslpassword={MASK}",
        ),
        ("sqlite:////var/lib/trellis/mlflow.db", "sqlite:////var/lib/trellis/mlflow.db"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ("http://host/a?metric_key=loss", "http://host/a?metric_key=loss"),
    ],
)
def test_a_url_loses_userinfo_and_secret_parameters(url, scrubbed):
    assert scrub_url(url) == scrubbed


def test_a_base_url_has_no_query_at_all():
    assert url_base("http://u:p@mlflow:5000/x?token=t#frag") == "http://mlflow:5000/x"


@given(
    user=st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1),
    password=st.text(min_size=1),
)
def test_no_userinfo_survives_whatever_it_holds(user, password):
    url = f"https://{quote(user)}:{quote(password, safe='')}@host.example/path"
    assert scrub_url(url) == "https://host.example/path"
    assert "@" not in scrub_text(f"failed: GET {url} (timeout)")


def test_text_keeps_its_punctuation_and_loses_the_credentials():
    text = "cannot read http://u:p@h/a?private_token=x: no file; see 'https://t@h/b'."
    assert scrub_text(text) == (
        f"cannot read http://h/a?private_token={MASK}: no file; see 'https://h/b'."
    )


def test_a_redactor_masks_known_values_anywhere_longest_first():
    redact = Redactor(["s3cret-token-value", "s3cret", "ab"])
    assert redact("Bearer s3cret-token-value and s3cret, ab") == f"Bearer {MASK} and {MASK}, ab"


def test_errors_are_scrubbed_where_they_are_made():
    error = SourceUnavailable("http://u:p@mlflow", "GET http://u:p@mlflow/x?token=t failed")
    assert "p@" not in str(error) and "token=t" not in error.reason
    assert str(ConfigError("http://u:pw@h: no file")) == "http://h: no file"


def test_the_filter_scrubs_message_arguments_and_traceback():
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    handler.addFilter(RedactingFilter(Redactor(["tok-1234567890"])))
    logger = logging.getLogger("trellis.test.redact")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("GET %s with %s", "http://u:pw@h/x", "tok-1234567890")
        try:
            raise RuntimeError("http://u:pw@h/y?token=zz")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    assert records[0].getMessage() == f"GET http://h/x with {MASK}"
    assert "pw@" not in records[1].exc_text and "token=zz" not in records[1].exc_text
    formatted = logging.Formatter().format(records[1])
    assert "pw@" not in formatted and "zz" not in formatted


def test_installing_quietens_url_printing_libraries_and_updates_once(monkeypatch):
    handler = logging.NullHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    for name in ("httpx", "httpcore"):
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    try:
        install_log_redaction(Redactor(["first-secret"]))
        install_log_redaction(Redactor(["second-secret"]))
        filters = [f for f in handler.filters if isinstance(f, RedactingFilter)]
        assert [f.redactor.secrets for f in filters] == [("second-secret",)]
        assert logging.getLogger("httpx").level == logging.WARNING
        assert logging.getLogger("httpcore").level == logging.WARNING
    finally:
        root.removeHandler(handler)


def test_settings_name_every_secret_they_hold():
    settings = Settings(
        api_tokens=["api-token-0123456789"],
        mlflow={"tracking_uri": "http://mu:mpw@mlflow:5000", "token": "mlflow-token"},
        prometheus={"url": "https://pu:ppw@prom", "token": "prom-token"},
        scorecards={"database_url": "postgresql://du:dpw@db/trellis"},
        blueprints={
            "repository_url": "https://ci:gpw@git/trellis.git",
            "repositories": ["https://raw/a?private_token=rtok", "http://ru:rpw@raw/b"],
        },
    )
    assert set(settings.secret_values()) == {
        "api-token-0123456789",
        "mlflow-token",
        "prom-token",
        *("mu", "mpw", "pu", "ppw", "du", "dpw", "ci", "gpw", "rtok", "ru", "rpw"),
    }
    assert settings.mlflow_ui_url == "http://mlflow:5000"
    assert settings.registry_label == "http://mlflow:5000"


def test_kubeconfig_credentials_are_secrets_too(tmp_path):
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "users": [
                    {"name": "a", "user": {"token": "kube-token-value"}},
                    {"name": "b", "user": {"username": "admin", "password": "kube-password"}},
                    {
                        "name": "c",
                        "user": {"auth-provider": {"config": {"refresh-token": "kube-refresh"}}},
                    },
                    {"name": "broken", "user": "not a mapping"},
                ]
            }
        )
    )
    settings = Settings(kubernetes={"kubeconfig": kubeconfig, "contexts": "hub"})
    redact = redactor(settings)
    assert set(redact.secrets) == {"kube-token-value", "kube-password", "kube-refresh"}
    assert redact("Authorization: Bearer kube-token-value") == f"Authorization: Bearer {MASK}"
    # Without contexts the kubeconfig is not read at all, and a missing one holds nothing.
    assert redactor(Settings(kubernetes={"kubeconfig": kubeconfig})).secrets == ()
    assert kubeconfig_secrets(tmp_path / "missing") == []
