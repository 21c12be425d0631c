"""Content hashes: the first 32 hex digits of the SHA-256 that stores before the cut to 128 bits
hold in full, so a file ingested by an older version is still found as a duplicate."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

from reintegration.prepare import content_hashes


def test_a_content_hash_is_the_start_of_the_sha256_of_the_canonical_values():
    metadata = {
        "submission_id": pa.array(["s-1", "s-2"]),
        "returnee_id": pa.array(["C-1", "C-2"]),
        "sex": pa.array(["female", "male"]),
        "country": pa.array(["SEN", ""]),
    }
    codes = {"b_item": pa.array(["x", ""]), "a_item": pa.array(["y z", "w"])}
    keys = np.array(["k1", "k2"], dtype=object)
    header = "\x1f".join(["country", "sex", "a_item", "b_item"]) + "\x1e"
    texts = ["k1\x1fSEN\x1ffemale\x1fy z\x1fx", "k2\x1f\x1fmale\x1fw\x1f"]
    legacy = [hashlib.sha256((header + t).encode()).hexdigest() for t in texts]
    assert content_hashes(metadata, codes, keys).tolist() == [h[:32] for h in legacy]
