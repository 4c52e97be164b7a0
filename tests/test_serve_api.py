"""The HTTP API in-process (FastAPI's TestClient): the served numbers are emotion-predict's,
every client mistake is a 4xx `{error, fix}` and the server keeps answering, the personal
baseline only answers within an enrolled session, and sessions are bounded."""

from __future__ import annotations

import csv
import io
import json
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the serving tests need the serve extra")
pytest.importorskip("mediapipe", reason="the serving tests need the extract extra")

from fastapi.testclient import TestClient  # noqa: E402

from emotion.inference.ensemble import load_model  # noqa: E402
from emotion.predict.pipeline import predict  # noqa: E402
from emotion.serve.api import create_app  # noqa: E402
from emotion.serve.engine import Engine  # noqa: E402
from emotion.serve.settings import ServeSettings  # noqa: E402


def client_for(run: Path, **settings: object) -> TestClient:
    # TestClient's requests name the host "testserver", which the server must be told of.
    settings.setdefault("allowed_hosts", ("testserver",))
    engine = Engine(load_model(str(run)), ServeSettings(**settings))  # type: ignore[arg-type]
    return TestClient(create_app(engine))


@pytest.fixture(scope="module")
def plain(plain_run: Path) -> Iterator[TestClient]:
    with client_for(plain_run, max_body_bytes=2**20, max_pixels=4_000_000, workers=2) as client:
        yield client


@pytest.fixture(scope="module")
def enrolled(enrolled_run: Path) -> Iterator[TestClient]:
    with client_for(enrolled_run, max_sessions=3, session_ttl_s=30) as client:
        yield client


def photos(photo_store: tuple[Path, Path], split: str = "test") -> list[Path]:
    return sorted((photo_store[0] / split).rglob("*.jpg"))


def predicted(run: Path, files: list[Path], tmp_path: Path, **options: object) -> list[dict]:
    """emotion-predict's rows for these files."""
    output = tmp_path / f"rows{len(list(tmp_path.iterdir()))}.csv"
    predict(run, [str(path) for path in files], output, **options)  # type: ignore[arg-type]
    return list(csv.DictReader(output.open()))


def assert_same(row: dict, answer: dict) -> None:
    for name, value in answer["probabilities"].items():
        assert value == pytest.approx(float(row[f"p_{name}"]), abs=1e-6), name
    assert answer["label"] == row["label"]


def gray_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (128, 128, 128)).save(buffer, "JPEG")
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims huge dimensions, with almost no pixel data behind it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def assert_still_serving(client: TestClient, photo: Path) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.post("/v1/predict", content=photo.read_bytes()).status_code == 200


