"""Run and sweep folder names (what varies, readable, no absolute paths, never colliding) and
the threads of parallel sweep jobs."""

from __future__ import annotations

from emotion.training.run_name import run_name_from_overrides


def test_a_store_path_becomes_its_stem_and_a_digest_keeps_names_apart() -> None:
    first = run_name_from_overrides(["data=store", "data.path=/work/a/hidden.h5", "seed=1"])
    second = run_name_from_overrides(["data=store", "data.path=/work/b/hidden.h5", "seed=1"])
    assert first.startswith("data.path=hidden,data=store,seed=1-")
    assert "/" not in first and "work" not in first
    assert first != second
    assert first == run_name_from_overrides(["seed=1", "data.path=/work/a/hidden.h5", "data=store"])


def test_names_sort_as_the_readme_globs_expect_and_leave_out_excluded_keys() -> None:
    name = run_name_from_overrides(
        ["data=store", "data.fold=0", "seed=2", "resume=never", "trainer.max_epochs=3"],
        exclude=["resume", "trainer.max_epochs"],
    )
    assert name == "data.fold=0,data=store,seed=2"  # 'outputs/.../cv/data.fold=0,*' finds it
    assert run_name_from_overrides([]) == "default"
    assert run_name_from_overrides(["resume=never"], exclude=["resume"]) == "default"


def test_a_long_name_is_cut_with_a_digest() -> None:
    many = [f"+callbacks.c{index}._target_=x.Y" for index in range(20)]
    name = run_name_from_overrides(many)
    assert len(name) == 150 and name != run_name_from_overrides(many[:-1])


def test_a_sweep_job_is_named_after_what_the_sweep_varies(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("EMOTION_SWEEP_KEYS", "data.fold,seed")
    overrides = ["data=store", "data.path=/abs/x.h5", "data.fold=1", "seed=3", "model.depth=2"]
    name = run_name_from_overrides(overrides)
    assert name.startswith("data.fold=1,seed=3-") and "x" not in name.split("-")[0]
    other = run_name_from_overrides([*overrides[:-1], "model.depth=4"])
    assert other != name and other.startswith("data.fold=1,seed=3-")


def test_each_parallel_job_gets_its_share_of_the_cores(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """launcher=joblib's threads: on 2 cores and on 64, jobs never oversubscribe."""
    from emotion.training import threads

    for cores, jobs, expected in [(2, 2, 1), (2, 5, 1), (64, 64, 1), (64, 8, 8), (64, 5, 12)]:
        monkeypatch.setattr(threads, "cores", lambda cores=cores: cores)
        assert threads.threads_per_job(jobs) == expected
        assert threads.threads_per_job(jobs) * min(jobs, cores) <= cores
