"""`trellis update` moves a platform-spoke repository across two releases and keeps its edits.

Releases 1.1.0 (a slower scrape interval) and 1.2.0 (a newer DCGM exporter and a line in the
docs); the spoke, generated at 1.0.0, gives its exporter more memory and keeps its access logs
longer (``support.updates`` has the rest of the road).
"""

from __future__ import annotations

from pathlib import Path

from support.blueprints import SPOKE_VARIANTS
from support.updates import update_keeping_edits

OLD_IMAGE = "dcgm-exporter:4.2.3-4.1.3-ubuntu22.04"
NEW_IMAGE = "dcgm-exporter:4.4.1-4.5.2-ubuntu22.04"


def test_an_update_across_two_releases_keeps_the_owners_edits(tmp_path: Path) -> None:
    update_keeping_edits(
        tmp_path,
        blueprint="platform-spoke",
        answers=SPOKE_VARIANTS["aws-eu-west"],
        releases={
            "1.1.0": (
                "- Scrape every 30 seconds.",
                {
                    "deploy/prometheus/prometheus.yml.jinja": (
                        "scrape_interval: 15s",
                        "scrape_interval: 30s",
                    )
                },
            ),
            "1.2.0": (
                "- A newer DCGM exporter.",
                {
                    "deploy/dcgm-exporter.yaml.jinja": (OLD_IMAGE, NEW_IMAGE),
                    "docs/index.md.jinja": (
                        "## Owner\n",
                        "## Owner\n\nAsk in #ml-platform first.\n",
                    ),
                },
            ),
        },
        # Each well away from the lines the releases change.
        own_edits={
            "deploy/dcgm-exporter.yaml": ("memory: 512Mi", "memory: 1Gi"),
            "infra/variables.tf": ("default     = 730", "default     = 1095"),
        },
        landed={
            "deploy/prometheus/prometheus.yml": "scrape_interval: 30s",
            "deploy/dcgm-exporter.yaml": NEW_IMAGE,
            "docs/index.md": "Ask in #ml-platform first.",
        },
    )
