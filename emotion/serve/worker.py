"""One server process of `emotion-serve --processes N`: uvicorn starts N of these on one port,
each importing `app` by name, so what the parent was started with travels in the environment.

Each process loads the model and builds its own `--workers` landmarkers. Nothing a landmark
frame needs is kept between requests (a client holds its own reference), so any process can
answer any frame; HTTP sessions are kept by the process that made them (docs/serving.md).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from typing import Any

from emotion.serve.settings import ServeSettings

CONFIG_VARIABLE = "EMOTION_SERVE_PROCESS"


def describe(model: str, settings: ServeSettings) -> str:
    """What a worker process needs, as the environment variable's value."""
    return json.dumps({"model": model, "settings": asdict(settings)})


def app() -> Any:
    """The FastAPI app of one worker process (uvicorn's factory)."""
    import torch

    from emotion.facemesh.mesh import quiet_native_logs
    from emotion.inference.ensemble import load_model
    from emotion.serve.api import create_app
    from emotion.serve.engine import Engine

    given = json.loads(os.environ[CONFIG_VARIABLE])
    values = dict(given["settings"])
    values["allowed_hosts"] = tuple(values.get("allowed_hosts") or ())
    settings = ServeSettings(**values)
    torch.set_num_threads(1)
    quiet_native_logs()
    return create_app(Engine(load_model(given["model"]), settings))
