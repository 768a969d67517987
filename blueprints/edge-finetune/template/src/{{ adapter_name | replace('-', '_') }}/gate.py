"""The gate: the regional adapter replaces the champion only when it beats the hub model."""

from __future__ import annotations

from dataclasses import dataclass

from .params import Params
from .tuning import Score


@dataclass(frozen=True)
class Decision:
    """Whether the adapter passed, and why, in words for the run's output."""

    passed: bool
    reasons: tuple[str, ...]

    @property
    def verdict(self) -> str:
        """The `gate` tag of the model version: `passed` or `failed`."""
        return "passed" if self.passed else "failed"


def decide(adapter: Score, hub: Score, params: Params) -> Decision:
    """Compare hold-out scores of the adapter and the hub model against the thresholds."""
    reasons = []
    improvement = hub.loss - adapter.loss
    if improvement < params.min_loss_improvement:
        reasons.append(
            f"hold-out loss {adapter.loss:.4f} beats the hub model's {hub.loss:.4f} by "
            f"{improvement:.4f}, less than the required {params.min_loss_improvement:.4f}"
        )
    if params.max_perplexity > 0 and adapter.perplexity > params.max_perplexity:
        reasons.append(
            f"hold-out perplexity {adapter.perplexity:.2f} is above {params.max_perplexity:.2f}"
        )
    if reasons:
        return Decision(False, tuple(reasons))
    return Decision(
        True,
        (
            f"hold-out loss {adapter.loss:.4f} beats the hub model's {hub.loss:.4f} by "
            f"{improvement:.4f} (required {params.min_loss_improvement:.4f})",
        ),
    )
