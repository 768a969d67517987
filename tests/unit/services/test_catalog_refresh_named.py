"""A refresh of the models a webhook named: only they are read, and the bytes are a full read's.

The periodic full read stays the reconciliation: it alone removes a model that is gone (and
the drop guard judges it), and it is made instead whenever there is nothing live to patch.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from support.domain import registered_model
from support.fakes import FakeRegistry, catalog_service
from support.timing import eventually
from trellis.services.catalog_refresh import NAMED_READS_MAX, with_models
from trellis.sources.snapshot_file import SnapshotFile

FLEET = tuple(registered_model(f"model-{i}", tags={"system": f"s{i % 2}"}) for i in range(5))


#: Full reads due only once an hour: what is read in between is read by name.
service = partial(catalog_service, interval=3_600.0)


def test_a_named_refresh_reads_that_model_alone_and_serves_a_full_reads_bytes(tmp_path):
    registry = FakeRegistry(FLEET)
    catalog = service(tmp_path, registry)
    catalog.refresh()
    changed = replace(FLEET[2], description="retrained", tags={"system": "new"})
    added = registered_model("model-10")
    registry.models = tuple(sorted((*FLEET[:2], changed, *FLEET[3:], added), key=lambda m: m.name))

    named = catalog.refresh_models({changed.name, added.name})

    assert registry.full_reads == 1 and registry.asked_models == [("model-10", "model-2")]
    assert named is not None
    whole = service(tmp_path / "whole", registry).refresh()
    assert whole is not None
    assert (named.yaml, named.yaml_etag, named.json) == (whole.yaml, whole.yaml_etag, whole.json)
    assert catalog.snapshot().models == registry.models
    assert SnapshotFile(tmp_path / "snapshot.json").load().models == registry.models


def test_a_named_refresh_that_changes_nothing_writes_nothing(tmp_path):
    registry = FakeRegistry(FLEET)
    catalog = service(tmp_path, registry)
    served = catalog.refresh()
    kept = (tmp_path / "snapshot.json").stat()
    assert catalog.refresh_models({FLEET[1].name}) is served  # the same document
    assert registry.asked_models == [(FLEET[1].name,)]
    again = (tmp_path / "snapshot.json").stat()  # written anew, it would be a new file
    assert (again.st_ino, again.st_mtime_ns) == (kept.st_ino, kept.st_mtime_ns)


def test_a_named_refresh_never_removes_a_model_only_a_full_read_does(tmp_path):
    registry = FakeRegistry(FLEET)
    catalog = service(tmp_path, registry)
    catalog.refresh()
    registry.models = FLEET[1:]
    catalog.refresh_models({FLEET[0].name})
    assert catalog.document().model_count == 5
    catalog.refresh()
    assert catalog.document().model_count == 4


def test_a_full_read_is_made_when_there_is_nothing_to_patch_or_no_filter_for_a_name(tmp_path):
    registry = FakeRegistry(FLEET)
    catalog = service(tmp_path, registry)
    catalog.refresh_models({"model-1"})  # nothing read yet
    assert registry.full_reads == 1 and registry.asked_models == []
    catalog.refresh_models({"it's"})
    assert registry.full_reads == 2 and registry.asked_models == [("it's",)]


def test_more_named_models_than_a_read_by_name_may_ask_for_are_read_in_full(tmp_path):
    registry = FakeRegistry(FLEET)
    catalog = service(tmp_path, registry)
    catalog.refresh()
    names = {f"model-{i}" for i in range(NAMED_READS_MAX + 1)}
    catalog.refresh_models(names)
    assert registry.full_reads == 2 and registry.asked_models == []
    catalog.refresh_models(set(sorted(names)[:NAMED_READS_MAX]))
    assert registry.full_reads == 2 and len(registry.asked_models) == 1


def test_a_burst_of_webhooks_asks_for_one_full_read_instead_of_a_growing_list(tmp_path):
    registry = FakeRegistry(FLEET)
    catalog = service(tmp_path, registry)
    for i in range(NAMED_READS_MAX * 3):
        catalog.refresh_model_soon(f"model-{i}")
    assert len(catalog._named) == NAMED_READS_MAX and catalog._full_asked


def test_the_loop_reads_named_models_between_full_reads_and_all_when_asked(tmp_path):
    registry = FakeRegistry(FLEET)
    catalog = service(tmp_path, registry)
    catalog.start()
    try:
        assert eventually(lambda: registry.full_reads == 1)
        catalog.refresh_model_soon("model-3")
        assert eventually(lambda: registry.asked_models == [("model-3",)])
        assert registry.full_reads == 1
        catalog.refresh_soon()  # no model named: everything is read
        assert eventually(lambda: registry.full_reads == 2)
    finally:
        catalog.stop()


def test_models_replace_those_of_their_name_and_new_ones_keep_the_name_order():
    snapshot = replace(FakeRegistry(FLEET).read(), models=FLEET)
    changed = replace(FLEET[1], description="changed")
    result = with_models(snapshot, [changed, registered_model("model-15")])
    assert [m.name for m in result.models] == ["model-0", "model-1", "model-15", "model-2",
                                               "model-3", "model-4"]  # fmt: skip
    assert result.models[1] is changed
    assert with_models(snapshot, []) is snapshot
