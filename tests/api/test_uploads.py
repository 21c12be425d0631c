"""The background uploads the API and the dashboard share."""

from __future__ import annotations

import threading

import pytest

from api.uploads import UploadError, _estimate_rows
from reintegration.batch_views import get_batch


def test_submit_answers_the_batch_id_and_wait_the_report(fresh, batch_file, tmp_path):
    folder = tmp_path / "upload-1"
    folder.mkdir()
    path = batch_file({}, {}, name="b.csv").rename(folder / "b.csv")
    uploads = fresh.services.uploads

    batch_id = uploads.submit(path, "b.csv", _user(fresh, "enumerator"))
    done = uploads.wait(batch_id, 30)

    assert done is not None and done.report is not None
    assert done.report.batch_id == batch_id and done.report.accepted == 2
    assert uploads.progress(batch_id) == 1.0
    assert get_batch(fresh.services.engine, batch_id)["status"] == "done"
    assert not folder.exists()  # the upload owns its folder and removes it


def test_uploads_submitted_together_get_their_own_batches(fresh, batch_file, tmp_path):
    paths = []
    for k in range(3):
        folder = tmp_path / f"u{k}"
        folder.mkdir()
        paths.append(
            batch_file({"submission_id": f"s{k}", "returnee_id": f"R{k}"}, name=f"{k}.csv").rename(
                folder / f"{k}.csv"
            )
        )
    ids: list[str] = []
    user = _user(fresh, "analyst")
    threads = [
        threading.Thread(
            target=lambda p=p: ids.append(fresh.services.uploads.submit(p, p.name, user))
        )
        for p in paths
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(set(ids)) == 3
    names = set()
    for batch_id in ids:
        assert fresh.services.uploads.wait(batch_id, 30) is not None
        names.add(get_batch(fresh.services.engine, batch_id)["file_name"])
    assert names == {"0.csv", "1.csv", "2.csv"}


def test_an_upload_that_stops_before_its_record_raises(fresh, tmp_path):
    missing = tmp_path / "gone" / "x.csv"
    missing.parent.mkdir()

    with pytest.raises(UploadError, match="internal error"):
        fresh.services.uploads.submit(missing, "x.csv", _user(fresh, "analyst"))


def test_progress_of_a_batch_not_submitted_here_is_unknown(fresh):
    assert fresh.services.uploads.progress("not-here") is None
    assert fresh.services.uploads.wait("not-here", 0.01) is None


def test_rows_are_estimated_from_lines_for_text_files(tmp_path):
    csv_file = tmp_path / "a.csv"
    csv_file.write_text("h\n1\n2\n3\n")
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text('{"a": 1}\n{"a": 2}\n')
    binary = tmp_path / "a.bin"
    binary.write_bytes(b"\x00\x01")

    assert _estimate_rows(csv_file) == 3
    assert _estimate_rows(jsonl) == 2
    assert _estimate_rows(binary) is None


def _user(stack, name):
    from reintegration.users import authenticate

    return authenticate(stack.services.engine, stack.tokens[name])


def test_a_stored_batch_has_the_analytics_frame_reloaded_in_the_background(fresh, batch_file):
    import time

    from tests.api.test_batches import upload

    loaded = []
    analytics = fresh.services.analytics
    original = analytics.frame

    def frame(label):
        loaded.append((analytics.data_version(), label))
        return original(label)

    analytics.frame = frame
    fresh.services.warm = True
    upload(fresh, "analyst", batch_file({}), wait=30)
    deadline = time.monotonic() + 10
    while not loaded and time.monotonic() < deadline:
        time.sleep(0.02)

    assert loaded and loaded[-1][1] == "rss-v1-provisional"
    assert loaded[-1][0] >= 1  # the data version of the stored batch
