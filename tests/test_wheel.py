"""The package as a wheel: what a `pip install` outside the checkout gets must hold the files
the commands read at run time (the face template, the served page and its assets)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.commands import ROOT


def build_wheel(tmp_path: Path) -> Path:
    """Build from a copy of the sources, so the checkout gets no build/ folder."""
    source = tmp_path / "source"
    shutil.copytree(
        ROOT / "emotion", source / "emotion", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation"]
        + ["--quiet", "--wheel-dir", str(tmp_path / "dist")],
        check=True,
        capture_output=True,
        text=True,
    )
    (wheel,) = (tmp_path / "dist").glob("emotion-*.whl")
    return wheel


def test_the_wheel_ships_the_page_and_its_assets(tmp_path: Path) -> None:
    names = set(zipfile.ZipFile(build_wheel(tmp_path)).namelist())
    static = {
        f"emotion/serve/static/{path.name}"
        for path in (ROOT / "emotion" / "serve" / "static").iterdir()
        if path.is_file()
    }
    assert {"emotion/serve/static/index.html", "emotion/serve/static/app.js"} <= static
    assert static <= names, sorted(static - names)
    assert "emotion/assets/face_template.npz" in names
    assert "emotion/serve/api.py" in names


def test_the_page_loads_nothing_from_another_origin() -> None:
    """No CDN: the page must work offline, so every asset it loads is one of its own paths."""
    static = ROOT / "emotion" / "serve" / "static"
    page = (static / "index.html").read_text(encoding="utf-8")
    links = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page)
    own = [link for link in links if link.startswith("data:") or link.startswith("/")]
    assert links and own == links and not any(link.startswith("//") for link in links), links
    for path in static.iterdir():
        text = path.read_text(encoding="utf-8")
        loads = re.findall(
            r"""(?:url\(|import\s*\(?|fetch\(|WebSocket\(|src\s*=)\s*["']?((?:https?:|wss?:)?//[^"')]+)""",
            text,
        )
        assert not loads, f"{path.name} loads {loads}"
