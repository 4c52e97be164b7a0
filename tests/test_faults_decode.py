"""Photos that decode wrongly or at a hostile cost, as emotion-extract, emotion-predict and
emotion-serve meet them: a Radiance .hdr past the pixel cap, a JPEG of 5,000 scans, EXIF
orientation in every format, two faces in one photo, and special files in an input folder.
Every file is made here, small on disk."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from emotion.facemesh.jpeg import scan_count
from emotion.store.io import read_store
from tests.commands import emotion

FACE = Path(__file__).parent / "fixtures" / "astronaut.jpg"
# EXIF orientation -> how the pixels are stored so that applying it shows them upright.
STORED_TURNED = {
    6: Image.Transpose.ROTATE_90,
    8: Image.Transpose.ROTATE_270,
    3: Image.Transpose.ROTATE_180,
}


def radiance_hdr(width: int, height: int) -> bytes:
    """A Radiance RGBE image, every scanline run-length encoded: 8 bytes per 127 pixels."""
    line = bytearray(b"\x02\x02" + width.to_bytes(2, "big"))
    for value in (128, 128, 128, 129):
        left = width
        while left:
            run = min(left, 127)
            line += bytes([128 + run, value])
            left -= run
    header = b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y %d +X %d\n" % (height, width)
    return header + bytes(line) * height


def many_scans_jpeg(scans: int = 5000) -> bytes:
    """A 64x64 progressive JPEG with its smallest scan repeated until it has `scans`."""
    image = Image.open(FACE).convert("RGB").resize((64, 64))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", progressive=True)
    data = buffer.getvalue()
    end = data.rindex(b"\xff\xd9")
    starts = [i for i in range(len(data) - 1) if data[i : i + 2] == b"\xff\xda"]
    bounds = list(zip(starts, [*starts[1:], end], strict=True))
    begin, stop = min(bounds, key=lambda pair: pair[1] - pair[0])
    repeated = data[begin:stop] * (scans - len(starts))
    return data[:end] + repeated + data[end:]


def upright_photo() -> Image.Image:
    """The fixture cropped to 512x400: not square, so a sideways decode shows in its size."""
    return Image.open(FACE).convert("RGB").crop((0, 0, 512, 400))


def encoded(image: Image.Image, image_format: str, orientation: int | None = None) -> bytes:
    """`image` in `image_format`, stored turned so that EXIF `orientation` makes it upright."""
    options: dict[str, Any] = {"WEBP": {"lossless": True}, "JPEG": {"quality": 95}}.get(
        image_format, {}
    )
    if orientation is not None:
        image = image.transpose(STORED_TURNED[orientation])
        exif = Image.Exif()
        exif[0x0112] = orientation
        options["exif"] = exif.tobytes()
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def two_faces() -> bytes:
    """Two copies of the fixture's face side by side, the right one at 70 %."""
    face = Image.open(FACE).convert("RGB").crop((100, 0, 356, 256))
    both = Image.new("RGB", (512, 256), (128, 128, 128))
    both.paste(face, (0, 0))
    both.paste(face.resize((179, 179)), (256, 0))
    buffer = io.BytesIO()
    both.save(buffer, "PNG")
    return buffer.getvalue()


def test_the_crafted_files_are_what_they_claim() -> None:
    data = radiance_hdr(2000, 1000)
    assert len(data) < 200_000 and data.startswith(b"#?RADIANCE")
    scans = many_scans_jpeg()
    assert scan_count(scans) == 5000 and len(scans) < 1_000_000


ROTATED = [
    ("JPEG", ".jpg", 6),
    ("JPEG", ".jpg", 8),
    ("PNG", ".png", 6),
    ("PNG", ".png", 3),
    ("WEBP", ".webp", 6),
    ("WEBP", ".webp", 8),
    ("TIFF", ".tif", 6),
]


