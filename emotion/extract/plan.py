"""Turn a data root into the ordered list of photos to process, counting everything skipped.

The plan is a pure function of the files and the settings, so every run, resumed run and
shard sees the same tasks in the same order.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

from emotion.data.classes import canonical_order
from emotion.errors import EmotionError
from emotion.extract.labels import AnnotatorVotes, emotion_by_regex, emotion_of_path
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
    label_archives,
    list_members,
)


@dataclass(frozen=True)
class Task:
    """One unit of work for a FaceMesh worker: a photo, or every stride-th frame of a video."""

    source: str  # the store's source column: "archive::member" or a path under the root
    path: str  # the zip archive or the file
    member: str | None  # the zip member to read, None for files
    video: bool
    archive: str  # report key
    label: int  # index into the plan's class_names (-1 outside extraction)
    subject: str
    split: str
    emotion: str = ""  # the class name; labels are numbered once every class is known


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
    if layout == "aihub":
        not_regular: list[str] = []
        containers = aihub_containers(settings.root, not_regular)
        for example in not_regular:
            inventory.problem(NOT_REGULAR, example)
    else:
        unreadable: list[str] = []
        folder_links: list[str] = []
        containers = folder_containers(settings.root, unreadable, folder_links)
        for example in unreadable:
            inventory.problem("unreadable_folder", example)
        for example in folder_links:
            inventory.problem(FOLDER_LINK, example)
    if not containers:
        raise EmotionError(
            f"source.root {settings.root} has Training/ or Validation/ but no photo archives",
            "they should hold [원천]EMOIMG_<감정>_TRAIN_0N.zip archives or unpacked folders",
        )
    votes = _load_votes(settings, layout, inventory)
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


def _load_votes(settings: ExtractSettings, layout: str, inventory: Tally) -> AnnotatorVotes | None:
    if settings.labels_source != "annotators":
        return None
    if layout != "aihub":
        raise EmotionError(
            "labels.source=annotators needs the AI Hub layout with [라벨] label archives",
            "use labels.source=folder for plain image folders",
        )
    not_regular: list[str] = []
    votes = AnnotatorVotes.load(label_archives(settings.root, not_regular), settings.zip_encoding)
    for example in not_regular:
        inventory.problem(NOT_REGULAR, example)
    for example in votes.problems:
        inventory.problem("broken_label_archive", example)
    if not len(votes):
        raise EmotionError(
            f"no annotator votes found in [라벨]*.zip under {settings.root}",
            "add the label archives next to the photo archives, or use labels.source=folder",
        )
    return votes


def _plan_container(
    settings: ExtractSettings,
    plan: Plan,
    container: Container,
    votes: AnnotatorVotes | None,
    vote_stats: dict[str, Counter[str]],
    subject_pattern: re.Pattern[str],
    class_pattern: re.Pattern[str] | None,
) -> None:
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
    media: list[Member] = []
    for member in members:
        inventory.count(name, "members")
        is_media = member.kind == "image" or (member.kind == "video" and container.kind != "zip")
        if is_media:
            media.append(member)
        elif member.kind in ("special", "folder_link"):
            inventory.count(name, "not_regular_files")
            kind = FOLDER_LINK if member.kind == "folder_link" else NOT_REGULAR
            inventory.problem(kind, _source(container, member))
        else:
            inventory.count(name, "non_images")
            inventory.problem("non_image", _source(container, member))
    inventory.count(name, "seen", len(media))
    if not media:
        inventory.problem("empty_archive", name)
        plan.archive_info[name]["status"] = "empty_archive"
        return
    if class_pattern is None and folder_emotion is None:
        inventory.problem("no_emotion_in_name", name)
        plan.archive_info[name]["status"] = "no_emotion_in_name"
        return
    allowed = settings.fixed_class_names  # None: classes=found keeps every class
    if (
        votes is None
        and class_pattern is None
        and allowed is not None
        and folder_emotion not in allowed
    ):
        inventory.count(name, "other_emotion", len(media))
        inventory.problem("emotion_not_in_class_set", f"{name} ({folder_emotion})")
        chosen = settings.classes if isinstance(settings.classes, str) else "classes"
        plan.archive_info[name]["status"] = f"skipped: {folder_emotion} not in {chosen}"
        return
    candidates: list[tuple[Member, str]] = []
    for member in media:
        emotion = _member_emotion(
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
        member, emotion = candidates[position]
        subject_text = (
            member.file_name
            if settings.subject_match_on == "file_name"
            else _path(container, member)
        )
        plan.tasks.append(
            Task(
                source=_source(container, member),
                path=str(container.path) if container.kind == "zip" else member.key,
                member=member.key if container.kind == "zip" else None,
                video=member.kind == "video",
                archive=name,
                label=-1,
                subject=subject_of(subject_text, subject_pattern),
                split=container.split,
                emotion=emotion,
            )
        )


def _member_emotion(
    settings: ExtractSettings,
    inventory: Tally,
    container: Container,
    member: Member,
    folder_emotion: str | None,
    votes: AnnotatorVotes | None,
    vote_stats: dict[str, Counter[str]],
    class_pattern: re.Pattern[str] | None,
) -> str | None:
    """The member's emotion, or None when it has none (counted and named in the report)."""
    name = container.name
    if class_pattern is not None:
        emotion = emotion_by_regex(class_pattern, member.file_name, settings.class_map)
        if emotion is None:
            inventory.count(name, "other_emotion")
            inventory.problem("no_emotion_in_name", _source(container, member))
        return emotion
    if votes is None:
        return folder_emotion
    found, vote = votes.lookup(container.split, member.file_name)
    stats = vote_stats[f"{folder_emotion}/{container.split}"]
    stats["photos"] += 1
    if not found:
        stats["no_vote"] += 1
        inventory.count(name, "no_vote")
        inventory.problem("no_vote", _source(container, member))
        return None
    if vote is None:
        stats["no_majority"] += 1
        inventory.count(name, "no_majority")
        inventory.problem("no_majority", _source(container, member))
        return None
    stats["vote_agrees" if vote == folder_emotion else "vote_differs"] += 1
    if vote != folder_emotion:
        stats[f"voted_{vote}"] += 1
    return vote


def _path(container: Container, member: Member) -> str:
    """The member's path under the root; a zip archive counts as a folder."""
    return member.name if container.name == "." else f"{container.name}/{member.name}"


def _source(container: Container, member: Member) -> str:
    if container.kind == "zip":
        return f"{container.name}::{member.name}"
    if container.name == ".":
        return member.name
    return f"{container.name}/{member.name}"


def shard_range(count: int, index: int, shards: int) -> tuple[int, int]:
    """Contiguous block of the task list for one shard: concatenating shards in index order
    gives exactly the order of an unsharded run."""
    return count * index // shards, count * (index + 1) // shards
