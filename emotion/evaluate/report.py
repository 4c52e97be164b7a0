"""What `emotion-eval` leaves behind: metrics.json, report.md, confusion-matrix PNGs and the
same numbers in TensorBoard (`<output_dir>/tensorboard`), written into the staging folder
`emotion.evaluate.publish` hands out."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torchmetrics.classification import MulticlassConfusionMatrix  # noqa: E402

from emotion.errors import counted
from emotion.evaluate.curves import reliability_figure, roc_figure
from emotion.rundir import write_json_atomic

METRICS_JSON = "metrics.json"
REPORT_MD = "report.md"
PREDICTIONS_CSV = "predictions.csv"
CONFUSION_PNG = "confusion_matrix.png"
CONFUSION_NORMALISED_PNG = "confusion_matrix_normalised.png"
RELIABILITY_PNG = "reliability_diagram.png"
ROC_PNG = "roc_curve.png"
TENSORBOARD_DIR = "tensorboard"
# Everything an evaluation writes: an earlier evaluation's copy is replaced or removed.
OUTPUTS = (
    METRICS_JSON,
    REPORT_MD,
    PREDICTIONS_CSV,
    CONFUSION_PNG,
    CONFUSION_NORMALISED_PNG,
    RELIABILITY_PNG,
    ROC_PNG,
    TENSORBOARD_DIR,
)
HEADLINE = ("acc", "bal_acc", "f1_macro", "auroc", "ece")


def confusion_figure(confusion: np.ndarray, class_names: list[str], title: str) -> Any:
    """torchmetrics' own confusion-matrix plot (counts or fractions)."""
    plotter = MulticlassConfusionMatrix(len(class_names))
    figure, axes = plotter.plot(val=torch.as_tensor(confusion), labels=class_names)
    axes.set_title(title)
    return figure


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.4f}"


def _with_interval(result: dict[str, Any], key: str) -> str:
    interval = result["intervals"].get(key)
    text = _fmt(result["metrics"].get(key))
    return f"{text} [{_fmt(interval['low'])}, {_fmt(interval['high'])}]" if interval else text


def markdown(result: dict[str, Any]) -> str:
    """A one-page report a person can read and paste into a ticket."""
    sections = [
        header_lines,
        baseline_lines,
        metric_lines,
        class_lines,
        confusion_lines,
        reliability_lines,
        operating_point_lines,
        plot_lines,
    ]
    return "\n".join(line for section in sections for line in section(result)) + "\n"


def header_lines(result: dict[str, Any]) -> list[str]:
    """What was scored: the model, the data, the split and the intervals."""
    data = result["data"]
    counts = result["counts"]
    synthetic_model = result.get("trained_on_synthetic")
    return [
        f"# Evaluation on `{result['split']}`",
        "",
        f"- checkpoint: `{result['ckpt_path']}`"
        + (" (trained on **SYNTHETIC** landmarks, not real faces)" if synthetic_model else ""),
        f"- data: `{data['path']}`" + (" (**SYNTHETIC**)" if data.get("synthetic") else ""),
        f"- split strategy: {result['data_settings']['split_strategy']}, "
        f"drop_overlap={result['data_settings']['drop_overlap']}",
        f"- {counted(counts['photos'], 'photo')} of {counted(counts['subjects'], 'subject')}; "
        "test subjects also seen "
        f"in training: {counts['test_subjects_seen_in_training']} "
        f"({counts['test_rows_dropped_for_overlap']} test photos dropped for it)",
        f"- people scored: {people_list(counts['people'])}",
        f"- intervals: {int(result['bootstrap']['confidence'] * 100)}% percentile bootstrap over "
        f"subjects, {result['bootstrap']['resamples']} resamples",
        *(f"- **caveat:** {caveat}" for caveat in result.get("caveats", [])),
    ]


def people_list(people: list[str], shown: int = 40) -> str:
    """The held-out people by name (kfold reports name each fold's); long lists are cut."""
    names = ", ".join(f"`{person}`" for person in people[:shown])
    rest = len(people) - shown
    return names + (f" and {counted(rest, 'other')}" if rest > 0 else "")


PROTOCOLS = {
    "enrolled": "each face read against the mean of {k} enrolled neutral photo(s) of the same "
    "person (chosen by seed; the one use of this person's labels, standing for a deployment "
    "that asks for a relaxed face first); those photos are never scored",
    "session": "each face read against the mean of all the person's photos in this split (no "
    "labels read; assumes several photos per person: a mix of expressions shifts the "
    "reference)",
}


def baseline_lines(result: dict[str, Any]) -> list[str]:
    """The personal-baseline protocol: what each face was read against, and who was left out."""
    baseline = result.get("baseline")
    if not baseline:
        return []
    protocol = PROTOCOLS[baseline["protocol"]].format(k=baseline["enroll_per_subject"])
    unscored = baseline["unscored_people"]
    return [
        f"- personal baseline `{baseline['protocol']}` ({baseline['features']}): {protocol}",
        f"- {counted(baseline['scored_rows'], 'photo')} scored; "
        f"{counted(baseline['reference_rows'], 'reference photo')} of "
        f"{counted(baseline['people_with_a_reference'], 'person', 'people')} not scored; "
        f"{counted(len(unscored), 'person', 'people')} without a reference not scored "
        f"({counted(baseline['unscored_rows'], 'photo')})"
        + (f": {', '.join(unscored)}" if unscored else ""),
    ]


def metric_lines(result: dict[str, Any]) -> list[str]:
    stage = result["split"]
    lines = ["", "| metric | value [interval] |", "|---|---|"]
    return lines + [f"| {key} | {_with_interval(result, f'{stage}/{key}')} |" for key in HEADLINE]