def test_the_api_reference_builds_without_a_warning(plain_run: Path) -> None:
    """/openapi.json (what /docs shows): one operation ID per route; GET and HEAD on one
    route gave /healthz two, with a UserWarning."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spec = client_for(plain_run).get("/openapi.json").json()
    assert "head" not in spec["paths"]["/healthz"] and "get" in spec["paths"]["/healthz"]


def test_model_info_says_what_is_served(plain: TestClient, plain_run: Path) -> None:
    info = plain.get("/v1/model").json()
    assert info["class_names"] == ["neutral", "anxious"]
    assert info["baseline"] == "none" and info["needs_reference"] is False
    assert info["trained_on_synthetic"] is False
    assert info["preprocessing"]["normalization"] == "nose_unit"
    assert info["temperature"] == [1.0] and info["version"]
    assert info["limits"] == {
        "max_body_bytes": 2**20,
        "max_pixels": 4_000_000,
        "max_sessions": 100,
        "max_connections": 64,
        "session_ttl_s": 600.0,
        "workers": 2,
    }
    assert str(plain_run) in info["model"]
    assert "/v1/predict" in plain.get("/openapi.json").json()["paths"]
    # What the score rests on: the photo store, its people, and the test balanced accuracy.
    metrics = json.loads((plain_run / "metrics.json").read_text())
    trained_on = info["trained_on"]
    assert trained_on["synthetic"] is False and trained_on["data"].endswith(".h5")
    assert trained_on["rows"] == metrics["data"]["rows"] == 16
    assert trained_on["people"]["train"] == 2 and trained_on["people"]["test"] == 2
    assert trained_on["test_bal_acc"] == pytest.approx(metrics["test"]["test/bal_acc"])


def test_predict_gives_emotion_predicts_probabilities(
    plain: TestClient, plain_run: Path, photo_store: tuple[Path, Path], tmp_path: Path
) -> None:
    files = photos(photo_store)
    rows = predicted(plain_run, files, tmp_path)
    for path, row in zip(files, rows, strict=True):
        raw = plain.post(
            "/v1/predict", content=path.read_bytes(), headers={"content-type": "image/jpeg"}
        )
        assert raw.status_code == 200, raw.text
        answer = raw.json()
        assert answer["face"] and answer["landmarks"] is None
        assert_same(row, answer)
        assert answer["score"] == answer["probabilities"]["anxious"]
        assert answer["timing_ms"]["total"] >= answer["timing_ms"]["facemesh"] > 0
        upload = plain.post("/v1/predict", files={"file": (path.name, path.read_bytes())})
        assert upload.json()["probabilities"] == answer["probabilities"]


def test_landmarks_come_back_and_score_the_same(
    plain: TestClient, photo_store: tuple[Path, Path]
) -> None:
    photo = photos(photo_store)[0]
    answer = plain.post("/v1/predict?landmarks=true", content=photo.read_bytes()).json()
    assert np.asarray(answer["landmarks"]).shape == (478, 3)
    again = plain.post(
        "/v1/predict/landmarks",
        json={"landmarks": answer["landmarks"], "image_size": answer["image_size"]},
    ).json()
    for name, value in answer["probabilities"].items():
        assert again["probabilities"][name] == pytest.approx(value, abs=1e-6)


def test_a_photo_without_a_face_says_so(plain: TestClient) -> None:
    answer = plain.post("/v1/predict", content=gray_jpeg()).json()
    assert answer["face"] is False and answer["probabilities"] is None and answer["label"] is None


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"this is not an image", 415, "cannot be used"),
        (b"", 400, "empty"),
        (b"\xff\xd8" + b"\x00" * (2**20 + 10), 413, "limit"),
        (png_claiming(30000, 30000), 413, "pixels"),
        (b"\xff\xd8\xff\xe0 truncated jpeg", 415, "cannot be used"),
    ],
    ids=["not-an-image", "empty", "oversized", "huge-dimensions", "truncated"],
)
def test_bad_images_get_a_4xx_and_the_server_goes_on(
    plain: TestClient, photo_store: tuple[Path, Path], body: bytes, status: int, words: str
) -> None:
    answer = plain.post("/v1/predict", content=body)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["error"] and answer.json()["fix"]
    assert_still_serving(plain, photos(photo_store)[0])


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ('{"landmarks": [[1, 2', "JSON"),
        ('{"landmarks": [[0.1, 0.2]], "image_size": [640, 480]}', "478 points"),
        ('{"landmarks": "many", "image_size": [640, 480]}', "landmarks"),
        ('{"image_size": [640, 480]}', "landmarks"),
        ("[1, 2, 3]", "body"),
    ],
    ids=["truncated-json", "wrong-shape", "not-a-list", "missing", "not-an-object"],
)
def test_malformed_landmarks_get_a_422(
    plain: TestClient, photo_store: tuple[Path, Path], payload: str, words: str
) -> None:
    answer = plain.post(
        "/v1/predict/landmarks", content=payload, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 422, answer.text
    assert words in answer.json()["error"] and answer.json()["fix"]
    assert_still_serving(plain, photos(photo_store)[0])


def test_non_finite_landmarks_and_json_to_an_image_route_are_refused(plain: TestClient) -> None:
    nan = plain.post(
        "/v1/predict/landmarks",
        content='{"landmarks": [' + ",".join(["[NaN, 0, 0]"] * 478) + '], "image_size": [9, 9]}',
        headers={"content-type": "application/json"},
    )
    assert nan.status_code == 422 and "NaN" in nan.json()["error"]
    wrong = plain.post("/v1/predict", json={"landmarks": []})
    assert wrong.status_code == 415 and "landmarks" in wrong.json()["fix"]
    assert plain.get("/v1/nothing").status_code == 404
    assert plain.post("/v1/sessions").status_code == 409  # a plain model has no sessions


def test_concurrent_requests_get_their_own_answers(
    plain: TestClient, photo_store: tuple[Path, Path]
) -> None:
    """Two FaceMesh graphs, eight threads: every answer is the one its photo gets alone."""
    files = photos(photo_store) + photos(photo_store, "train")
    alone = {
        path: plain.post("/v1/predict", content=path.read_bytes()).json()["probabilities"]
        for path in files
    }
    failures: list[str] = []

    def client(offset: int) -> None:
        for step in range(12):
            path = files[(offset + step) % len(files)]
            got = plain.post("/v1/predict", content=path.read_bytes()).json()["probabilities"]
            if got != alone[path]:
                failures.append(f"{path.name}: {got} != {alone[path]}")

    threads = [threading.Thread(target=client, args=(offset,)) for offset in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[:3]


def test_a_baseline_model_answers_only_against_an_enrolled_reference(
    enrolled: TestClient, enrolled_run: Path, photo_store: tuple[Path, Path], tmp_path: Path
) -> None:
    refused = enrolled.post("/v1/predict", content=photos(photo_store)[0].read_bytes())
    assert refused.status_code == 409 and "enroll" in refused.json()["fix"]
    session = enrolled.post("/v1/sessions")
    assert session.status_code == 201
    key = session.json()["id"]
    early = enrolled.post(
        f"/v1/sessions/{key}/predict", content=photos(photo_store)[0].read_bytes()
    )
    assert early.status_code == 409 and "enroll" in early.json()["fix"]
    rest = photo_store[0] / "test" / "neutral" / "pC_0.jpg"
    enrolment = enrolled.post(f"/v1/sessions/{key}/enroll", content=rest.read_bytes())
    assert enrolment.status_code == 200, enrolment.text
    assert enrolment.json()["enrolled"] == 1 and enrolment.json()["has_reference"]
    files = [path for path in photos(photo_store) if path.name.startswith("pC") and path != rest]
    rows = predicted(enrolled_run, files, tmp_path, enroll=[str(rest)])
    for path, row in zip(files, rows, strict=True):
        answer = enrolled.post(f"/v1/sessions/{key}/predict", content=path.read_bytes()).json()
        assert_same(row, answer)
        assert answer["reference"].endswith("mean of 1 enrolled faces")
    assert enrolled.delete(f"/v1/sessions/{key}").status_code == 204
    assert enrolled.get(f"/v1/sessions/{key}").status_code == 404


def test_enrolling_several_images_or_landmarks_averages_them(
    enrolled: TestClient, enrolled_run: Path, photo_store: tuple[Path, Path], tmp_path: Path
) -> None:
    rest = sorted((photo_store[0] / "test" / "neutral").glob("pD_*.jpg"))
    uploads = [("file", (path.name, path.read_bytes())) for path in rest]
    uploads.append(("file", ("gray.jpg", gray_jpeg())))
    key = enrolled.post("/v1/sessions").json()["id"]
    enrolment = enrolled.post(f"/v1/sessions/{key}/enroll", files=uploads).json()
    assert (enrolment["added"], enrolment["no_face"], enrolment["enrolled"]) == (2, 1, 2)
    scored = photo_store[0] / "test" / "anxious" / "pD_2.jpg"
    (row,) = predicted(enrolled_run, [scored], tmp_path, enroll=[str(path) for path in rest])
    assert_same(
        row, enrolled.post(f"/v1/sessions/{key}/predict", content=scored.read_bytes()).json()
    )
    # The same reference from the client's own landmarks.
    with_points = enrolled.post("/v1/sessions").json()["id"]
    faces = []
    for path in rest:
        answer = enrolled.post(
            f"/v1/sessions/{key}/predict?landmarks=true", content=path.read_bytes()
        ).json()
        faces.append({"landmarks": answer["landmarks"], "image_size": answer["image_size"]})
    assert (
        enrolled.post(f"/v1/sessions/{with_points}/enroll", json={"faces": faces}).status_code
        == 200
    )
    answer = enrolled.post(
        f"/v1/sessions/{with_points}/predict", content=scored.read_bytes()
    ).json()
    assert_same(row, answer)
    for session in (key, with_points):
        enrolled.delete(f"/v1/sessions/{session}")


def test_enrolment_without_a_face_or_with_bad_json_changes_nothing(enrolled: TestClient) -> None:
    key = enrolled.post("/v1/sessions").json()["id"]
    no_face = enrolled.post(f"/v1/sessions/{key}/enroll", content=gray_jpeg())
    assert no_face.status_code == 422 and "face" in no_face.json()["error"]
    bad = enrolled.post(
        f"/v1/sessions/{key}/enroll", content="{", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 422 and bad.json()["fix"]
    assert enrolled.get(f"/v1/sessions/{key}").json()["enrolled"] == 0
    enrolled.delete(f"/v1/sessions/{key}")


def test_sessions_are_capped_and_unknown_ones_are_named(enrolled: TestClient) -> None:
    keys = [enrolled.post("/v1/sessions").json()["id"] for _ in range(3)]
    full = enrolled.post("/v1/sessions")
    assert full.status_code == 429 and "DELETE" in full.json()["fix"]
    unknown = enrolled.post("/v1/sessions/nope/enroll", content=gray_jpeg())
    assert unknown.status_code == 404 and "POST /v1/sessions" in unknown.json()["fix"]
    for key in keys:
        assert enrolled.delete(f"/v1/sessions/{key}").status_code == 204
    assert enrolled.post("/v1/sessions").status_code == 201


def test_sessions_expire_after_their_ttl(enrolled_run: Path) -> None:
    with client_for(enrolled_run, session_ttl_s=0.3, max_sessions=1) as client:
        key = client.post("/v1/sessions").json()["id"]
        assert client.post("/v1/sessions").status_code == 429
        time.sleep(0.5)
        assert client.get(f"/v1/sessions/{key}").status_code == 404
        assert client.post("/v1/sessions").status_code == 201  # the expired one freed its place
