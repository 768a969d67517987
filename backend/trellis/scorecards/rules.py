"""json-rules-engine conditions, evaluated with three-valued logic over a fleet's facts.

A condition tree is written exactly as Tech Insights' ``json-rules-engine`` checks write it:
``all`` / ``any`` (lists) and ``not`` (one condition) nest freely; a leaf compares a ``fact``
(optionally walked with ``path``) to a ``value`` with one of the engine's ten operators, and
``value: {fact: ...}`` compares against another fact. Operators keep the package's type rules
(see :mod:`trellis.scorecards.jsvalues`).

One deliberate difference: json-rules-engine throws ``Undefined fact`` when a fact is
missing, and a check in Tech Insights whose facts are missing is skipped. Trellis instead
treats a fact that could not be read as *unknown*: the leaf is None, and ``all`` / ``any`` /
``not`` combine results with Kleene's logic, so an unknown only decides the outcome when the
known parts cannot. Where the package would throw a TypeError (``in`` against a number),
the leaf is unknown too, with the reason, rather than failing a whole fleet's run.

A fleet's run evaluates the same trees for thousands of entities, so ``compile_rule`` turns a
tree into closures once (each leaf's reads, operator and constant bound; the tree's shape a
function of the leaves' results) and ``CompiledRule.results`` gives per entity what
``evaluate`` gives, without walking the tree or building a ``LeafResult`` per leaf.
``evaluate`` stays the plain tree walk: the definition the compiled form is tested against.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from trellis.errors import TrellisError
from trellis.scorecards.jsvalues import (
    index_of,
    is_array,
    is_number,
    is_object_like,
    less_than,
    number_validator,
    strict_equal,
    type_name,
)
from trellis.scorecards.paths import PathError, parse_path, resolve_path
from trellis.scorecards.unknown import Unknown

__all__ = [
    "OPERATORS",
    "All",
    "AnyOf",
    "CompiledRule",
    "Evaluation",
    "FactRef",
    "Leaf",
    "LeafResult",
    "Node",
    "Not",
    "RuleError",
    "Truth",
    "all_of",
    "any_of",
    "compile_rule",
    "evaluate",
    "facts_used",
    "parse_conditions",
]

#: True, False, or None for unknown.
Truth: TypeAlias = bool | None


class RuleError(TrellisError):
    """A condition tree json-rules-engine would not accept; ``where`` is its JSON path."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


def _negated(result: bool | None) -> bool:
    return result is False  # JavaScript's `a <= b` is `!(b < a)` with undefined as false


_OPERATORS: dict[str, Callable[[object, object], bool | None]] = {
    "equal": strict_equal,
    "notEqual": lambda a, b: not strict_equal(a, b),
    "in": lambda a, b: index_of(b, a),
    "notIn": lambda a, b: None if (found := index_of(b, a)) is None else not found,
    "contains": lambda a, b: is_array(a) and bool(index_of(a, b)),
    "doesNotContain": lambda a, b: is_array(a) and not index_of(a, b),
    "lessThan": lambda a, b: number_validator(a) and less_than(a, b) is True,
    "lessThanInclusive": lambda a, b: number_validator(a) and _negated(less_than(b, a)),
    "greaterThan": lambda a, b: number_validator(a) and less_than(b, a) is True,
    "greaterThanInclusive": lambda a, b: number_validator(a) and _negated(less_than(a, b)),
}
#: The operators json-rules-engine registers by default, in its own order.
OPERATORS: tuple[str, ...] = tuple(_OPERATORS)


