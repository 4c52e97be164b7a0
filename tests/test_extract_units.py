"""Extraction pieces that need no FaceMesh: names, labels, sampling, sharding, decoding."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from emotion.errors import EmotionError
from emotion.extract.labels import emotion_of_path, majority
from emotion.extract.plan import shard_range, subject_of
from emotion.extract.sampling import sample_positions
from emotion.facemesh.decode import (
    UndecodableImage,
    auto_reduce,
    decode_upright,
    jpeg_size,
    parse_reduce,
)
from emotion.facemesh.files import decode_zip_name
from tests.extract_tree import astronaut_bytes, rotated_with_exif, write_zip


def test_cp949_member_names_without_utf8_flag_are_decoded(tmp_path: Path) -> None:
    name = "사람_여_20_불안_도심 환경_1.jpg"
    write_zip(tmp_path / "legacy.zip", {name: b"x"}, cp949=True)
    write_zip(tmp_path / "utf8.zip", {name: b"x"}, cp949=False)
    with zipfile.ZipFile(tmp_path / "legacy.zip") as archive:
        info = archive.infolist()[0]
        assert not info.flag_bits & 0x800
        assert info.filename != name  # zipfile's cp437 reading
        assert decode_zip_name(info) == name
    with zipfile.ZipFile(tmp_path / "utf8.zip") as archive:
        assert decode_zip_name(archive.infolist()[0]) == name


def test_decomposed_hangul_folder_names_match() -> None:
    import unicodedata

    assert emotion_of_path(unicodedata.normalize("NFD", "Training/[원천]EMOIMG_불안_TRAIN_01")) == (
        "anxious"
    )
    assert emotion_of_path("photos/Neutral") == "neutral"
    assert emotion_of_path("photos/misc") is None


def test_majority_needs_two_of_three() -> None:
    assert majority(["anxious", "anxious", "sad"]) == "anxious"
    assert majority(["anxious", "sad", "happy"]) is None
    assert majority([None, None, "sad"]) is None


@pytest.mark.parametrize("method", ["uniform", "random"])
def test_sampling_caps_and_is_deterministic(method: str) -> None:
    kept = sample_positions(100, 10, method, seed=3, key="archive.zip")
    assert len(kept) == 10 and kept == sorted(set(kept))
    assert kept == sample_positions(100, 10, method, seed=3, key="archive.zip")
    assert sample_positions(5, 10, method, seed=3, key="x") == [0, 1, 2, 3, 4]
    if method == "uniform":
        assert kept[0] == 0 and kept[-1] == 99


def test_shard_ranges_tile_the_task_list() -> None:
    for count in (0, 1, 7, 100):
        ranges = [shard_range(count, index, 16) for index in range(16)]
        assert ranges[0][0] == 0 and ranges[-1][1] == count
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))


def test_subject_is_the_first_underscore_token() -> None:
    import re

    pattern = re.compile(r"^([^_]+)_")
    assert subject_of("abc123_여_20_중립_x.jpg", pattern) == "abc123"
    assert subject_of("nounderscore.jpg", pattern) == "nounderscore"


@pytest.mark.parametrize("reduce", [1, 2, 4])
def test_decode_applies_exif_orientation_and_reports_full_size(reduce: int) -> None:
    rgb, size = decode_upright(rotated_with_exif(), reduce)
    assert size == (400, 512)  # upright width x height at full resolution
    assert rgb.shape[:2] == (512 // reduce, 400 // reduce)


def test_truncated_jpeg_is_undecodable() -> None:
    data = astronaut_bytes()
    with pytest.raises(UndecodableImage):
        decode_upright(data[: len(data) // 2], 2)
    with pytest.raises(UndecodableImage):
        decode_upright(b"\x00not an image", 2)
    # Trailing bytes after the end marker (phone "motion photos") are fine.
    rgb, size = decode_upright(data + b"trailing data", 2)
    assert size == (512, 512) and rgb.dtype == np.uint8


def _reencoded(data: bytes, **options: object) -> bytes:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, **options)  # type: ignore[arg-type]
    return buffer.getvalue()


def test_jpeg_size_reads_the_frame_header_like_pil() -> None:
    import io

    from PIL import Image

    cropped = _reencoded(astronaut_bytes(), format="JPEG")
    for data in (
        astronaut_bytes(),
        rotated_with_exif(),
        _reencoded(rotated_with_exif(), format="JPEG", progressive=True),
        cropped,
    ):
        with Image.open(io.BytesIO(data)) as image:
            assert jpeg_size(data) == image.size
    assert jpeg_size(_reencoded(astronaut_bytes(), format="PNG")) is None
    assert jpeg_size(b"\xff\xd8\xff") is None
    assert jpeg_size(astronaut_bytes()[:20]) is None


def test_auto_reduce_keeps_the_short_side() -> None:
    assert auto_reduce((1280, 960)) == 2
    assert auto_reduce((3024, 4032)) == 4
    assert auto_reduce((640, 480)) == 1
    assert auto_reduce((1280, 960), min_short_side=240) == 4
    assert auto_reduce((8000, 6000), min_short_side=240) == 8
    assert auto_reduce(None) == 1


def test_auto_decode_reduces_by_the_upright_photo() -> None:
    rgb, size = decode_upright(rotated_with_exif(), "auto", min_short_side=200)
    assert size == (400, 512)
    assert rgb.shape[:2] == (256, 200)  # 1/2: the short side 400 -> 200
    rgb, _ = decode_upright(rotated_with_exif(), "auto", min_short_side=201)
    assert rgb.shape[:2] == (512, 400)


@pytest.mark.parametrize("value", ["3", "x", 2.5, None, "2x"])
def test_reduce_setting_is_checked(value: object) -> None:
    with pytest.raises(EmotionError, match="use auto, 1, 2, 4 or 8"):
        parse_reduce(value)
    assert parse_reduce("auto") == "auto" and parse_reduce("4") == 4 and parse_reduce(8) == 8


@pytest.mark.parametrize(
    ("image_format", "mode"),
    [
        ("TIFF", "L"),
        ("TIFF", "RGB"),
        ("PNG", "L"),
        ("PNG", "RGBA"),
        ("BMP", "RGB"),
        ("WEBP", "RGB"),
    ],
)
@pytest.mark.parametrize("reduce", ["auto", 2])
def test_other_formats_decode_to_rgb(image_format: str, mode: str, reduce: int | str) -> None:
    """JAFFE is grayscale TIFF, CK+ PNG: OpenCV gives them 3 channels like any JPEG."""
    from tests.extract_tree import face_file

    data = face_file(image_format, size=160, mode=mode)
    rgb, size = decode_upright(data, reduce)
    side = 160 if reduce == "auto" else 80
    assert rgb.shape == (side, side, 3) and rgb.dtype == np.uint8 and size == (160, 160)
    assert 20 < rgb.mean() < 235


def test_an_empty_file_is_named() -> None:
    from emotion.facemesh.decode import EmptyFile

    with pytest.raises(EmptyFile, match="0 bytes") as caught:
        decode_upright(b"", "auto")
    assert caught.value.problem == "empty_file" and isinstance(caught.value, UndecodableImage)


def test_new_image_suffixes_are_images() -> None:
    from emotion.facemesh.files import member_kind

    for name in ("KA.FE1.45.tiff", "a.TIF", "b.bmp", "c.webp", "AF01AFS.JPG"):
        assert member_kind(name) == "image"


@pytest.mark.parametrize(
    ("override", "key"),
    [("sampling=rand", "full_key: sampling"), ("source.video_stride=abc", "source.video_stride")],
)
def test_the_extract_schema_names_a_wrong_value_at_compose_time(
    tmp_path: Path, override: str, key: str
) -> None:
    from hydra.errors import ConfigCompositionException

    from tests.extract_tree import extract_config

    with pytest.raises(ConfigCompositionException) as refused:
        extract_config(tmp_path, tmp_path / "s.h5", override)
    assert key in str(refused.value.__cause__ or refused.value)
