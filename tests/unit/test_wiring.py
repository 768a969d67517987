"""The composition roots: what a served Trellis shares between its parts."""

from pathlib import Path

from trellis import __version__
from trellis.config import Settings
from trellis.wiring import build_observer, build_prometheus, build_registry, build_scorer


def settings(tmp_path: Path) -> Settings:
    return Settings(
        state_dir=tmp_path / "state",
        mlflow={"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
        prometheus={"url": "http://127.0.0.1:9", "timeout_seconds": 7},
    )


def test_pages_and_the_scorer_ask_one_recorded_series_for_prometheus_s_names(tmp_path):
    config = settings(tmp_path)
    observer = build_observer(config, registry=None)
    scorer = build_scorer(config, catalog=None, scaffolder=None, recorded=observer.recorded)  # type: ignore[arg-type]
    try:
        assert observer.recorded is not None
        assert scorer.pipeline.recorded.__self__ is observer.recorded  # type: ignore[attr-defined]
        alone = build_scorer(config, catalog=None, scaffolder=None)  # type: ignore[arg-type]
        assert alone.pipeline.recorded.__self__ is not observer.recorded  # type: ignore[attr-defined]
        alone.stop()
    finally:
        scorer.stop()
        observer.close()


def test_a_page_waits_twice_the_longer_source_timeout(tmp_path):
    observer = build_observer(settings(tmp_path), registry=None)
    try:
        assert observer.deadline_seconds == 2 * 30.0  # MLflow's 30 s beats Prometheus's 7 s
    finally:
        observer.close()


def test_every_source_client_says_who_it_is_and_sends_its_own_token(tmp_path):
    config = Settings(
        state_dir=tmp_path / "state",
        mlflow={"tracking_uri": "http://127.0.0.1:9", "token": "mlflow-" + "m" * 24},
        prometheus={"url": "http://127.0.0.1:9", "token": "prometheus-" + "p" * 24},
    )
    registry = build_registry(config)
    prometheus = build_prometheus(config)
    assert prometheus is not None
    try:
        for client, token in (
            (registry._client, "mlflow-" + "m" * 24),  # type: ignore[attr-defined]
            (prometheus._client, "prometheus-" + "p" * 24),
        ):
            assert client.headers["User-Agent"] == f"trellis/{__version__}"
            assert client.headers["Authorization"] == f"Bearer {token}"
    finally:
        registry.close()
        prometheus.close()
    anonymous = build_prometheus(settings(tmp_path))
    assert anonymous is not None
    assert "Authorization" not in anonymous._client.headers
    anonymous.close()
