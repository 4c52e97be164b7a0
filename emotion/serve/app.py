"""`emotion-serve`: the HTTP API and the live webcam page over a trained model.

emotion-serve outputs/train/runs/default                  # then open http://127.0.0.1:8000
emotion-serve outputs/train/multiruns/seeds --workers 2   # an ensemble, two landmarkers
emotion-serve outputs/train/runs/default --processes 2    # two server processes on one port
"""

from __future__ import annotations

import argparse
import sys

from emotion.errors import exit_on_user_error
from emotion.serve.server import serve
from emotion.serve.settings import ServeSettings


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = ServeSettings()
    parser = argparse.ArgumentParser(
        prog="emotion-serve",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "model",
        help="a run directory (the checkpoint its training tested) or a .ckpt file; a sweep "
        "folder or a quoted glob of runs is an ensemble (probabilities averaged), as "
        "emotion-predict takes it",
    )
    parser.add_argument("--host", default=defaults.host, help="address to listen on (loopback)")
    parser.add_argument("--port", type=int, default=defaults.port, help="port to listen on")
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name clients may reach the server by, besides localhost, 127.0.0.1, ::1 "
        "and --host (repeatable; '*' allows any): requests naming another host are refused, "
        "which stops DNS rebinding",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=defaults.workers,
        help="FaceMesh graphs answering side by side (threads of one process, so sessions are "
        "shared); up to the number of cores",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=defaults.processes,
        help="server processes on the one port (uvicorn's workers), each with its own model and "
        "--workers landmarkers; landmark frames and images scale out, HTTP sessions live in "
        "the process that made them (use one process for sessions)",
    )
    parser.add_argument(
        "--max-body-bytes", type=int, default=defaults.max_body_bytes, help="largest request body"
    )
    parser.add_argument(
        "--max-pixels", type=int, default=defaults.max_pixels, help="largest image, in pixels"
    )
    parser.add_argument(
        "--max-sessions", type=int, default=defaults.max_sessions, help="sessions kept at once"
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=defaults.max_connections,
        help="connections and requests served at once; past it, 503",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=defaults.idle_timeout_s,
        help="seconds a connection may stay silent: one that sends no whole request, or a "
        "stream that sends no message, is closed so it frees its --max-connections slot",
    )
    parser.add_argument(
        "--session-ttl",
        type=float,
        default=defaults.session_ttl_s,
        help="seconds a session lives after its last use",
    )
    parser.add_argument(
        "--ema-alpha",
        type=float,
        default=defaults.ema_alpha,
        help="weight of the newest frame in the stream's smoothed score",
    )
    parser.add_argument(
        "--calibration-seconds",
        type=float,
        default=defaults.calibration_seconds,
        help="how long the page collects the rest face when calibrating",
    )
    parser.add_argument(
        "--positive-class",
        default=defaults.positive_class,
        help="the class whose probability is the score",
    )
    parser.add_argument("--access-log", action="store_true", help="log every request")
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    settings = ServeSettings(
        host=args.host,
        port=args.port,
        workers=args.workers,
        processes=args.processes,
        max_body_bytes=args.max_body_bytes,
        max_pixels=args.max_pixels,
        max_sessions=args.max_sessions,
        max_connections=args.max_connections,
        idle_timeout_s=args.idle_timeout,
        allowed_hosts=tuple(args.allowed_host),
        session_ttl_s=args.session_ttl,
        ema_alpha=args.ema_alpha,
        calibration_seconds=args.calibration_seconds,
        positive_class=args.positive_class,
    )
    serve(args.model, settings, access_log=args.access_log)


if __name__ == "__main__":
    main(sys.argv[1:])
