"""Names of received files: plain names, whatever the client sent."""

from __future__ import annotations

import pytest

from api.receive import safe_file_name


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("batch.csv", "batch.csv"),
        ("C:\\Users\\x\\batch 1.csv", "batch 1.csv"),
        ("../../etc/passwd", "passwd"),
        ("", "upload"),
        ("\x00.csv", "upload.csv"),
        ("...", "upload"),
        ("a\r\nb.csv", "ab.csv"),
        ("x" * 300 + ".csv", "x" * 200),
    ],
)
def test_a_received_file_keeps_a_plain_name(sent, kept):
    assert safe_file_name(sent) == kept


def test_a_file_name_with_folders_is_stored_under_its_last_part(fresh, batch_file):
    from tests.api.test_batches import upload

    report = upload(fresh, "enumerator", batch_file({}), wait=30, name="../../x/evil.csv").json()

    assert (
        fresh.get(f"/api/v1/batches/{report['batch_id']}", "enumerator").json()["file_name"]
        == "evil.csv"
    )
