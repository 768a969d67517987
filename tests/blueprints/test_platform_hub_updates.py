"""`trellis update` moves a platform-hub repository across two releases and keeps its edits.

Releases 1.1.0 (a longer artifact-version retention) and 1.2.0 (an operations line and more
memory for Trellis); the repository, generated at 1.0.0, gives Trellis a shorter scoring
interval and MLflow a third replica (``support.updates`` has the rest of the road).
"""

from __future__ import annotations

from pathlib import Path

from support.blueprints import HUB_VARIANTS
from support.updates import update_keeping_edits


def test_an_update_across_two_releases_keeps_the_owners_edits(tmp_path: Path) -> None:
    update_keeping_edits(
        tmp_path,
        blueprint="platform-hub",
        answers=HUB_VARIANTS["create-github-aws"],
        releases={
            "1.1.0": (
                "- Keep overwritten artifacts for 180 days.",
                {"infra/variables.tf.jinja": ("  default     = 90\n", "  default     = 180\n")},
            ),
            "1.2.0": (
                "- The operations page says who to ask.",
                {
                    "docs/operations.md.jinja": (
                        "## Adding a region\n",
                        "## Adding a region\n\nAsk the platform team first.\n",
                    ),
                    "deploy/trellis/deployment.yaml.jinja": ("memory: 768Mi", "memory: 1Gi"),
                },
            ),
        },
        # Each well away from the lines the releases change.
        own_edits={
            "deploy/trellis/configmap.yaml": (
                'TRELLIS_SCORECARDS__INTERVAL_SECONDS: "300"',
                'TRELLIS_SCORECARDS__INTERVAL_SECONDS: "120"',
            ),
            "deploy/mlflow/deployment.yaml": ("  replicas: 2\n", "  replicas: 3\n"),
        },
        landed={
            "infra/variables.tf": "default     = 180",
            "docs/operations.md": "Ask the platform team first.",
            "deploy/trellis/deployment.yaml": "memory: 1Gi",
        },
    )
