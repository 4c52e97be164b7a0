"""Photo bytes to upright RGB pixels, at reduced resolution where FaceMesh allows it.

JPEG decoding is a third of a photo's cost at full resolution; libjpeg's DCT scaling decodes
at 1/2, 1/4 or 1/8 for much less, and FaceMesh only looks at a 128-px view of the photo and a
192-px crop of the face. The full-resolution size is still reported (from the header), since
the store records the image size of the photo, not of the decode.
"""

from __future__ import annotations

import io
import math
import warnings
from typing import Any

import numpy as np

from emotion.errors import EmotionError
from emotion.facemesh.jpeg import MAX_SCANS, jpeg_size, scan_count


class UndecodableImage(Exception):
    """Bytes that are not a whole image (corrupt, truncated, not an image at all).

    Subclasses name other reasons a photo gives no image; `problem` is the report's name.
    """

    problem = "undecodable"


class EmptyFile(UndecodableImage):
    problem = "empty_file"


class TooLarge(UndecodableImage):
    """Over `decode.max_bytes` or `decode.max_pixels`: refused before it is read or decoded."""

    problem = "too_large"


class UnsupportedFormat(UndecodableImage):
    """Not one of ACCEPTED_FORMATS: refused before decoding, since its size is not known."""

    problem = "unsupported_format"


class TooManyScans(UndecodableImage):
    """A JPEG of more than MAX_SCANS scans: minutes of libjpeg's time, refused unread."""

    problem = "too_many_scans"


class NotRegularFile(UndecodableImage):
    """A FIFO, socket, device or broken link: never opened (a FIFO would block for ever)."""

    problem = "not_a_regular_file"


class UnreadableFile(UndecodableImage):
    """The file system refused to read it (permissions, I/O error, gone since planning)."""

    problem = "unreadable_file"


class CorruptArchiveMember(UndecodableImage):
    """A zip member that cannot be decompressed (bad deflate data, CRC, truncated archive)."""

    problem = "corrupt_archive_member"


REDUCTIONS = (1, 2, 4, 8)
# decode.reduce=auto: the largest reduction that keeps the short side of the photo at least
# this long. 480 px is where 1280x960 photos land at 1/2, whose landmarks the benchmark shows
# to move no more than a one-pixel shift of the photo moves them.
MIN_SHORT_SIDE = 480
# A photo's bytes are read whole and its pixels decoded whole, so both are capped before
# either happens: one member of a zip bomb, or a header claiming 20000x20000, must not take
# the machine's memory. 64 MiB is several times the largest camera JPEG; 100 MP is more than
# any phone or DSLR (about 3x a 12 MP photo's RGB decode, 300 MB).
MAX_BYTES = 64 * 2**20
# What PIL calls the formats decoded (MPO: a phone's JPEG with a second picture appended).
ACCEPTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "TIFF", "BMP", "WEBP"})
ACCEPTED_NAMES = "JPEG, PNG, TIFF, BMP or WebP"
MAX_PIXELS = 100_000_000


def parse_reduce(value: Any) -> int | str:
    """A decode.reduce / --reduce setting: "auto" or one of REDUCTIONS."""
    if str(value) == "auto":
        return "auto"
    try:
        factor = int(value)
    except (TypeError, ValueError):
        factor = 0
    if factor not in REDUCTIONS or str(factor) != str(value).strip():
        raise EmotionError(f"reduce={value} is not allowed", "use auto, 1, 2, 4 or 8")
    return factor


def auto_reduce(size: tuple[int, int] | None, min_short_side: int = MIN_SHORT_SIDE) -> int:
    """The largest of 2, 4, 8 that keeps min(size) / factor >= min_short_side, else 1."""
    if size is None:
        return 1
    short_side = min(size)
    fitting = [factor for factor in REDUCTIONS if math.ceil(short_side / factor) >= min_short_side]
    return max(fitting, default=1)


def reduction_for(
    size: tuple[int, int] | None, reduce: int | str, min_short_side: int = MIN_SHORT_SIDE
) -> int:
    """The factor to decode a photo (or scale a video frame) of `size` at."""
    return auto_reduce(size, min_short_side) if reduce == "auto" else int(reduce)


def _imread_flag(reduce: int) -> int:
    import cv2

    return {
        1: cv2.IMREAD_COLOR,
        2: cv2.IMREAD_REDUCED_COLOR_2,
        4: cv2.IMREAD_REDUCED_COLOR_4,
        8: cv2.IMREAD_REDUCED_COLOR_8,
    }[reduce]