@dataclass(frozen=True, slots=True)
class FactRef:
    """``value: {fact, path?, params?}``: the right-hand side read from another fact."""

    fact: str
    path: str | None = None
    params: Mapping[str, Any] | None = None
    segments: tuple[str, ...] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Leaf:
    """One comparison: ``fact`` (walked by ``path``) ``operator`` ``value``.

    ``params`` is kept for round-tripping: Tech Insights facts are constants, and
    json-rules-engine passes params only to computed facts.
    """

    fact: str
    operator: str
    value: object
    path: str | None = None
    params: Mapping[str, Any] | None = None
    segments: tuple[str, ...] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class All:
    """``all``: true when every child is (json-rules-engine: an empty list is true)."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """``any``: true when some child is (json-rules-engine: an empty list is true as well)."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """``not``: the opposite of its one child; unknown stays unknown."""

    child: Node


Node: TypeAlias = Leaf | All | AnyOf | Not


@dataclass(frozen=True, slots=True)
class LeafResult:
    """What one comparison saw, for explanations: the values read and its own result."""

    fact: str
    operator: str
    value: object
    path: str | None
    fact_value: object
    compared_to: object
    result: Truth
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The outcome of a condition tree and every leaf's part in it, in written order."""

    result: Truth
    leaves: tuple[LeafResult, ...]

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why leaves were unknown, each reason once, in order."""
        return tuple(dict.fromkeys(leaf.reason for leaf in self.leaves if leaf.reason))


def parse_conditions(raw: object, where: str = "conditions") -> Node:
    """The tree for a rule's ``conditions``, whose root must be ``all``, ``any`` or ``not``.

    Raises:
        RuleError: naming the JSON path of the first condition json-rules-engine would refuse.
    """
    if not isinstance(raw, Mapping) or not ({"all", "any", "not"} & raw.keys()):
        raise RuleError(where, "the root must be an `all`, `any` or `not` condition")
    return _parse(raw, where)


def _parse(raw: object, where: str) -> Node:
    if not isinstance(raw, Mapping):
        raise RuleError(where, "a condition must be an object")
    # json-rules-engine looks for `any`, then `all`, then `not`.
    for key in ("any", "all"):
        if key in raw:
            items = raw[key]
            if not isinstance(items, list):
                raise RuleError(f"{where}.{key}", f"`{key}` must be an array")
            children = tuple(_parse(item, f"{where}.{key}[{i}]") for i, item in enumerate(items))
            return AnyOf(children) if key == "any" else All(children)
    if "not" in raw:
        if isinstance(raw["not"], list):
            raise RuleError(f"{where}.not", "`not` takes one condition, not an array")
        return Not(_parse(raw["not"], f"{where}.not"))
    return _leaf(raw, where)


def _leaf(raw: Mapping[str, Any], where: str) -> Leaf:
    for key in ("fact", "operator", "value"):
        if key not in raw:
            raise RuleError(where, f"a condition needs `{key}`")
    if raw["operator"] not in _OPERATORS:
        raise RuleError(
            f"{where}.operator",
            f"unknown operator {raw['operator']!r}; json-rules-engine has {', '.join(OPERATORS)}",
        )
    value = raw["value"]
    if isinstance(value, Mapping) and "fact" in value:
        value = FactRef(
            fact=value["fact"],
            path=value.get("path"),
            params=value.get("params"),
            segments=_segments(value.get("path"), f"{where}.value.path"),
        )
    return Leaf(
        fact=raw["fact"],
        operator=raw["operator"],
        value=value,
        path=raw.get("path"),
        params=raw.get("params"),
        segments=_segments(raw.get("path"), f"{where}.path"),
    )


def _segments(path: object, where: str) -> tuple[str, ...] | None:
    if path is None or path == "":
        return None  # json-rules-engine skips a falsy path
    if not isinstance(path, str):
        raise RuleError(where, "`path` must be a string")
    try:
        return parse_path(path)
    except PathError as exc:
        raise RuleError(where, str(exc)) from None


def facts_used(node: Node) -> frozenset[str]:
    """Every fact the tree reads, on either side of a comparison."""
    if isinstance(node, Leaf):
        extra = {node.value.fact} if isinstance(node.value, FactRef) else set()
        return frozenset({node.fact, *extra})
    if isinstance(node, Not):
        return facts_used(node.child)
    return frozenset().union(*(facts_used(child) for child in node.children))


def evaluate(node: Node, facts: Mapping[str, object]) -> Evaluation:
    """Evaluate ``node`` against one entity's facts (fact name → JSON value or Unknown).

    A fact absent from ``facts`` was not read and is unknown; so is an :class:`Unknown`
    anywhere a condition reads. A ``path`` that matches nothing in a fact that was read is
    JavaScript's ``undefined``, as in json-rules-engine: the field is known to be missing.
    """
    leaves: list[LeafResult] = []
    return Evaluation(_evaluate(node, facts, leaves), tuple(leaves))


def _evaluate(node: Node, facts: Mapping[str, object], leaves: list[LeafResult]) -> Truth:
    if isinstance(node, Leaf):
        leaf = _compare(node, facts)
        leaves.append(leaf)
        return leaf.result
    if isinstance(node, Not):
        result = _evaluate(node.child, facts, leaves)
        return None if result is None else not result
    # Every child is evaluated (no short-circuit) so each leaf can be explained.
    results = [_evaluate(child, facts, leaves) for child in node.children]
    return all_of(results) if isinstance(node, All) else any_of(results)


def all_of(results: Iterable[Truth]) -> Truth:
    """Kleene conjunction: false beats unknown beats true; empty is true."""
    seen = list(results)
    if False in seen:
        return False
    return None if None in seen else True


def any_of(results: Iterable[Truth]) -> Truth:
    """Kleene disjunction: true beats unknown beats false; empty is true, as in the package."""
    seen = list(results)
    if not seen or True in seen:
        return True
    return None if None in seen else False


def _read(fact: str, segments: tuple[str, ...] | None, facts: Mapping[str, object]) -> object:
    if fact not in facts:
        return Unknown(f"fact {fact!r} was not read")
    value = facts[fact]
    if isinstance(value, Unknown) or segments is None:
        return value
    # json-rules-engine walks a path only into objects and arrays; others are used whole.
    return resolve_path(value, segments) if is_object_like(value) else value


def _compare(leaf: Leaf, facts: Mapping[str, object]) -> LeafResult:
    # The general comparison, never a compiled shortcut: this walk is what they are tested on.
    result, seen, compared_to, reason = _general(leaf)(facts)
    return LeafResult(
        fact=leaf.fact,
        operator=leaf.operator,
        value=leaf.value,
        path=leaf.path,
        fact_value=seen,
        compared_to=compared_to,
        result=result,
        reason=reason,
    )


#: What one comparison saw: its result, the fact's value, what it was compared to, and why
#: it is unknown (None when it is not).
Seen: TypeAlias = tuple[Truth, object, object, str | None]
_Comparator: TypeAlias = Callable[[Mapping[str, object]], Seen]
_Combine: TypeAlias = Callable[[Sequence[Seen]], Truth]


def _comparator(leaf: Leaf) -> _Comparator:
    """``leaf`` as a function of the facts, as fast as it can be bound.

    ``equal`` and ``notEqual`` with a scalar constant skip the operator's type dispatch;
    every other leaf is the general comparison.
    """
    constant = leaf.value
    if not isinstance(constant, FactRef) and (equal := _equal_to(constant)) is not None:
        if leaf.operator == "equal":
            return _against_constant(leaf.fact, leaf.segments, constant, equal)
        if leaf.operator == "notEqual":
            return _against_constant(
                leaf.fact, leaf.segments, constant, lambda seen: not equal(seen)
            )
    return _general(leaf)


def _general(leaf: Leaf) -> _Comparator:
    """``leaf`` through its operator, its operator and both sides' reads bound once."""
    compare = _OPERATORS[leaf.operator]
    operator, fact, segments = leaf.operator, leaf.fact, leaf.segments
    ref = leaf.value if isinstance(leaf.value, FactRef) else None
    constant = leaf.value

    def run(facts: Mapping[str, object]) -> Seen:
        seen = _read(fact, segments, facts)
        compared_to = constant if ref is None else _read(ref.fact, ref.segments, facts)
        if isinstance(seen, Unknown) or isinstance(compared_to, Unknown):
            unknown = [v.reason for v in (seen, compared_to) if isinstance(v, Unknown)]
            return None, seen, compared_to, "; ".join(unknown) or None
        result = compare(seen, compared_to)
        if result is None:
            reason = (
                f"{operator} needs an array or a string to search, got a "
                f"{type_name(compared_to)} (json-rules-engine would throw a TypeError)"
            )
            return None, seen, compared_to, reason
        return result, seen, compared_to, None

    return run


