"""The torchmetrics each evaluation stage reports, named `<stage>/<metric>[_<class>]`."""

from __future__ import annotations

from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)
from torchmetrics.wrappers import ClasswiseWrapper


def evaluation_metrics(class_names: list[str], stage: str) -> MetricCollection:
    """Accuracy, balanced accuracy (macro recall), macro-F1, AUROC, per-class recall/precision."""
    classes = len(class_names)
    return MetricCollection(
        {
            "acc": MulticlassAccuracy(classes, average="micro"),
            "bal_acc": MulticlassAccuracy(classes, average="macro"),
            "f1_macro": MulticlassF1Score(classes, average="macro"),
            "auroc": MulticlassAUROC(classes, average="macro"),
            "recall": ClasswiseWrapper(
                MulticlassRecall(classes, average=None), labels=class_names, prefix="recall_"
            ),
            "precision": ClasswiseWrapper(
                MulticlassPrecision(classes, average=None), labels=class_names, prefix="precision_"
            ),
        },
        prefix=f"{stage}/",
        # Compute groups share state between metrics, which the class-wise wrappers do not
        # follow: keep every metric's own state so each reports what it measured.
        compute_groups=False,
    )
