"""What emotion-export, emotion-eval and emotion-summary write, under faults and bad input:
output folders that cannot be written, links at the export's sidecar names, a baseline graph
given no reference photo, two evaluations into one folder, a truncated metrics.json
(docs/reliability.md)."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.commands import emotion, unwritable
from tests.trained_run import eval_config


def test_export_to_a_folder_it_cannot_write_is_refused_before_the_export(
    synthetic_run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`emotion-export`'s own main in this process: a traceback after the whole export
    before (PermissionError, or FileExistsError), now error:/fix: naming the output, exit 2."""
    pytest.importorskip("onnxruntime", reason="needs the export extra")
    from emotion.export.app import main

    run_dir, _ = synthetic_run
    output = unwritable(tmp_path) / "model.onnx"
    with pytest.raises(SystemExit) as stopped:
        main([str(run_dir), "--output", str(output)])
    stderr = capsys.readouterr().err
    assert stopped.value.code == 2, stderr
    assert f"cannot write --output {output}" in stderr and "fix:" in stderr
    assert stderr.count("error:") == 1 and "SYNTHETIC" not in stderr, "refused before loading"


def test_eval_into_a_folder_it_cannot_write_is_refused_before_scoring(
    synthetic_run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from emotion.evaluate.app import main

    run_dir, _ = synthetic_run
    output_dir = unwritable(tmp_path) / "eval"
    with pytest.raises(SystemExit) as stopped:
        main([str(run_dir), f"output_dir={output_dir}", "bootstrap.resamples=20"])
    stderr = capsys.readouterr().err
    assert stopped.value.code == 2, stderr
    assert f"cannot write output_dir={output_dir}" in stderr and "fix:" in stderr
    assert stderr.count("error:") == 1
    assert not list(run_dir.glob("eval*")), "nothing was written into the run"


def test_torch_export_and_the_graph_never_share_a_file(synthetic_run, tmp_path: Path) -> None:
    """`--torch-export` writes `<name>.pt2` beside `<name>.onnx` and `<name>.json`. Links
    planted at the .pt2 and .json names pointing at the graph were written through (the graph
    became a zip archive, then JSON); each file is now renamed into place, replacing a link."""
    onnxruntime = pytest.importorskip("onnxruntime", reason="needs the export extra")
    from emotion.export.app import main
    from emotion.export.onnx import deployable, example_inputs
    from emotion.inference.ensemble import load_model

    run_dir, _ = synthetic_run
    graph = tmp_path / "m.onnx"
    for name in ("m.pt2", "m.json"):
        (tmp_path / name).symlink_to(graph)
    main([str(run_dir), "--output", str(graph), "--torch-export"])
    assert graph.read_bytes()[:2] != b"PK" and not graph.read_bytes().startswith(b"{")
    module = deployable(load_model(str(run_dir)))
    inputs = example_inputs(module, 5, seed=7)
    session = onnxruntime.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    (from_onnx,) = session.run(["probabilities"], {k: v.numpy() for k, v in inputs.items()})
    for name in ("m.onnx", "m.pt2", "m.json"):
        path = tmp_path / name
        assert path.is_file() and not path.is_symlink(), name
    assert sorted(path.name for path in tmp_path.iterdir()) == ["m.json", "m.onnx", "m.pt2"]
    info = json.loads((tmp_path / "m.json").read_text())
    assert (info["onnx"], info["torch_export"]) == (str(graph), str(tmp_path / "m.pt2"))
    program = torch.export.load(str(tmp_path / "m.pt2")).module()
    with torch.no_grad():
        from_pt2 = program(**inputs).numpy()
    np.testing.assert_allclose(from_onnx, from_pt2, atol=1e-5, rtol=0)


def test_a_baseline_graph_given_no_reference_photo_answers_nan(
    enrolled_run: Path, tmp_path: Path
) -> None:
    """R = 0 reference photos: torch gave NaN, onnxruntime finite probabilities that looked
    like an answer. Both give NaN now, and the metadata and sidecar say so."""
    onnxruntime = pytest.importorskip("onnxruntime", reason="needs the export extra")
    import onnx

    from emotion.export.onnx import deployable, export
    from emotion.inference.ensemble import load_model

    info = export(enrolled_run, tmp_path / "m.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    module = deployable(load_model(str(enrolled_run)))
    rng = np.random.default_rng(0)
    for references in (0, 2):
        feeds = {
            "landmarks": rng.random((3, 478, 3), dtype=np.float32),
            "image_size": np.full((3, 2), [640, 480], dtype=np.float32),
            "reference_landmarks": rng.random((3, references, 478, 3), dtype=np.float32),
            "reference_image_size": np.full((3, references, 2), [640, 480], dtype=np.float32),
        }
        (got,) = session.run(["probabilities"], feeds)
        with torch.no_grad():
            expected = module(**{name: torch.from_numpy(v) for name, v in feeds.items()}).numpy()
        if references == 0:
            assert np.isnan(got).all() and np.isnan(expected).all(), got
        else:
            assert np.isfinite(got).all()
            np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    assert "R = 0" in info["output"] and "NaN" in info["output"]
    assert "R = 0" in info["inputs"]["reference_landmarks"]
    properties = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert "NaN" in properties["output"] and "R = 0" in properties["inputs"]


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _outputs(folder: Path) -> tuple[int, int]:
    """The bootstrap resamples metrics.json and report.md each say the evaluation used."""
    metrics = json.loads((folder / "metrics.json").read_text())["bootstrap"]["resamples"]
    report = (folder / "report.md").read_text()
    (line,) = [line for line in report.splitlines() if "resamples" in line]
    return metrics, int(line.split(",")[-1].split()[0])


def test_two_evaluations_into_one_folder_leave_one_of_them_whole(
    synthetic_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first is held in the middle of writing (after its report.md, before its
    metrics.json) while the second runs to the end: before, the folder then held the
    second's report beside the first's metrics. Now each writes a folder of its own, published
    whole: the last to finish wins, every file its own."""
    import emotion.evaluate.report as report
    from emotion.evaluate.evaluation import evaluate

    run_dir, _ = synthetic_run
    output_dir = tmp_path / "eval"
    first = eval_config(f"run_dir={run_dir}", f"output_dir={output_dir}", "bootstrap.resamples=20")
    second = eval_config(f"run_dir={run_dir}", f"output_dir={output_dir}", "bootstrap.resamples=30")
    writing, go_on = threading.Event(), threading.Event()
    real_write_json = report.write_json_atomic

    def held(path: Path, payload: dict) -> None:
        if threading.current_thread().name == "first":
            writing.set()
            assert go_on.wait(timeout=300)
        real_write_json(path, payload)

    monkeypatch.setattr(report, "write_json_atomic", held)
    failures: list[BaseException] = []

    def run_first() -> None:
        try:
            evaluate(first)
        except BaseException as error:  # raised again in the test's thread
            failures.append(error)

    thread = threading.Thread(target=run_first, name="first")
    thread.start()
    try:
        assert writing.wait(timeout=300), failures
        evaluate(second)
        assert _outputs(output_dir) == (30, 30)
    finally:
        go_on.set()
        thread.join(timeout=300)
    assert not failures, failures
    assert _outputs(output_dir) == (20, 20)
    assert sorted(path.name for path in output_dir.iterdir()) == sorted(
        [
            "metrics.json",
            "report.md",
            "predictions.csv",
            "confusion_matrix.png",
            "confusion_matrix_normalised.png",
            "reliability_diagram.png",
            "roc_curve.png",
            "tensorboard",
        ]
    )
    (events,) = (output_dir / "tensorboard").iterdir()  # the first's alone, not both
    assert events.name.startswith("events.out.tfevents")
    assert [path.name for path in tmp_path.iterdir()] == ["eval"], "no temporary folder left"


def test_a_failed_evaluation_leaves_an_earlier_one_as_it_was(
    synthetic_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import emotion.evaluate.report as report
    from emotion.evaluate.evaluation import evaluate

    run_dir, _ = synthetic_run
    output_dir = tmp_path / "eval"
    evaluate(
        eval_config(f"run_dir={run_dir}", f"output_dir={output_dir}", "bootstrap.resamples=20")
    )
    before = _files(output_dir)
    assert "metrics.json" in before and "report.md" in before

    def disk_full(path: Path, payload: dict) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report, "write_json_atomic", disk_full)
    config = eval_config(f"run_dir={run_dir}", f"output_dir={output_dir}", "bootstrap.resamples=30")
    with pytest.raises(OSError, match="No space"):
        evaluate(config)
    assert _files(output_dir) == before
    assert [path.name for path in tmp_path.iterdir()] == ["eval"]


def _run_metrics(root: Path, name: str, seed: int, value: float) -> Path:
    run = root / name
    run.mkdir(parents=True)
    payload = {
        "config": {"seed": seed, "model": {"depth": 2}, "data": {"fold": 0}},
        "val": {"val/bal_acc": value},
        "test": {"test/bal_acc": value - 0.1},
    }
    (run / "metrics.json").write_text(json.dumps(payload))
    return run / "metrics.json"


def test_a_truncated_metrics_json_is_skipped_with_a_warning_naming_it(tmp_path: Path) -> None:
    """A traceback (JSONDecodeError) in --compare, UnicodeDecodeError for a binary file, a
    bare 'skipping' line in the table; now one warning that counts and names each file left
    out, and the summary of the others. Skipped, not refused: a sweep of 50 runs with one
    broken file still deserves its table, and the warning and `n` say which runs it leaves
    out."""
    sweep = tmp_path / "sweep"
    _run_metrics(sweep, "s0", 0, 0.6)
    _run_metrics(sweep, "s1", 1, 0.8)
    truncated = _run_metrics(sweep, "s2", 2, 0.7)
    truncated.write_text(truncated.read_text()[:40])
    binary = _run_metrics(sweep, "s3", 3, 0.7)
    binary.write_bytes(b"\xff\xfe\x00garbage")
    for extra in ([], ["--compare"], ["--per-fold"]):
        done = emotion(
            "emotion.summary", str(sweep), "--metric", "val/bal_acc", *extra, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert "Traceback" not in done.stderr
        assert done.stderr.count("warning: skipped 2 of 4 metrics.json") == 1, done.stderr
        assert f"{truncated}: truncated or not JSON" in done.stderr
        assert f"{binary}: not UTF-8 text" in done.stderr
    table = emotion("emotion.summary", str(sweep), "--metric", "val/bal_acc", cwd=tmp_path)
    assert "0.7000 ± 0.1414" in table.stdout  # the mean of the two readable runs

    for path in (sweep / "s0" / "metrics.json", sweep / "s1" / "metrics.json"):
        path.write_text("{")
    done = emotion("emotion.summary", str(sweep), cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.count("error:") == 1 and "fix:" in done.stderr
    assert "no readable metrics.json" in done.stderr


def test_eval_on_a_deleted_store_still_writes_nothing(synthetic_run, tmp_path: Path) -> None:
    """The staging folder is made only once there is something to write."""
    from emotion.errors import EmotionError
    from emotion.evaluate.evaluation import evaluate

    run_dir, _ = synthetic_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("eval*"))
    with pytest.raises(EmotionError):
        evaluate(eval_config(f"run_dir={copy}", f"data.path={tmp_path}/deleted.h5"))
    assert not [path for path in copy.iterdir() if path.name.startswith((".eval", "eval"))]


@pytest.mark.parametrize(
    ("module", "extra"),
    [
        ("emotion.evaluate.app", []),
        ("emotion.predict.app", ["tests/fixtures/astronaut.jpg"]),
        ("emotion.export.app", []),
        ("emotion.serve.app", ["--port", "8799"]),  # refused before binding
    ],
)
def test_a_text_file_named_ckpt_is_refused_by_every_command(
    tmp_path: Path, module: str, extra: list[str]
) -> None:
    """torch.load raises a KeyError on text: a traceback (exit 1) before, not a user error."""
    if module.endswith("serve.app"):
        pytest.importorskip("fastapi", reason="needs the serve extra")
    if module.endswith("export.app"):
        pytest.importorskip("onnx", reason="needs the export extra")
    text = tmp_path / "hello.ckpt"
    text.write_text("hello\n")
    from tests.commands import ROOT

    extra = [str(ROOT / arg) if arg.startswith("tests/") else arg for arg in extra]
    result = emotion(module, str(text), *extra, cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "is not a readable PyTorch checkpoint" in result.stderr and "fix:" in result.stderr
    assert "Traceback" not in result.stderr
