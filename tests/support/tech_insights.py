"""Strict models of the JSON that Backstage's Tech Insights frontend reads.

They mirror the types of ``@backstage-community/plugin-tech-insights-common``
(``types/checks.ts`` and ``types/facts.ts``), which its ``TechInsightsClient`` returns
unchanged from ``GET /checks``, ``POST /checks/run/:namespace/:kind/:name`` and
``POST /checks/run``. Every model forbids keys the TypeScript type does not declare, refuses
``null`` where the type has an optional field (``metadata?: ...`` is absent or an object),
and takes no type coercion. Keys the TypeScript types lack but the reference backend
(``@backstage-community/plugin-tech-insights-backend-module-jsonfc``) always sends are allowed
and named where they are: ``rule`` on a check.

Use :func:`parse_check_results` and friends; they raise :class:`pydantic.ValidationError`
naming the offending path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    model_validator,
)

__all__ = [
    "FACT_RESPONSE_TYPES",
    "BulkCheckEntry",
    "Check",
    "CheckLink",
    "CheckResponse",
    "CheckResult",
    "FactValue",
    "JsonRule",
    "parse_bulk_check_response",
    "parse_check_results",
    "parse_checks",
]

FACT_RESPONSE_TYPES = ("integer", "float", "string", "boolean", "datetime", "set")
"""``FactResponse[name].type`` in tech-insights-common."""

FactType = Literal["integer", "float", "string", "boolean", "datetime", "set", "object"]
"""The six types of ``FactResponse`` plus ``object``.

``FactSchema`` (the same package) allows ``object``, and the reference backend builds each
result's facts as ``{value, ...schema[name]}`` (``constructFactInformationResponse`` in
``JsonRulesEngineFactChecker.ts``), so it sends ``type: "object"`` for an object fact although
``FactResponse``'s union leaves it out. The value must then be a JSON object.
"""

NonEmpty = Annotated[StrictStr, Field(min_length=1)]

_TOP_LEVEL_CONDITIONS = frozenset({"all", "any", "not", "condition"})
"""json-rules-engine's ``TopLevelCondition``: exactly one of these, plus ``name``/``priority``."""


class _Strict(BaseModel):
    """No unknown keys, no coercion, and no ``null`` standing in for an absent optional key."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = sorted(key for key, value in data.items() if value is None)
            if nulls:
                msg = f"null is not a value of {', '.join(nulls)} (leave an optional key out)"
                raise ValueError(msg)
        return data


class CheckLink(_Strict):
    """``CheckLink``."""

    title: StrictStr
    url: NonEmpty


class JsonRule(_Strict):
    """``rule`` of a json-rules-engine check: only ``conditions``, as jsonfc returns it."""

    conditions: dict[str, Any]

    @model_validator(mode="after")
    def _one_top_level_condition(self) -> JsonRule:
        keys = set(self.conditions)
        tops = keys & _TOP_LEVEL_CONDITIONS
        if len(tops) != 1 or keys - _TOP_LEVEL_CONDITIONS - {"name", "priority"}:
            msg = f"conditions must have exactly one of all/any/not/condition, got {sorted(keys)}"
            raise ValueError(msg)
        return self


class CheckResponse(_Strict):
    """``CheckResponse`` (a result's ``check``), plus jsonfc's ``rule``."""

    id: NonEmpty
    type: Literal["json-rules-engine"]
    name: NonEmpty
    description: StrictStr
    factIds: list[NonEmpty]
    metadata: dict[str, Any] | None = None
    links: list[CheckLink] | None = None
    rule: JsonRule | None = None


class Check(CheckResponse):
    """``Check`` as ``GET /checks`` lists it (jsonfc's ``TechInsightJsonRuleCheck``)."""

    successMetadata: dict[str, Any] | None = None
    failureMetadata: dict[str, Any] | None = None
    filter: dict[str, Any] | list[dict[str, Any]] | None = None
    rule: JsonRule  # required for a json-rules-engine check


FactScalar = StrictBool | StrictInt | StrictFloat | StrictStr


class FactValue(_Strict):
    """One entry of ``FactResponse`` (keyed by fact name)."""

    id: NonEmpty
    type: FactType
    description: StrictStr
    value: FactScalar | list[Any] | dict[str, Any]
    since: StrictStr | None = None
    metadata: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _value_has_its_type(self) -> FactValue:
        value = self.value
        fits = {
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, int | float) and not isinstance(value, bool),
            "string": isinstance(value, str),
            "boolean": isinstance(value, bool),
            "datetime": isinstance(value, str) and _is_iso_datetime(value),
            "set": isinstance(value, list),
            "object": isinstance(value, dict),
        }[self.type]
        if not fits:
            msg = f"value {value!r} is not of the fact's type {self.type!r}"
            raise ValueError(msg)
        return self


class CheckResult(_Strict):
    """``BooleanCheckResult``: the only kind the default frontend renders."""

    facts: dict[str, FactValue]
    check: CheckResponse
    result: StrictBool


class BulkCheckEntry(_Strict):
    """One element of ``BulkCheckResponse`` (``POST /checks/run``)."""

    entity: NonEmpty
    results: list[CheckResult]


def _is_iso_datetime(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


_CHECKS = TypeAdapter(list[Check])
_RESULTS = TypeAdapter(list[CheckResult])
_BULK = TypeAdapter(list[BulkCheckEntry])


def parse_checks(data: Any) -> list[Check]:
    """Parse a ``GET /checks`` answer (``Check[]``)."""
    return _CHECKS.validate_python(data)


def parse_check_results(data: Any) -> list[CheckResult]:
    """Parse a ``POST /checks/run/:namespace/:kind/:name`` answer (``CheckResult[]``)."""
    return _RESULTS.validate_python(data)


def parse_bulk_check_response(data: Any) -> list[BulkCheckEntry]:
    """Parse a ``POST /checks/run`` answer (``BulkCheckResponse``)."""
    return _BULK.validate_python(data)
