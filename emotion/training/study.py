"""An Optuna SQLite study made once, under a lock, before workers share it.

Two `emotion-train hparams_search=optuna` workers started together on one new SQLite file
both create Optuna's tables, and the slower one dies in Alembic's version stamp (`UNIQUE
constraint failed: alembic_version.version_num`, Optuna 2.10 with SQLAlchemy 1.4). Each
worker therefore creates the storage first under `<db>.lock`, the project's one lock
(emotion.locks); the second finds the tables made and goes straight on.
"""

from __future__ import annotations

import time
from pathlib import Path

from emotion.errors import EmotionError
from emotion.locks import LockHeld, exclusive_lock

SQLITE = "sqlite:///"
WAIT_S = 120.0  # creating the tables takes well under a second; past this, something is wrong


def prepare_storage(url: object) -> None:
    """Create the tables of a SQLite `hydra.sweeper.storage` unless they exist; other URLs
    (a database server) are left to Optuna, whose servers take concurrent creation."""
    if not isinstance(url, str) or not url.startswith(SQLITE):
        return
    try:
        from optuna.storages import RDBStorage
    except ImportError:  # the sweeper's own error names the extra
        return
    database = Path(url[len(SQLITE) :])
    lock = database.with_name(database.name + ".lock")
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            with exclusive_lock(lock, "emotion-train creating the study", "remove the link"):
                RDBStorage(url).engine.dispose()
                return
        except LockHeld:
            if time.monotonic() > deadline:
                raise EmotionError(
                    f"{lock} stayed locked for {WAIT_S:g} s while waiting to open {database}",
                    "check that no stuck emotion-train holds it, then run the command again",
                ) from None
            time.sleep(0.1)
