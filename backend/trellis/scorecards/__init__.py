"""Scorecards: Tech Insights json-rules-engine checks with levels, as pure functions of facts."""

from trellis.scorecards.definitions import (
    Check,
    DefinitionError,
    EntityFilter,
    Level,
    Link,
    Problem,
    Scorecard,
    load_scorecards,
    parse_scorecard,
)
from trellis.scorecards.rules import (
    OPERATORS,
    CompiledRule,
    Evaluation,
    LeafResult,
    Node,
    RuleError,
    Truth,
    compile_rule,
    evaluate,
    facts_used,
    parse_conditions,
)
from trellis.scorecards.unknown import Unknown

__all__ = [
    "OPERATORS",
    "Check",
    "CompiledRule",
    "DefinitionError",
    "EntityFilter",
    "Evaluation",
    "LeafResult",
    "Level",
    "Link",
    "Node",
    "Problem",
    "RuleError",
    "Scorecard",
    "Truth",
    "Unknown",
    "compile_rule",
    "evaluate",
    "facts_used",
    "load_scorecards",
    "parse_conditions",
    "parse_scorecard",
]