def decode_upright(
    data: bytes,
    reduce: int | str = 1,
    min_short_side: int = MIN_SHORT_SIDE,
    max_pixels: int = MAX_PIXELS,
) -> tuple[np.ndarray, tuple[int, int]]:
    """RGB pixels with the EXIF orientation applied, and the full-resolution upright size.

    Only formats whose size is known before decoding are decoded (ACCEPTED_FORMATS): a JPEG's
    from its frame header, the others' from PIL's header reading. OpenCV also decodes formats
    PIL cannot size (a Radiance .hdr claiming 32000x8000 in 16 MB took 4 GB), so those are
    refused rather than handed to it. A JPEG goes to libjpeg through OpenCV: `reduce` > 1
    decodes at 1/2, 1/4 or 1/8 scale (DCT scaling), cheaper than a full decode, and FaceMesh
    looks at a 192-px crop anyway; "auto" picks the factor per photo (`auto_reduce`); OpenCV
    applies a JPEG's EXIF orientation. The others (PNG, TIFF, BMP, WebP; grayscale too) are
    decoded by PIL with `ImageOps.exif_transpose` (OpenCV ignores a WebP's orientation), as
    3-channel RGB. Raises UndecodableImage (or a subclass naming the reason) for anything
    that is not a whole image, and before decoding when the header claims more than
    `max_pixels` or a JPEG more than MAX_SCANS scans.
    """
    if not data:
        raise EmptyFile("empty file (0 bytes)")
    if data.startswith(b"\xff\xd8"):
        scans = scan_count(data)
        if scans > MAX_SCANS:
            raise TooManyScans(
                f"a JPEG of {scans} scans, over the limit of {MAX_SCANS} (encoders write about "
                "10): its decoding time grows with every scan"
            )
    stored = jpeg_size(data)
    if stored is None:
        return _decode_with_pil(data, reduction_for(None, reduce, min_short_side), max_pixels)
    _check_pixels(stored, max_pixels)
    if _is_truncated_jpeg(data):
        raise UndecodableImage("truncated JPEG")
    factor = reduction_for(stored, reduce, min_short_side)
    import cv2

    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), _imread_flag(factor))
    except cv2.error as error:
        raise UndecodableImage(f"OpenCV cannot decode it ({_first_line(error)})") from error
    if image is None or image.size == 0:
        raise UndecodableImage("OpenCV cannot decode it")
    height, width = image.shape[:2]
    size = (width, height) if factor == 1 else _full_size(data, (width, height), factor, stored)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), size


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    if size[0] * size[1] > max_pixels:
        raise TooLarge(f"{size[0]}x{size[1]} pixels, over decode.max_pixels={max_pixels}")


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def _decode_with_pil(
    data: bytes, factor: int, max_pixels: int
) -> tuple[np.ndarray, tuple[int, int]]:
    """A PNG, TIFF, BMP or WebP (or a JPEG whose header the walk missed), upright, as RGB.

    PIL identifies the format and reads the size from the header before any pixel is
    decoded; anything it cannot identify, or a format outside ACCEPTED_FORMATS, is refused.
    `factor` > 1 shrinks the decode as OpenCV's reduced flags did (INTER_LINEAR_EXACT).
    """
    from PIL import Image, ImageOps

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as error:
            raise TooLarge(f"over PIL's pixel limit ({error})") from error
        except Exception as error:  # PIL raises many types for what it cannot identify
            raise UnsupportedFormat(f"not a {ACCEPTED_NAMES} image") from error
        with image:
            if image.format not in ACCEPTED_FORMATS:
                raise UnsupportedFormat(f"a {image.format} image, not a {ACCEPTED_NAMES} one")
            _check_pixels(image.size, max_pixels)
            try:
                rgb = _rgb_array(ImageOps.exif_transpose(image))
            except Image.DecompressionBombError as error:
                raise TooLarge(f"over PIL's pixel limit ({error})") from error
            except Exception as error:  # truncated or corrupt data: PIL raises many types
                raise UndecodableImage(f"PIL cannot decode it ({_first_line(error)})") from error
    size = (rgb.shape[1], rgb.shape[0])
    if factor > 1:
        import cv2

        shrunk = (max(size[0] // factor, 1), max(size[1] // factor, 1))
        rgb = cv2.resize(rgb, shrunk, interpolation=cv2.INTER_LINEAR_EXACT)
    return rgb, size


def _rgb_array(image: Any) -> np.ndarray:
    """8-bit RGB pixels; 16- and 32-bit grayscale scaled down as OpenCV's IMREAD_COLOR does."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        gray = np.asarray(image).astype(np.uint32) >> 8
        return np.repeat(np.clip(gray, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
    if image.mode == "F":
        gray = np.clip(np.asarray(image), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    return np.ascontiguousarray(np.asarray(image.convert("RGB")))


def _is_truncated_jpeg(data: bytes) -> bool:
    """libjpeg fills a truncated JPEG with grey and only warns; catch it by its missing end.

    Files that end without the EOI marker may carry trailing data (phone "motion photos"),
    so those are checked by a cheap 1/8-scale PIL decode, which raises when truncated.
    """
    if not data.startswith(b"\xff\xd8"):
        return False
    if data.rstrip(b"\0").endswith(b"\xff\xd9"):
        return False
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image.draft("RGB", (max(image.width // 8, 1), max(image.height // 8, 1)))
                image.load()
    except Image.DecompressionBombError as error:
        raise TooLarge(f"over PIL's pixel limit ({error})") from error
    except Exception:  # PIL raises many types on broken data
        return True
    return False


def _upright(
    stored: tuple[int, int], reduced: tuple[int, int], reduce: int
) -> tuple[int, int] | None:
    """The stored size turned as OpenCV turned the photo, known from the decoded shape."""
    width, height = stored
    if (math.ceil(width / reduce), math.ceil(height / reduce)) == reduced:
        return width, height
    if (math.ceil(height / reduce), math.ceil(width / reduce)) == reduced:
        return height, width
    return None


def _full_size(
    data: bytes, reduced: tuple[int, int], reduce: int, stored: tuple[int, int] | None = None
) -> tuple[int, int]:
    """Full-resolution upright (width, height) from the header, checked against the decode."""
    from PIL import Image

    if stored is not None:
        upright = _upright(stored, reduced, reduce)
        if upright is not None:
            return upright
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                orientation = image.getexif().get(0x0112, 1)
    except Exception:  # only the size is wanted; the decode worked
        return reduced[0] * reduce, reduced[1] * reduce
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return _upright((width, height), reduced, reduce) or (width, height)
