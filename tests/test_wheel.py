"""The package as a wheel: what a `pip install` outside the checkout gets must hold the files
the commands read at run time (the configs, the face template, the served page and its
assets), and its commands must find their configs from any folder."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.commands import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "astronaut.jpg"

# Each command that reads emotion/conf composes its config and prints it without running.
CONFIG_COMMANDS = {
    "emotion-train": ("emotion.training.app", ["--cfg", "job"]),
    "emotion-eval": ("emotion.evaluate.app", ["some/run", "--print-config"]),
    "emotion-extract": ("emotion.extract.app", ["--cfg", "job"]),
}


def build_wheel(tmp_path: Path) -> Path:
    """Build from a copy of the sources, so the checkout gets no build/ folder; the build
    must warn about nothing (setuptools deprecations become build errors later)."""
    source = tmp_path / "source"
    shutil.copytree(
        ROOT / "emotion", source / "emotion", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation"]
        + ["--verbose", "--wheel-dir", str(tmp_path / "dist")],
        check=True,
        capture_output=True,
        text=True,
    )
    assert "deprecated" not in built.stdout + built.stderr, built.stderr[-3000:]
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
    # FaceLandmarker's model and its licence: current mediapipe wheels ship no model files.
    assert {
        "emotion/assets/face_landmarker.task",
        "emotion/assets/face_landmarker.LICENSE.txt",
    } <= names
    assert "emotion/serve/api.py" in names
    configs = {
        path.relative_to(ROOT).as_posix() for path in (ROOT / "emotion" / "conf").rglob("*.yaml")
    }
    assert "emotion/conf/train.yaml" in configs
    assert configs <= names, sorted(configs - names)


def test_the_installed_wheels_commands_find_their_configs(tmp_path: Path) -> None:
    """Installed without -e, away from the checkout, run from an empty folder."""
    wheel = build_wheel(tmp_path)
    target = tmp_path / "installed"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target)]
        + [str(wheel)],
        check=True,
        capture_output=True,
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    for command, (module, arguments) in CONFIG_COMMANDS.items():
        code = f"import emotion, sys; assert emotion.__file__.startswith({str(target)!r}); "
        code += f"from {module} import main; sys.argv[0] = {command!r}; main()"
        done = subprocess.run(
            [sys.executable, "-c", code, *arguments],
            cwd=empty,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"{command}: {done.stderr[-2000:]}"
        assert "Check that the config directory" not in done.stderr
        assert done.stdout.strip(), command
    assert list(empty.iterdir()) == []  # printing the config writes nothing


def test_the_page_loads_nothing_from_another_origin() -> None:
    """No CDN: the page must work offline, so every asset it loads is one of its own paths."""
    static = ROOT / "emotion" / "serve" / "static"
    page = (static / "index.html").read_text(encoding="utf-8")
    links = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page)
    own = [link for link in links if link.startswith("data:") or link.startswith("/")]
    assert links and own == links and not any(link.startswith("//") for link in links), links
    for path in static.iterdir():
        if not path.is_file():  # vendor/: the npm runtimes, loaded by our own paths
            continue
        text = path.read_text(encoding="utf-8")
        loads = re.findall(
            r"""(?:url\(|import\s*\(?|fetch\(|WebSocket\(|src\s*=)\s*["']?((?:https?:|wss?:)?//[^"')]+)""",
            text,
        )
        assert not loads, f"{path.name} loads {loads}"


@pytest.mark.slow
def test_a_fresh_environment_gets_current_numpy_and_mediapipe_and_every_command_runs(
    tmp_path: Path,
) -> None:
    """`pip install emotion[extract,serve]` from the wheel into an empty virtual environment:
    numpy 2 and mediapipe >= 1.2 come with it, `pip check` is clean, and emotion-extract,
    emotion-train, emotion-predict and emotion-serve work from an empty folder."""
    wheel = build_wheel(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", f"{wheel}[extract,serve]"],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    checked = subprocess.run([str(python), "-m", "pip", "check"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    versions = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; "
         "print(m.version('numpy'), m.version('mediapipe'))"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert int(versions[0].split(".")[0]) >= 2, versions
    assert tuple(int(part) for part in versions[1].split(".")[:2]) >= (1, 2), versions

    work = tmp_path / "empty"
    (work / "photos" / "test" / "neutral").mkdir(parents=True)
    (work / "photos" / "test" / "neutral" / "p1_face.jpg").write_bytes(FIXTURE.read_bytes())
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(venv / "bin" / command[0]), *command[1:]],
            cwd=work, env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert done.returncode == 0, f"{command[0]}: {done.stderr[-3000:]}"
        return done

    run("emotion-extract", "source.root=photos", "output=data/photos.h5", "classes=found")
    assert (work / "data" / "photos.h5").is_file()
    run("emotion-train", "trainer.max_epochs=1", "model.width=16", "model.depth=1",
        "model.head_width=8", "data.synthetic.num_subjects=24", "run_name=smoke")  # fmt: skip
    run_dir = work / "outputs" / "train" / "runs" / "smoke"
    predicted = run("emotion-predict", str(run_dir), "photos", "--output", "p.csv")
    assert (work / "p.csv").read_text().count("\n") == 2, predicted.stdout
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [str(venv / "bin" / "emotion-serve"), str(run_dir), "--port", str(port)],
        cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "not serving"
                time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=30)
