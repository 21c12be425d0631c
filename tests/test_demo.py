"""The demo's data folder: its own, reused, rebuilt on request, never a folder it did not make."""

from __future__ import annotations

import pytest

from reintegration.demo import MARKER, READY, demo_folder, mark_ready
from reintegration.errors import DemoError


def test_a_new_home_gets_a_marked_demo_folder_to_build(tmp_path):
    folder, build = demo_folder(tmp_path / "var", fresh=False)
    assert folder == tmp_path / "var" / "demo" and build
    assert (folder / MARKER).read_text().startswith("created by `reintegration demo`")


def test_a_ready_demo_folder_is_reused_as_it_is(tmp_path):
    folder, _ = demo_folder(tmp_path, fresh=False)
    (folder / "reintegration.db").write_text("data")
    mark_ready(folder)
    again, build = demo_folder(tmp_path, fresh=False)
    assert again == folder and not build
    assert (folder / "reintegration.db").read_text() == "data"


def test_fresh_rebuilds_the_demo_folder(tmp_path):
    folder, _ = demo_folder(tmp_path, fresh=False)
    (folder / "reintegration.db").write_text("data")
    mark_ready(folder)
    again, build = demo_folder(tmp_path, fresh=True)
    assert build and not (again / "reintegration.db").exists() and not (again / READY).exists()


def test_a_half_built_demo_folder_is_rebuilt(tmp_path):
    folder, _ = demo_folder(tmp_path, fresh=False)
    (folder / "reintegration.db").write_text("interrupted")
    again, build = demo_folder(tmp_path, fresh=False)
    assert build and not (again / "reintegration.db").exists()


@pytest.mark.parametrize("fresh", [False, True])
def test_a_folder_the_demo_did_not_create_is_left_alone(tmp_path, fresh):
    foreign = tmp_path / "demo"
    foreign.mkdir()
    (foreign / "thesis.docx").write_text("years of work")
    with pytest.raises(DemoError) as caught:
        demo_folder(tmp_path, fresh=fresh)
    assert str(caught.value) == (
        f"{foreign} exists but was not created by the demo, so the demo will not use or remove "
        "it: move it away, or set REINTEGRATION_HOME to another folder"
    )
    assert (foreign / "thesis.docx").read_text() == "years of work"