def _equal_to(constant: object) -> Callable[[object], bool] | None:
    """``strict_equal(seen, constant)`` for a scalar constant, without its type dispatch.

    None for arrays and objects, which ``===`` compares by identity: the general path.
    """
    if constant is None:
        return lambda seen: seen is None
    if type(constant) in (str, bool):
        kind = type(constant)
        return lambda seen: type(seen) is kind and seen == constant
    if is_number(constant):
        number = float(constant)  # type: ignore[arg-type]
        return lambda seen: is_number(seen) and float(seen) == number  # type: ignore[arg-type]
    return None


def _against_constant(
    fact: str, segments: tuple[str, ...] | None, constant: object, test: Callable[[object], bool]
) -> _Comparator:
    """A comparison of one fact with a constant: only the fact's side can be unknown."""

    def run(facts: Mapping[str, object]) -> Seen:
        seen = _read(fact, segments, facts)
        if isinstance(seen, Unknown):
            return None, seen, constant, seen.reason or None
        return test(seen), seen, constant, None

    return run


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A condition tree made into closures once, to be evaluated for many entities.

    ``leaves`` are the tree's comparisons in written order, as ``evaluate`` reports them;
    ``results`` gives what each saw, in that order.
    """

    leaves: tuple[Leaf, ...]
    _comparators: tuple[_Comparator, ...] = field(repr=False, compare=False)
    _combine: _Combine = field(repr=False, compare=False)

    def results(self, facts: Mapping[str, object]) -> tuple[Truth, list[Seen]]:
        """The tree's result for ``facts`` and what each leaf saw, as ``evaluate`` finds them."""
        seen = [compare(facts) for compare in self._comparators]
        return self._combine(seen), seen


def compile_rule(node: Node) -> CompiledRule:
    """``node`` as closures: every leaf is still evaluated (each is explained), in order."""
    leaves: list[Leaf] = []
    combine = _combiner(node, leaves)
    return CompiledRule(tuple(leaves), tuple(_comparator(leaf) for leaf in leaves), combine)


def _combiner(node: Node, leaves: list[Leaf]) -> _Combine:
    """How ``node`` combines its leaves' results; appends its leaves to ``leaves`` in order."""
    if isinstance(node, Leaf):
        index = len(leaves)
        leaves.append(node)
        return lambda seen: seen[index][0]
    if isinstance(node, Not):
        child = _combiner(node.child, leaves)

        def negate(seen: Sequence[Seen]) -> Truth:
            result = child(seen)
            return None if result is None else not result

        return negate
    first = len(leaves)
    children = [_combiner(child, leaves) for child in node.children]
    join = all_of if isinstance(node, All) else any_of
    if all(isinstance(child, Leaf) for child in node.children):
        # Only leaves below: their results are a slice of the list, in order.
        last = len(leaves)
        return lambda seen: join([item[0] for item in seen[first:last]])
    return lambda seen: join([child(seen) for child in children])
