"""`trellis update` moves an edge-finetune repository across two releases and keeps its edits.

Releases 1.1.0 (more tuning steps) and 1.2.0 (a runbook line and a bigger scratch volume); the
repository, generated at 1.0.0, changes its hold-out share and its Job's deadline
(``support.updates`` has the rest of the road).
"""

from __future__ import annotations

from pathlib import Path

from support.blueprints import FINETUNE_VARIANTS
from support.updates import update_keeping_edits

JOB = 'deploy/{{ "job.yaml" if schedule == "on-demand" else "cronjob.yaml" }}.jinja'


def test_an_update_across_two_releases_keeps_the_owners_edits(tmp_path: Path) -> None:
    update_keeping_edits(
        tmp_path,
        blueprint="edge-finetune",
        answers=FINETUNE_VARIANTS["lora-github-aws"],
        releases={
            "1.1.0": (
                "- Tune for 300 steps.",
                {"params.yaml.jinja": ("  max_steps: 200\n", "  max_steps: 300\n")},
            ),
            "1.2.0": (
                "- The runbook says who to ask.",
                {
                    "docs/runbook.md.jinja": (
                        "## Roll back\n",
                        "## Roll back\n\nAsk the owners first.\n",
                    ),
                    JOB: ("sizeLimit: 100Gi", "sizeLimit: 200Gi"),
                },
            ),
        },
        # Each well away from the lines the releases change.
        own_edits={
            "params.yaml": ("holdout_fraction: 0.2\n", "holdout_fraction: 0.25\n"),
            "deploy/job.yaml": ("activeDeadlineSeconds: 43200", "activeDeadlineSeconds: 21600"),
        },
        landed={
            "params.yaml": "max_steps: 300",
            "docs/runbook.md": "Ask the owners first.",
            "deploy/job.yaml": "sizeLimit: 200Gi",
        },
    )
