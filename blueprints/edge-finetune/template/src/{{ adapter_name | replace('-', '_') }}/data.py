"""The regional training rows: read in the region, fingerprinted, split, never sent anywhere.

A row is a JSON object with `text`, or with `prompt` and `completion`. Rows come from a local
path or from the region's bucket (`s3://` or `gs://`); a bucket outside the region is refused
before anything is read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

Row = dict[str, Any]

SAMPLE = Path(__file__).resolve().parent / "sample_data" / "regional_sample.jsonl"


class DataError(ValueError):
    """The data cannot be used: unreadable, malformed, or outside the region."""


def parse(text: str, where: str) -> list[Row]:
    """Rows of a JSONL text; blank lines are skipped, anything else must be a valid row."""
    rows: list[Row] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}:{number}: not JSON ({exc.msg})") from exc
        if not isinstance(row, dict) or not (
            isinstance(row.get("text"), str)
            or (isinstance(row.get("prompt"), str) and isinstance(row.get("completion"), str))
        ):
            raise DataError(f"{where}:{number}: a row needs `text`, or `prompt` and `completion`")
        rows.append(row)
    if not rows:
        raise DataError(f"{where}: no rows")
    return rows


def _bucket_text(location: str, region: str) -> str:
    """Read one object from the region's bucket with the cloud SDK (the `cloud` extra)."""
    scheme, _, rest = location.partition("://")
    bucket, _, key = rest.partition("/")
    if scheme == "s3":
        import boto3

        s3 = boto3.client("s3", region_name=region)
        where = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") or "us-east-1"
        if where != region:
            raise DataError(f"{location} is in {where}, not in {region}: refusing to read it")
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body.decode("utf-8")
    if scheme == "gs":
        from google.cloud import storage

        found = storage.Client().get_bucket(bucket)
        if found.location.lower() != region.lower():
            raise DataError(f"{location} is in {found.location}, not in {region}: refusing it")
        return found.blob(key).download_as_text(encoding="utf-8")
    raise DataError(f"{location}: use a local path, s3:// or gs://")


def read(location: str, region: str) -> list[Row]:
    """The rows at ``location``: a local path, or an object in the region's bucket."""
    if "://" in location:
        return parse(_bucket_text(location, region), location)
    path = Path(location)
    if not path.is_file():
        raise DataError(f"{location}: no such file")
    return parse(path.read_text(encoding="utf-8"), location)


def canonical(row: Row) -> str:
    """One row as canonical JSON (sorted keys, no spaces): what the fingerprint hashes."""
    return json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(rows: Sequence[Row]) -> str:
    """SHA-256 over the rows in order, one canonical JSON line each: names the data, holds none."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(canonical(row).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def text_of(row: Row) -> str:
    """The text a causal language model learns from a row."""
    if isinstance(row.get("text"), str):
        return str(row["text"])
    return f"{row['prompt']}{row['completion']}"


def split(rows: Sequence[Row], holdout_fraction: float, seed: int) -> tuple[list[Row], list[Row]]:
    """(training rows, hold-out rows), chosen by a hash of each row: stable across runs."""
    train: list[Row] = []
    holdout: list[Row] = []
    for row in rows:
        digest = hashlib.sha256(f"{seed}:{canonical(row)}".encode()).digest()
        share = int.from_bytes(digest[:8], "big") / 2**64
        (holdout if share < holdout_fraction else train).append(row)
    if not train or not holdout:
        raise DataError(
            f"{len(rows)} rows split into {len(train)} for training and {len(holdout)} held out: "
            "both need at least one row (add rows or change holdout_fraction)"
        )
    return train, holdout