@pytest.mark.slow
def test_extraction_caps_every_format_bounds_scans_and_turns_every_format_upright(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "photos" / "neutral"
    folder.mkdir(parents=True)
    upright = upright_photo()
    for image_format, suffix, _ in ROTATED[::2]:
        (folder / f"p1_upright{suffix}").write_bytes(encoded(upright, image_format))
    for image_format, suffix, orientation in ROTATED:
        name = f"p1_rot{orientation}_{image_format.lower()}{suffix}"
        (folder / name).write_bytes(encoded(upright, image_format, orientation))
    # Named as photos: a decoder goes by the bytes, not the name.
    (folder / "p2_radiance.jpg").write_bytes(radiance_hdr(2000, 1000))
    (folder / "p3_scans.jpg").write_bytes(many_scans_jpeg())
    output = tmp_path / "s.h5"
    done = emotion(
        "emotion.extract.app",
        f"source.root={tmp_path / 'photos'}",
        f"output={output}",
        "decode.max_pixels=1000000",
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(output.with_name(output.name + ".report.json").read_text())
    problems = report["problems"]
    assert problems["unsupported_format"]["count"] == 1, problems
    assert "p2_radiance.jpg" in problems["unsupported_format"]["examples"][0]
    assert problems["too_many_scans"]["count"] == 1, problems
    assert "5000 scans" in problems["too_many_scans"]["examples"][0]
    store = read_store(output)
    rows = {Path(source).name: index for index, source in enumerate(store.source)}
    for image_format, suffix, orientation in ROTATED:
        turned = rows[f"p1_rot{orientation}_{image_format.lower()}{suffix}"]
        straight = rows[f"p1_upright{suffix}"]
        assert tuple(store.image_size[turned]) == (512, 400), (image_format, orientation)
        moved = np.abs(store.landmarks[turned, :, :2] - store.landmarks[straight, :, :2]).max()
        assert moved < 0.01, (image_format, orientation, moved)


def test_extraction_counts_special_entries_even_in_folders_without_photos(tmp_path: Path) -> None:
    """A folder of no photos is no container, so its FIFOs and links were never counted."""
    root = tmp_path / "photos"
    (root / "neutral").mkdir(parents=True)
    (root / "neutral" / "p1_face.jpg").write_bytes(FACE.read_bytes())
    os.mkfifo(root / "neutral" / "p1_fifo.jpg")
    (root / "junk").mkdir()
    os.mkfifo(root / "junk" / "pipe")
    (root / "junk" / "device").symlink_to(os.devnull)
    (root / "junk" / "loop").symlink_to(root / "junk" / "loop")
    (root / "junk" / "notes.txt").write_text("a regular file: not counted as special\n")
    output = tmp_path / "s.h5"
    done = emotion(
        "emotion.extract.app", f"source.root={root}", f"output={output}", cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(output.with_name(output.name + ".report.json").read_text())
    special = report["problems"]["not_a_regular_file"]
    assert special["count"] == 4, special
    assert {"junk/device", "junk/loop", "junk/pipe", "neutral/p1_fifo.jpg"} <= set(
        special["examples"]
    )
    said = [line for line in (done.stdout + done.stderr).splitlines() if "not_a_regular" in line]
    assert len(said) == 1 and "link loop" in said[0] and ": 4, e.g. junk/" in said[0], said


def test_the_largest_face_is_scored_whatever_order_the_landmarker_gives() -> None:
    """MediaPipe lists the most confident face first, which is not always the largest."""
    from types import SimpleNamespace

    from emotion.facemesh.landmarker import Landmarker

    def face(left: float, width: float) -> list[Any]:
        return [
            SimpleNamespace(x=float(x), y=float(0.2 + x - left), z=0.0)
            for x in np.linspace(left, left + width, 478)
        ]

    def scores(level: float) -> list[Any]:
        return [SimpleNamespace(index=index, score=level) for index in range(52)]

    listed = SimpleNamespace(
        face_landmarks=[face(0.1, 0.1), face(0.5, 0.3), face(0.3, 0.05)],
        face_blendshapes=[scores(0.1), scores(0.5), scores(0.3)],
        facial_transformation_matrixes=[np.eye(4) * k for k in (1, 2, 3)],
    )
    detector = Landmarker.__new__(Landmarker)
    detector.mode, detector._quiet_until_first_face = "image", False
    detector._image, detector._format = lambda **_: None, None
    detector._landmarker = SimpleNamespace(detect=lambda image: listed)
    reading, count = detector.find(np.zeros((100, 100, 3), dtype=np.uint8))
    assert count == 3 and reading is not None
    assert reading.landmarks[:, 0].min() == pytest.approx(0.5)
    assert reading.landmarks[:, 0].max() == pytest.approx(0.8)
    # The largest face's own blendshapes and pose come with it, not the first face's.
    assert np.allclose(reading.blendshapes, 0.5) and reading.pose[0, 0] == 2


def rows_of(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return {Path(row["source"]).name: row for row in csv.DictReader(handle)}


@pytest.mark.slow
def test_predict_counts_faces_skips_special_entries_and_refuses_endless_scans(
    synthetic_run: tuple[Path, dict], tmp_path: Path
) -> None:
    run_dir, _ = synthetic_run
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a_one.jpg").write_bytes(FACE.read_bytes())
    (folder / "b_two.png").write_bytes(two_faces())
    (folder / "c_scans.jpg").write_bytes(many_scans_jpeg())
    os.mkfifo(folder / "d_fifo.jpg")
    (folder / "e_device.jpg").symlink_to(os.devnull)
    (folder / "f_loop.jpg").symlink_to(folder / "f_loop.jpg")
    output = tmp_path / "p.csv"
    done = emotion(
        "emotion.predict", str(run_dir), str(folder), "-o", str(output), cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    warning = [line for line in done.stderr.splitlines() if line.startswith("warning: skipped")]
    assert len(warning) == 1 and "skipped 3 entries" in warning[0], done.stderr[-3000:]
    assert f"first: {folder / 'd_fifo.jpg'}" in warning[0]
    rows = rows_of(output)
    assert sorted(rows) == ["a_one.jpg", "b_two.png", "c_scans.jpg"]
    assert rows["a_one.jpg"]["faces"] == "1" and rows["a_one.jpg"]["status"] == "ok"
    assert rows["b_two.png"]["faces"] == "2" and rows["b_two.png"]["status"] == "ok"
    assert rows["c_scans.jpg"]["status"] == "unreadable" and rows["c_scans.jpg"]["faces"] == ""
    assert "5000 scans" in rows["c_scans.jpg"]["error"]
    summary = json.loads(output.with_name("p.csv.summary.json").read_text())
    assert summary["skipped_not_regular"] == 3


@pytest.mark.slow
def test_the_server_refuses_what_it_cannot_size_or_bound_and_counts_faces(
    synthetic_run: tuple[Path, dict],
) -> None:
    pytest.importorskip("fastapi", reason="the serving tests need the serve extra")
    from tests.serving import post, running_server

    run_dir, _ = synthetic_run
    with running_server(run_dir, "--max-pixels", "1000000") as base:
        status, refused = post(base + "/v1/predict", radiance_hdr(2000, 1000))
        assert status == 415 and "not a JPEG, PNG, TIFF, BMP or WebP" in refused["error"]
        assert refused["fix"]
        status, refused = post(base + "/v1/predict", many_scans_jpeg())
        assert status == 422 and "5000 scans" in refused["error"] and refused["fix"]
        status, answer = post(base + "/v1/predict?landmarks=true", two_faces())
        assert status == 200 and answer["face"] and answer["faces"] == 2
        assert np.mean(np.asarray(answer["landmarks"])[:, 0]) < 0.5  # the larger, left face
        status, answer = post(base + "/v1/predict", encoded(upright_photo(), "WEBP", 6))
        assert status == 200 and answer["faces"] == 1 and answer["image_size"] == [512, 400]
        from websockets.sync.client import connect

        with connect(base.replace("http://", "ws://") + "/v1/stream") as stream:
            stream.send(two_faces())
            frame = json.loads(stream.recv(timeout=60))
        assert frame["status"] == "ok" and frame["faces"] == 2  # the stream says so too
