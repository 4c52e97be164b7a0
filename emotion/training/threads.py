"""How many torch threads a run gets when sweep jobs share one machine.

Two torch processes that each take every core spin against each other (about 10x slower per
epoch on 2 cores), so `launcher=joblib` gives each of its `n_jobs` parallel jobs
`cores // n_jobs` threads. `cores` counts the cores this process may use (taskset, Slurm's
cpus_per_task, a container's cpuset), not the machine's. Registered as the `cores` and
`threads_per_job` resolvers on import.
"""

from __future__ import annotations

import os

from omegaconf import OmegaConf


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_per_job(jobs: int) -> int:
    """Each of `jobs` parallel jobs' share of the cores, at least one."""
    return max(1, cores() // max(1, int(jobs)))


OmegaConf.register_new_resolver("cores", cores, replace=True)
OmegaConf.register_new_resolver("threads_per_job", threads_per_job, replace=True)
