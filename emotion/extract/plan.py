"""Turn a data root into the ordered list of photos to process, counting everything skipped.

The plan is a pure function of the files and the settings, so every run, resumed run and
shard sees the same tasks in the same order.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from emotion.errors import EmotionError
from emotion.extract.labels import AnnotatorVotes, emotion_by_regex, emotion_of_path
from emotion.extract.report import Tally
from emotion.extract.sampling import sample_positions
from emotion.extract.settings import ExtractSettings
from emotion.extract.sources import (
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
    label: int
    subject: str
    split: str


@dataclass
class Plan:
    layout: str
    tasks: list[Task]
    archive_info: dict[str, dict[str, Any]]
    inventory: Tally
    votes: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def compile_regex(pattern: str, setting: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as error:
        raise EmotionError(
            f"{setting}={pattern!r} is not a valid regular expression ({error})",
            "fix the pattern (Python re syntax); quote it on the command line",
        ) from error


def subject_of(file_name: str, pattern: re.Pattern[str]) -> str:
    """The person: by default the first `_` token of the file name (AI Hub's person hash)."""
    match = pattern.search(file_name)
    if match:
        return match.group(1) if match.groups() else match.group()
    return file_name.rsplit(".", 1)[0]


def make_plan(settings: ExtractSettings) -> Plan:
    layout = check_root(settings.root, settings.layout)
    inventory = Tally()
    if layout == "aihub":
        containers = aihub_containers(settings.root)
    else:
        unreadable: list[str] = []
        containers = folder_containers(settings.root, unreadable)
        for example in unreadable:
            inventory.problem("unreadable_folder", example)
    if not containers:
        raise EmotionError(
            f"source.root {settings.root} has Training/ or Validation/ but no photo archives",
            "they should hold [원천]EMOIMG_<감정>_TRAIN_0N.zip archives or unpacked folders",
        )
    votes = _load_votes(settings, layout)
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
    return plan


def _load_votes(settings: ExtractSettings, layout: str) -> AnnotatorVotes | None:
    if settings.labels_source != "annotators":
        return None
    if layout != "aihub":
        raise EmotionError(
            "labels.source=annotators needs the AI Hub layout with [라벨] label archives",
            "use labels.source=folder for plain image folders",
        )
    votes = AnnotatorVotes.load(label_archives(settings.root), settings.zip_encoding)
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
    folder_emotion = None if class_pattern else emotion_of_path(name)
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
    class_names = settings.class_names
    if votes is None and class_pattern is None and folder_emotion not in class_names:
        inventory.count(name, "other_emotion", len(media))
        inventory.problem("emotion_not_in_class_set", f"{name} ({folder_emotion})")
        plan.archive_info[name]["status"] = f"skipped: {folder_emotion} not in {settings.classes}"
        return
    candidates: list[tuple[Member, str]] = []
    for member in media:
        emotion = _member_emotion(
            settings, inventory, container, member, folder_emotion, votes, vote_stats, class_pattern
        )
        if emotion is None:
            continue
        if emotion not in class_names:
            inventory.count(name, "other_emotion")
            continue
        candidates.append((member, emotion))
    kept = sample_positions(
        len(candidates), settings.max_per_archive, settings.sampling, settings.seed, name
    )
    inventory.count(name, "sampled", len(kept))
    for position in kept:
        member, emotion = candidates[position]
        plan.tasks.append(
            Task(
                source=_source(container, member),
                path=str(container.path) if container.kind == "zip" else member.key,
                member=member.key if container.kind == "zip" else None,
                video=member.kind == "video",
                archive=name,
                label=class_names.index(emotion),
                subject=subject_of(member.file_name, subject_pattern),
                split=container.split,
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
        emotion = emotion_by_regex(class_pattern, member.file_name)
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
