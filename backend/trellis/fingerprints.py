"""A fast fingerprint of Python values: equal fingerprints mean equal values.

Both the scorer (is an entity's input what the last run scored?) and the fact store (is a
row what was last written?) skip work on it.
"""

from __future__ import annotations

import hashlib
import pickle

__all__ = ["fingerprint"]


def fingerprint(*values: object) -> bytes | None:
    """16 bytes that are equal only for equal values; None for what pickle cannot take.

    Pickle writes the whole value with its types, so ``True``, ``1`` and ``1.0`` differ, as
    they do in JSON and to the checks. Unequal fingerprints prove nothing (key order,
    shared objects): a miss means "do the work", never "skip it". Pickling takes a third of
    the time of JSON encoding.
    """
    try:
        return hashlib.blake2b(pickle.dumps(values, protocol=5), digest_size=16).digest()
    except Exception:  # anything pickle cannot take is never taken as unchanged
        return None
