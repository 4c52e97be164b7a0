"""Turn a data root into the ordered list of photos to process, counting everything skipped.

The plan is a pure function of the files and the settings, so every run, resumed run and
shard sees the same tasks in the same order.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

from emotion.errors import EmotionError
from emotion.extract.labels import AnnotatorVotes, emotion_of_path, load_votes, member_emotion
from emotion.extract.report import Tally
from emotion.extract.sampling import sample_positions
from emotion.extract.settings import ExtractSettings
from emotion.extract.sources import (
    FOLDER_LINK,
    NOT_REGULAR,
    Container,
    ContainerError,
    Member,
    aihub_containers,
    check_root,
    folder_containers,
    list_members,
    member_path,
    member_source,
)
from emotion.facemesh.media import Media
from emotion.store.classes import canonical_order


@dataclass(frozen=True)
class Task(Media):
    """A photo (or video) to extract, with what the store records beside its landmarks."""

    archive: str  # report key
    label: int  # index into the plan's class_names; numbered once every class is known
    subject: str
    split: str
    emotion: str = ""  # the class name


@dataclass
class Plan:
    layout: str
    tasks: list[Task]
    archive_info: dict[str, dict[str, Any]]
    inventory: Tally
    votes: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)  # label order


def compile_regex(pattern: str, setting: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as error:
        raise EmotionError(
            f"{setting}={pattern!r} is not a valid regular expression ({error})",
            "fix the pattern (Python re syntax); quote it on the command line",
        ) from error


def subject_of(text: str, pattern: re.Pattern[str]) -> str:
    """The person: by default the first `_` token of the file name (AI Hub's person hash).

    `text` is the file name, or with subject.match_on=path the path under the root; without
    a match, the text without its suffix.
    """
    match = pattern.search(text)
    if match:
        return match.group(1) if match.groups() else match.group()
    return text.rsplit(".", 1)[0]


def make_plan(settings: ExtractSettings) -> Plan:
    layout = check_root(settings.root, settings.layout)
    inventory = Tally()
    not_regular: list[str] = []
    if layout == "aihub":
        containers = aihub_containers(settings.root, not_regular)
    else:
        unreadable: list[str] = []
        folder_links: list[str] = []
        containers = folder_containers(settings.root, unreadable, folder_links, not_regular)
        for example in unreadable:
            inventory.problem("unreadable_folder", example)
        for example in folder_links:
            inventory.problem(FOLDER_LINK, example)
    for example in not_regular:
        inventory.problem(NOT_REGULAR, example)
    if not containers:
        raise EmotionError(
            f"source.root {settings.root} has Training/ or Validation/ but no photo archives",
            "they should hold [원천]EMOIMG_<감정>_TRAIN_0N.zip archives or unpacked folders",
        )
    votes = load_votes(settings, layout, inventory)
    subject_pattern = compile_regex(settings.subject_regex, "subject.regex")
    class_pattern = (
        compile_regex(settings.class_regex, "source.class_regex") if settings.class_regex else None
    )
    plan = Plan(layout, [], {}, inventory)
    vote_stats: dict[str, Counter[str]] = defaultdict(Counter)
    for container in containers:
        _plan_container(
            settings, plan, container, votes, vote_stats, subject_pattern, class_pattern
        )
    if votes is not None:
        plan.votes = {name: dict(counts) for name, counts in sorted(vote_stats.items())}
    _number_labels(settings, plan)
    return plan


def _number_labels(settings: ExtractSettings, plan: Plan) -> None:
    """Fix the class list (with `found`: every class a planned photo has) and the labels.

    Done after every container is planned, since `found` knows its classes only then.
    """
    fixed = settings.fixed_class_names
    found = canonical_order(task.emotion for task in plan.tasks)
    plan.class_names = list(fixed if fixed is not None else found)
    index = {name: position for position, name in enumerate(plan.class_names)}
    plan.tasks = [replace(task, label=index[task.emotion]) for task in plan.tasks]
    for name in plan.class_names:
        if name not in found:
            plan.inventory.problem("class_without_photos", name)


def _plan_container(
    settings: ExtractSettings,
    plan: Plan,
    container: Container,
    votes: AnnotatorVotes | None,
    vote_stats: dict[str, Counter[str]],
    subject_pattern: re.Pattern[str],
    class_pattern: re.Pattern[str] | None,
) -> None:
    """Count the container's members, then add a task for each sampled photo of a class kept."""
    inventory = plan.inventory
    name = container.name
    folder_emotion = None if class_pattern else emotion_of_path(name, settings.class_map)
    plan.archive_info[name] = {"split": container.split, "class": folder_emotion, "status": "ok"}
    try:
        members = list_members(container, settings.zip_encoding)
    except ContainerError as error:
        inventory.problem(error.problem, error.detail)
        plan.archive_info[name]["status"] = error.problem
        return
    media = _media_members(inventory, container, members)
    skipped = _skip_reason(settings, container, len(media), folder_emotion, votes, class_pattern)
    if skipped:
        inventory.problem(*skipped)
        plan.archive_info[name]["status"] = _skip_status(settings, skipped[0], folder_emotion)
        if skipped[0] == "emotion_not_in_class_set":
            inventory.count(name, "other_emotion", len(media))
        return
    allowed = settings.fixed_class_names  # None: classes=found keeps every class
    candidates: list[tuple[Member, str]] = []
    for member in media:
        emotion = member_emotion(
            settings, inventory, container, member, folder_emotion, votes, vote_stats, class_pattern
        )
        if emotion is None:
            continue
        if allowed is not None and emotion not in allowed:
            inventory.count(name, "other_emotion")
            continue
        candidates.append((member, emotion))
    kept = sample_positions(
        len(candidates), settings.max_per_archive, settings.sampling, settings.seed, name
    )
    inventory.count(name, "sampled", len(kept))
    for position in kept:
        plan.tasks.append(_task(settings, container, *candidates[position], subject_pattern))


def _media_members(inventory: Tally, container: Container, members: list[Member]) -> list[Member]:
    """The photos (and, in folders, videos) among the members; everything else counted."""
    media: list[Member] = []
    for member in members:
        inventory.count(container.name, "members")
        if member.kind == "image" or (member.kind == "video" and container.kind != "zip"):
            media.append(member)
        elif member.kind in ("special", "folder_link"):
            inventory.count(container.name, "not_regular_files")
            kind = FOLDER_LINK if member.kind == "folder_link" else NOT_REGULAR
            inventory.problem(kind, member_source(container, member))
        else:
            inventory.count(container.name, "non_images")
            inventory.problem("non_image", member_source(container, member))
    inventory.count(container.name, "seen", len(media))
    return media


def _skip_reason(
    settings: ExtractSettings,
    container: Container,
    media: int,
    folder_emotion: str | None,
    votes: AnnotatorVotes | None,
    class_pattern: re.Pattern[str] | None,
) -> tuple[str, str] | None:
    """(problem, example) when the whole container is skipped, else None."""
    if not media:
        return "empty_archive", container.name
    if class_pattern is None and folder_emotion is None:
        return "no_emotion_in_name", container.name
    allowed = settings.fixed_class_names
    by_folder = votes is None and class_pattern is None
    if by_folder and allowed is not None and folder_emotion not in allowed:
        return "emotion_not_in_class_set", f"{container.name} ({folder_emotion})"
    return None


def _skip_status(settings: ExtractSettings, problem: str, folder_emotion: str | None) -> str:
    if problem != "emotion_not_in_class_set":
        return problem
    chosen = settings.classes if isinstance(settings.classes, str) else "classes"
    return f"skipped: {folder_emotion} not in {chosen}"


def _task(
    settings: ExtractSettings,
    container: Container,
    member: Member,
    emotion: str,
    subject_pattern: re.Pattern[str],
) -> Task:
    subject_text = (
        member.file_name
        if settings.subject_match_on == "file_name"
        else member_path(container, member)
    )
    return Task(
        source=member_source(container, member),
        path=str(container.path) if container.kind == "zip" else member.key,
        member=member.key if container.kind == "zip" else None,
        video=member.kind == "video",
        archive=container.name,
        label=-1,
        subject=subject_of(subject_text, subject_pattern),
        split=container.split,
        emotion=emotion,
    )


def shard_range(count: int, index: int, shards: int) -> tuple[int, int]:
    """Contiguous block of the task list for one shard: concatenating shards in index order
    gives exactly the order of an unsharded run."""
    return count * index // shards, count * (index + 1) // shards