def class_lines(result: dict[str, Any]) -> list[str]:
    stage = result["split"]
    lines = ["", "| class | precision | recall | F1 | photos |", "|---|---|---|---|---|"]
    per_class = np.asarray(result["confusion_matrix"]["counts"]).sum(axis=1)
    for index, name in enumerate(result["class_names"]):
        cells = [
            _with_interval(result, f"{stage}/{kind}_{name}")
            for kind in ("precision", "recall", "f1")
        ]
        lines.append(f"| {name} | {' | '.join(cells)} | {int(per_class[index])} |")
    return lines


def confusion_lines(result: dict[str, Any]) -> list[str]:
    names = result["class_names"]
    lines = [
        "",
        "Confusion matrix (rows: true, columns: predicted; counts and row fractions):",
        "",
        "| true \\ predicted | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    counts_matrix = result["confusion_matrix"]["counts"]
    fractions = result["confusion_matrix"]["row_normalised"]
    for index, name in enumerate(names):
        cells = [
            f"{c} ({f:.2f})" for c, f in zip(counts_matrix[index], fractions[index], strict=True)
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def reliability_lines(result: dict[str, Any]) -> list[str]:
    """The reliability diagram's numbers, for a reader without the PNG: the bins that hold
    photos, their mean top probability against how often that top class was right."""
    bins = [row for row in result["reliability"]["bins"] if row["photos"]]
    lines = [
        "",
        "Reliability (top probability binned; a calibrated model is right as often as it is "
        f"sure; ECE {_fmt(result['metrics'].get(result['split'] + '/ece'))}):",
        "",
        "| top probability | photos | mean confidence | accuracy |",
        "|---|---|---|---|",
    ]
    for row in bins:
        span = f"[{row['low']:.2f}, {row['high']:.2f})" if row["low"] < 1 else "1.00"
        lines.append(
            f"| {span} | {row['photos']} | {row['confidence']:.3f} | {row['accuracy']:.3f} |"
        )
    return lines


def plot_lines(result: dict[str, Any]) -> list[str]:
    positive = result["roc"]["positive_class"]
    return [
        "",
        "## Plots",
        "",
        f"![confusion matrix]({CONFUSION_PNG}) ![row-normalised]({CONFUSION_NORMALISED_PNG})",
        "",
        f"![reliability diagram]({RELIABILITY_PNG}) ![ROC curve, {positive} against the rest]"
        f"({ROC_PNG})",
    ]


def operating_point_lines(result: dict[str, Any]) -> list[str]:
    point = result.get("operating_point")
    if not point:
        return []
    stage = result["split"]
    lines = [
        "",
        f"## Operating point: {point['positive_class']} recall >= {point['target_recall']} "
        "(chosen on val)",
        "",
        f"Threshold P({point['positive_class']}) >= {point['threshold']:.4f}.",
        "",
        "| | recall | precision | specificity | bal_acc | flagged |",
        "|---|---|---|---|---|---|",
    ]
    rows = [("val (chosen on)", point["val"]), (f"{stage} at threshold", point["evaluated"])]
    if point.get("at_0.5"):
        rows.append((f"{stage} at 0.5", point["at_0.5"]))
    for label, figures in rows:
        cells = [
            _fmt(figures[k])
            for k in ("recall", "precision", "specificity", "bal_acc", "flagged_fraction")
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def write_outputs(
    result: dict[str, Any],
    output_dir: Path,
    tensorboard: bool,
    probabilities: torch.Tensor,
    labels: torch.Tensor,
) -> None:
    """metrics.json, report.md, four PNGs (confusion counts and fractions, reliability, ROC)
    and, if asked, the same in TensorBoard: scalars, images and the report as text."""
    import matplotlib.pyplot as plt

    output_dir.mkdir(parents=True, exist_ok=True)
    names = result["class_names"]
    stage = result["split"]
    positive = result["roc"]["positive_class"]
    figures = {
        CONFUSION_PNG: confusion_figure(
            np.asarray(result["confusion_matrix"]["counts"]), names, f"{stage}: counts"
        ),
        CONFUSION_NORMALISED_PNG: confusion_figure(
            np.round(np.asarray(result["confusion_matrix"]["row_normalised"]), 3),
            names,
            f"{stage}: row-normalised",
        ),
        RELIABILITY_PNG: reliability_figure(
            result["reliability"]["bins"], f"{stage}: reliability diagram"
        ),
        ROC_PNG: roc_figure(
            probabilities, labels, names.index(positive), f"{stage}: ROC, {positive} vs rest"
        ),
    }
    for file_name, figure in figures.items():
        figure.savefig(output_dir / file_name, dpi=120, bbox_inches="tight")
    report = markdown(result)
    (output_dir / REPORT_MD).write_text(report)
    write_json_atomic(output_dir / METRICS_JSON, result)
    if tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        with SummaryWriter(str(output_dir / TENSORBOARD_DIR)) as writer:
            for key, value in result["metrics"].items():
                writer.add_scalar(f"eval/{key}", value, 0)
            for key, interval in result["intervals"].items():
                writer.add_scalar(f"eval_ci_low/{key}", interval["low"], 0)
                writer.add_scalar(f"eval_ci_high/{key}", interval["high"], 0)
            for file_name, figure in figures.items():
                writer.add_figure(f"eval/{Path(file_name).stem}", figure, 0, close=False)
            writer.add_text("eval/report", report, 0)
    for figure in figures.values():
        plt.close(figure)
