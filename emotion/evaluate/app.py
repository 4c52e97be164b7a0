"""`emotion-eval MODEL [KEY=VALUE ...]`: argparse for the model, Hydra's compose for the
settings of `emotion/conf/eval.yaml`, then `emotion.evaluate.evaluation.evaluate(cfg)`.

    emotion-eval outputs/train/runs/default
    emotion-eval outputs/train/runs/default threshold.target_recall=0.9 split=val
    emotion-eval path/to/best.ckpt data.path=data/other.h5 output_dir=eval/other
    emotion-eval 'outputs/train/multiruns/seeds/*'           # an ensemble (quoted glob)

The model is taken as it is, never through Hydra's override grammar: run folders are named
after their overrides and hold '=' and ','.
"""

from __future__ import annotations

import argparse
import logging
import sys

from emotion.errors import exit_on_user_error
from emotion.evaluate.settings import compose_eval_config

# What Hydra's `stdout` job logging printed before: the report goes to standard output.
LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="emotion-eval", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "model",
        help="a run directory (its tested checkpoint) or a .ckpt file; a sweep folder or a "
        "quoted glob of runs is an ensemble (probabilities averaged)",
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="settings of emotion/conf/eval.yaml: split=val, data.path=..., "
        "threshold.target_recall=0.9, bootstrap.resamples=..., output_dir=...",
    )
    parser.add_argument(
        "--print-config", action="store_true", help="print the composed settings and stop"
    )
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    cfg = compose_eval_config(args.model, args.overrides)
    if args.print_config:
        from omegaconf import OmegaConf

        print(OmegaConf.to_yaml(cfg))
        return
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stdout)
    from emotion.evaluate.evaluation import evaluate

    evaluate(cfg)


if __name__ == "__main__":
    main()
