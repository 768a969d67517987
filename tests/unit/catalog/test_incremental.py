"""The incremental catalog gives exactly the full rebuild's entities, bytes and ETags.

A random walk over a synthetic registry: each step makes one change (a model added,
deleted, renamed into a colliding name, its tags, aliases, versions or system changed, an
adapter or a server added or removed) and the builder that kept everything from the steps
before must answer what a full ``build_catalog`` + ``CatalogDocument.build`` answers.
"""

from __future__ import annotations

import random
from dataclasses import replace

from support.domain import T0, model_server, open_model, regional_adapter, registered_model
from trellis.catalog import CatalogBuilder, CatalogDocument, CatalogOptions, build_catalog
from trellis.model import ModelVersion, RegisteredModel, Snapshot

OPTIONS = CatalogOptions(mlflow_ui_url="http://mlflow.example:5000")
#: Names that fold to the same entity name, so adding one moves another's hash suffix.
CLASHING = ["Fraud Model", "fraud model", "FRAUD MODEL", "fraud_model", "fraud-model", "x" * 70]
SYSTEMS = ["payments", "Payments!", "search", "名前", ""]
OWNERS = ["group:default/risk", "team a", "user:jdoe", "!!!", ""]


def model(rng: random.Random, name: str) -> RegisteredModel:
    """A model with a random system, owner, tags, versions and maybe a champion."""
    versions = rng.randint(0, 3)
    tags = {"owner": rng.choice(OWNERS), "system": rng.choice(SYSTEMS),
            "tags": rng.choice(["", "a,b", "Fraud,ML!"]),
            "source_repo": rng.choice(["", "https://github.com/acme/repo"])}  # fmt: skip
    aliases = {"champion": rng.randint(1, versions)} if versions and rng.random() < 0.5 else {}
    return registered_model(name, tags=tags, aliases=aliases, versions=versions)


def server(rng: random.Random, models: list[RegisteredModel], number: int):
    """A server of a random model (or of none), in one of two clusters."""
    target = rng.choice([*models, None]) if models else None
    return replace(
        model_server(rng.choice(["eu", "us"]), f"server-{number}"),
        model_name=target.name if target is not None else "ghost",
        model_version=rng.choice(["1", "champion", None]),
    )


def edit(rng: random.Random, old: RegisteredModel, action: str, step: int) -> RegisteredModel:
    """One model changed in the way ``action`` names."""
    if action == "tags":
        return replace(old, tags={**old.tags, "framework": rng.choice(["torch", "!"])})
    if action == "aliases":
        return replace(old, aliases={} if old.aliases else {"champion": 1})
    if action == "versions":
        number = len(old.versions) + 1
        extra = ModelVersion(old.name, number, "READY", "s3://b/x", None, "", {}, T0, T0)
        return replace(old, versions=(*old.versions, extra))
    if action == "system":
        return replace(old, tags={**old.tags, "system": rng.choice(SYSTEMS)})
    return replace(old, description=f"changed at step {step}")


def add_adapter(rng: random.Random, models: list[RegisteredModel], step: int) -> None:
    """A regional adapter of a base model (added when there is none) or of any model."""
    bases = [m for m in models if m.kind == "base"] or [open_model(f"base-{step}")]
    if bases[0] not in models:
        models.append(bases[0])
    parent = rng.choice([*bases, models[0]]).name
    models.append(regional_adapter(f"{parent}-{step}", parent, rng.choice(["eu", "us"])))


def change(rng: random.Random, models: list[RegisteredModel], servers: list, step: int) -> str:
    """Change the registry in one random way; what was done, for a failure's message."""
    action = rng.choice(
        ["add", "add clashing", "delete", "tags", "aliases", "versions", "system", "description",
         "adapter", "server", "unserve", "refetch"]
    )  # fmt: skip
    names = {m.name for m in models}
    free = [n for n in CLASHING if n not in names]
    if action == "add" or not models:
        models.append(model(rng, f"added-{step}"))
    elif action == "add clashing":
        models.append(model(rng, rng.choice(free) if free else f"Model {step}"))
    elif action == "delete":
        models.pop(rng.randrange(len(models)))
    elif action == "adapter":
        add_adapter(rng, models, step)
    elif action == "server":
        servers.append(server(rng, models, step))
    elif action == "unserve" and servers:
        servers.pop(rng.randrange(len(servers)))
    elif action == "refetch":  # the same content read again: new, equal objects
        models[:] = [replace(m) for m in models]
    else:
        i = rng.randrange(len(models))
        models[i] = edit(rng, models[i], action, step)
    return action


def full(snapshot: Snapshot) -> CatalogDocument:
    catalog = build_catalog(snapshot, OPTIONS)
    return CatalogDocument.build(catalog, taken_at=T0, model_count=len(snapshot.models))


def test_every_random_change_gives_the_full_rebuilds_bytes_etags_and_problems():
    rng = random.Random(18)
    models = [model(rng, f"model-{i}") for i in range(40)] + [model(rng, CLASHING[0])]
    servers: list = []
    builder = CatalogBuilder(OPTIONS)
    rendered = []
    for step in range(150):
        action = change(rng, models, servers, step)
        snapshot = Snapshot(
            models=tuple(sorted(models, key=lambda m: m.name)),
            taken_at=T0,
            registry="sqlite:///x",
            deployments=tuple(servers),
        )
        catalog = builder.build(snapshot)
        document = CatalogDocument.build(
            catalog, taken_at=T0, model_count=len(models), cache=builder.render_cache
        )
        expected_catalog = build_catalog(snapshot, OPTIONS)
        expected = full(snapshot)
        why = f"step {step}: {action}"
        assert catalog == expected_catalog, why
        assert document.yaml == expected.yaml, why
        assert document.json == expected.json, why
        assert (document.yaml_etag, document.json_etag) == (
            expected.yaml_etag,
            expected.json_etag,
        ), why
        rendered.append(builder.render_cache.rendered)
    # Unchanged entities were not rendered again: most steps render a handful at most.
    assert sorted(rendered)[len(rendered) // 2] <= 3, rendered


def test_a_new_clashing_name_renames_the_model_that_had_the_plain_name():
    first = registered_model("fraud-model")
    other = registered_model("Fraud Model")
    builder = CatalogBuilder(OPTIONS)
    before = builder.build(Snapshot(models=(first,), taken_at=T0, registry="r"))
    after = builder.build(Snapshot(models=(other, first), taken_at=T0, registry="r"))
    names = {e["metadata"]["title"]: e["metadata"]["name"] for e in after.entities}
    assert [e["metadata"]["name"] for e in before.entities] == ["fraud-model"]
    assert names["fraud-model"] == "fraud-model" and names["Fraud Model"].startswith("fraud-model-")
    snapshot = Snapshot(models=(other, first), taken_at=T0, registry="r")
    assert after == build_catalog(snapshot, OPTIONS)
