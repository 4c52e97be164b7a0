"""`emotion-serve` as a function: the model loaded as `emotion-predict` loads it, then uvicorn."""

from __future__ import annotations

import errno
import glob
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

from emotion.errors import EmotionError
from emotion.serve.settings import ServeSettings

log = logging.getLogger(__name__)


def serve(model: str, settings: ServeSettings, *, access_log: bool = False) -> None:
    """Load MODEL (a run, a checkpoint, a sweep folder or a glob), then serve until stopped."""
    check_address(settings.host, settings.port)
    check_model_path(model)
    # Here, not at the top: a mistaken option or path is answered before torch and MediaPipe
    # load (seconds).
    import torch
    import uvicorn

    from emotion.facemesh.mesh import quiet_native_logs
    from emotion.inference.ensemble import load_model
    from emotion.inference.trained import check_current_extractor, warn_synthetic
    from emotion.serve.api import create_app
    from emotion.serve.engine import Engine
    from emotion.serve.idle import TIMEOUT_VARIABLE, http_protocol
    from emotion.serve.worker import CONFIG_VARIABLE, describe

    trained = load_model(model)
    check_current_extractor(trained)
    if trained.trained_on_synthetic:
        warn_synthetic(trained.description)
    # One face a request: the model's cost is tiny next to the landmarker, and several OpenMP
    # threads per request would fight the worker threads for the same cores.
    torch.set_num_threads(1)
    quiet_native_logs()
    if not settings.loopback:
        print(
            f"warning: listening on {settings.host}: anyone who can reach this machine can "
            "send it faces; the default, 127.0.0.1, keeps it to this machine",
            file=sys.stderr,
        )
    if settings.any_address and not settings.allowed_hosts:
        print(
            f"warning: --host {settings.host} answers only requests to "
            f"{', '.join(sorted(settings.host_names))}: add --allowed-host NAME for each "
            "name or address clients use to reach this machine",
            file=sys.stderr,
        )
    if settings.processes > 1:
        print(
            f"note: {settings.processes} server processes share port {settings.port}; an HTTP "
            "session (/v1/sessions) lives in the process that made it, so a client's next "
            "request may reach another and get 404: use the stream or client-held references, "
            "or one process, for sessions",
            file=sys.stderr,
        )
    print(
        f"serving {trained.description} at {settings.url} ({_shape(settings)}; "
        f"API reference at /docs); Ctrl-C stops",
        file=sys.stderr,
    )
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": "warning",
        "access_log": access_log,
        "ws_max_size": settings.max_body_bytes,
        "limit_concurrency": settings.max_connections,
        "timeout_keep_alive": min(5, settings.idle_timeout_s),
    }
    if settings.processes > 1:
        # uvicorn's workers: N processes on the one socket, each importing the app by name.
        del trained
        os.environ[CONFIG_VARIABLE] = describe(model, settings)
        os.environ[TIMEOUT_VARIABLE] = str(settings.idle_timeout_s)
        uvicorn.run(
            "emotion.serve.worker:app",
            factory=True,
            workers=settings.processes,
            http="emotion.serve.idle:ConfiguredProtocol",
            **options,
        )
        return
    engine = Engine(trained, settings)
    try:
        # Idle sockets are closed (emotion/serve/idle.py): within --idle-timeout before a
        # request's headers, within uvicorn's keep-alive after a response.
        uvicorn.run(create_app(engine), http=http_protocol(settings.idle_timeout_s), **options)
    finally:
        engine.close()


def _shape(settings: ServeSettings) -> str:
    workers = f"{settings.workers} landmarker{'s' if settings.workers > 1 else ''}"
    if settings.processes == 1:
        return workers
    return f"{settings.processes} processes of {workers} each"


def check_address(host: str, port: int) -> None:
    """Refuse a port in use or a host not on this machine before the model is loaded."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise EmotionError(
                f"port {port} on {host} is in use (another emotion-serve?)",
                f"stop the other server, or choose another port: --port {port + 1}",
            ) from None
        raise EmotionError(
            f"cannot listen on {host}:{port}: {error.strerror or error}",
            "use --host 127.0.0.1 (this machine), or an address of this machine",
        ) from None


def check_model_path(model: str) -> None:
    """A model path that names nothing, refused before torch loads (seconds, not minutes)."""
    if not Path(model).exists() and not glob.glob(model):
        raise EmotionError(
            f"{model} is not a run directory, checkpoint, sweep folder or matching glob",
            "pass what emotion-predict takes, e.g. outputs/train/runs/default",
        )
