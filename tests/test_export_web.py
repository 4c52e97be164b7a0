"""`emotion-export RUN --web DIR` as a user runs it: the folder it writes, and its refusals
(the page in a browser: tests/test_export_web_browser.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from emotion.export.web import PAGE_FILES, VENDOR_FILES
from tests.commands import ROOT, emotion
from tests.test_export import _checkpoint


def export_web_cli(model: Path, folder: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cwd = next(parent for parent in folder.parents if parent.is_dir())
    return emotion("emotion.export", str(model), "--web", str(folder), *extra, cwd=cwd)


def _refused(done: subprocess.CompletedProcess[str], what: str) -> None:
    """Exit 2 with one `error:` line naming `what` and one `fix:` line, no traceback."""
    assert done.returncode == 2, done.stderr[-2000:]
    lines = [line.strip() for line in done.stderr.strip().splitlines()]
    assert lines[-2].startswith("error: ") and what in lines[-2], done.stderr
    assert lines[-1].startswith("fix: "), done.stderr
    assert "Traceback" not in done.stderr


def _leftovers(parent: Path) -> list[str]:
    return sorted(path.name for path in parent.iterdir() if ".partial" in path.name)


# ---------- the CLI ----------


@pytest.mark.slow  # a whole export: torch, onnx and its check
def test_the_folder_holds_the_page_its_runtimes_and_the_model(tmp_path: Path) -> None:
    """--overwrite replaces a folder that holds something; nothing of the old one remains."""
    checkpoint = _checkpoint(tmp_path / "m.ckpt", "nose_unit", True)
    site = tmp_path / "site"
    site.mkdir()
    (site / "old.txt").write_text("an earlier page")
    done = export_web_cli(checkpoint, site, "--overwrite")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sends nothing anywhere" in done.stdout
    files = {str(path.relative_to(site)) for path in site.rglob("*") if path.is_file()}
    expected = {*PAGE_FILES, *(f"vendor/{name}" for name in VENDOR_FILES)}
    expected |= {"model.onnx", "model.json", "face_landmarker.task"}
    assert expected <= files and "old.txt" not in files, sorted(files)
    assert _leftovers(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == [
        "m.ckpt",
        "site",
    ]
    info = json.loads((site / "model.json").read_text())
    assert info["onnx"] == "model.onnx" and str(tmp_path) not in json.dumps(info)
    assert info["page"]["needs_reference"] is False and info["page"]["positive_class"] == "anxious"
    assert list(info["inputs"]) == ["landmarks", "image_size"]
    # Every URL the page names is relative: a CDN or an absolute path would leave the folder.
    links = re.findall(r'(?:src|href)="([^"]*)"', (site / "index.html").read_text())
    links += re.findall(r"from '([^']*)'", (site / "app.js").read_text())
    assert len(links) >= 4 and all(
        link == "data:," or (not link.startswith("/") and "//" not in link) for link in links
    ), links


def test_a_folder_that_holds_something_is_refused_and_kept(tmp_path: Path) -> None:
    checkpoint = _checkpoint(tmp_path / "m.ckpt", "nose_unit", False)
    site = tmp_path / "site"
    site.mkdir()
    (site / "notes.txt").write_text("mine")
    _refused(export_web_cli(checkpoint, site), "is not empty")
    assert [p.name for p in site.iterdir()] == ["notes.txt"] and _leftovers(tmp_path) == []
    # --overwrite replaces a folder, never a file of that name.
    notes = site / "notes.txt"
    _refused(export_web_cli(checkpoint, notes, "--overwrite"), "is not a folder")
    assert notes.read_text() == "mine"


@pytest.mark.slow  # a whole export: torch, onnx and its check
def test_a_model_the_graph_cannot_hold_leaves_no_folder(tmp_path: Path) -> None:
    """Procrustes is refused after the work has started (in a DIR whose parent is new):
    no DIR, no half-made folder."""
    checkpoint = _checkpoint(tmp_path / "m.ckpt", "procrustes", False)
    _refused(export_web_cli(checkpoint, tmp_path / "new" / "site"), "ONNX operator")
    assert list((tmp_path / "new").iterdir()) == []


def test_web_with_output_is_refused(tmp_path: Path) -> None:
    checkpoint = _checkpoint(tmp_path / "m.ckpt", "nose_unit", False)
    _refused(export_web_cli(checkpoint, tmp_path / "site", "--output", "x.onnx"), "--web")
    assert not (tmp_path / "site").exists()


def test_a_package_without_the_browser_runtimes_says_how_to_get_them(tmp_path: Path) -> None:
    """An installed package whose vendor folder npm never filled (a copy of it, here)."""
    checkpoint = _checkpoint(tmp_path / "m.ckpt", "nose_unit", False)
    installed = tmp_path / "installed"
    shutil.copytree(
        ROOT / "emotion",
        installed / "emotion",
        ignore=shutil.ignore_patterns("vendor", "__pycache__"),
    )
    done = subprocess.run(
        [sys.executable, "-m", "emotion.export", str(checkpoint), "--web", str(tmp_path / "s")],
        cwd=installed,
        env={**os.environ, "PYTHONPATH": str(installed)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    _refused(done, "browser runtimes are not installed")
    assert "make setup" in done.stderr and "web/vendor.sh" in done.stderr
    assert not (tmp_path / "s").exists()
