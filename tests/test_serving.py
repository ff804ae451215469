"""hf-w2v2 serve: uploads, the /v1/stream protocol, limits, the token, metrics, classification.

A real uvicorn server on a free loopback port (``running_server``) and the package's own client;
the shipped small model and clips of about 2 s keep it fast.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.error
from urllib.parse import urlparse

import numpy as np
import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("websockets")

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from hf_w2v2.data.audio import load_audio
from hf_w2v2.serving.app import create_app
from hf_w2v2.serving.client import (
    SendSettings,
    StreamRejected,
    stream_audio,
    stream_file,
    transcribe_file,
    websocket_url,
)
from hf_w2v2.serving.server import running_server
from hf_w2v2.serving.service import ModelService
from hf_w2v2.serving.settings import ServerSettings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "models", "w2v2-small-synth-en")
DIGITS = os.path.join(ROOT, "models", "w2v2-small-fsdd-digits")
CLIP = os.path.join(ROOT, "tests", "fixtures", "finetune", "dev", "audio", "espeak-7057-1-01690.flac")
TONE_8K = os.path.join(ROOT, "tests", "fixtures", "audio", "tone_8k.wav")
DIGIT_CLIP = os.path.join(ROOT, "tests", "fixtures", "fsdd", "audio", "0_george_0.flac")
UPLOAD_LIMIT = 200_000  # bytes; the clip is ~40 kB
TOKEN = "s3cret-token"
AS_FAST_AS_POSSIBLE = SendSettings(speed=0)  # streams paced by the server alone


@pytest.fixture(scope="module")
def service():
    svc = ModelService(MODEL, workers=2)
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def server(service):
    app = create_app(service, ServerSettings(max_streams=2, max_upload_bytes=UPLOAD_LIMIT, idle_timeout_seconds=10))
    with running_server(app) as url:
        yield url, app


@pytest.fixture(scope="module")
def offline(service):
    return service.transcriber.transcribe_array(load_audio(CLIP, 16_000), 16_000).text


def get(url: str, path: str, token: str | None = None) -> tuple[int, dict[str, str], bytes]:
    parsed = urlparse(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, dict(response.getheaders()), body


def post_file(url: str, data: bytes, filename: str = "a.flac", token: str | None = None, chunked: bool = False):
    """POST ``data`` as multipart field ``file``; (status, JSON body)."""
    boundary = "testboundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n\r\n'.encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    parsed = urlparse(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if chunked:
        pieces = (body[i : i + 65536] for i in range(0, len(body), 65536))
        conn.request("POST", "/v1/transcribe", body=pieces, headers=headers, encode_chunked=True)
    else:
        conn.request("POST", "/v1/transcribe", body=body, headers=headers)
    response = conn.getresponse()
    status, text = response.status, response.read()
    conn.close()
    return status, json.loads(text)


async def raw_stream(url: str, messages: list[str | bytes]) -> tuple[list[dict], int | None]:
    """Send ``messages`` as they are; every JSON message the server sends until it closes, and the close code."""
    out = []
    async with connect(websocket_url(url), proxy=None) as ws:
        try:
            for message in messages:
                await ws.send(message)
            async for raw in ws:
                out.append(json.loads(raw))
        except ConnectionClosed:
            pass
        return out, ws.close_code


def wait_for_no_streams(url: str, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        active = json.loads(get(url, "/health")[2])["active_streams"]
        if active == 0 or time.monotonic() > deadline:
            return active
        time.sleep(0.05)


def test_upload_gives_the_offline_text_with_word_times_and_confidences(server, offline):
    url, _ = server
    result = transcribe_file(url, CLIP)
    assert result["text"] == offline
    assert abs(result["duration"] - 2.299) < 0.01
    assert [w["word"] for w in result["words"]] == offline.split()
    for word in result["words"]:
        assert 0 <= word["start"] < word["end"] <= result["duration"]
        assert 0 < word["confidence"] <= 1


def test_upload_at_another_rate_is_resampled(server):
    url, _ = server
    result = transcribe_file(url, TONE_8K)
    assert result["duration"] == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("fmt", ["pcm_s16le", "f32le"])
def test_stream_final_equals_offline_transcription(server, offline, fmt):
    url, _ = server
    result = stream_file(url, CLIP, sending=SendSettings(speed=0, fmt=fmt))
    assert result.error is None and result.done
    assert result.text == offline
    types = [r.message["type"] for r in result.received]
    assert types[0] == "ready" and types[-1] == "done" and "final" in types
    words = [w for m in result.of_type("final") for w in m["words"]]
    assert all(0 < w["confidence"] <= 1 and w["start"] < w["end"] for w in words)


def test_stream_at_another_rate(server, offline):
    url, _ = server
    audio = load_audio(CLIP, 48_000)
    result = asyncio.run(stream_audio(url, audio, 48_000, SendSettings(speed=0)))
    assert result.done and result.text == offline


HEADER = json.dumps({"sample_rate": 16000, "format": "pcm_s16le"})


@pytest.mark.parametrize(
    ("messages", "named"),
    [
        ([b"\x00\x01" * 800], "JSON text header"),
        (["hello"], "not valid JSON"),
        (['{"format": "pcm_s16le"}'], "lacks sample_rate"),
        (['{"sample_rate": 1000, "format": "pcm_s16le"}'], "sample_rate must be an integer"),
        (['{"sample_rate": "16k"}'], "sample_rate must be an integer"),
        (['{"sample_rate": 16000, "format": "mp3"}'], "format must be one of"),
        (['{"sample_rate": 16000, "path": "/etc/passwd"}'], "unknown header field"),
        ([HEADER, b"\x01\x02\x03"], "whole 2-byte samples"),
        ([json.dumps({"sample_rate": 16000, "format": "f32le"}), os.urandom(4000)], "finite and scaled"),
        ([HEADER, '{"type": "stop"}'], "unknown message type"),
        ([HEADER, b"\x00\x00" * 16000 * 11], "more than the"),
    ],
)
def test_bad_stream_input_gets_an_error_frame_then_close(server, messages, named):
    url, _ = server
    received, code = asyncio.run(raw_stream(url, messages))
    assert code == 1008
    assert received[-1]["type"] == "error", received
    assert named in received[-1]["message"]
    assert wait_for_no_streams(url) == 0


def test_upload_over_the_limit_gets_413(server):
    url, _ = server
    big = b"\x00" * (UPLOAD_LIMIT + 1)
    status, body = post_file(url, big)
    assert status == 413 and "limit" in body["error"]
    status, body = post_file(url, big, chunked=True)  # no Content-Length: counted as it streams in
    assert status == 413


def test_garbage_upload_and_missing_field_get_400(server):
    url, _ = server
    status, body = post_file(url, os.urandom(3000))
    assert status == 400 and body["error"]
    parsed = urlparse(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    conn.request("POST", "/v1/transcribe", body=b"x=1", headers={"Content-Type": "application/x-www-form-urlencoded"})
    response = conn.getresponse()
    assert response.status == 400 and b"'file'" in response.read()
    conn.close()


def test_no_request_field_is_used_as_a_path(server):
    """A file name naming a real clip on disk, with garbage bytes: the server reads the bytes only."""
    url, _ = server
    status, body = post_file(url, b"RIFF garbage" * 100, filename=CLIP)
    assert status == 400
    assert CLIP not in body["error"]
    status, body = post_file(url, b"", filename=CLIP)
    assert status == 400


def test_streams_over_the_limit_get_503_with_retry_after(server):
    url, _ = server
    assert wait_for_no_streams(url) == 0  # earlier tests' streams are released

    async def scenario():
        ws_url = websocket_url(url)
        async with connect(ws_url, proxy=None) as a, connect(ws_url, proxy=None) as b:
            for ws in (a, b):
                await ws.send(HEADER)
                assert json.loads(await ws.recv())["type"] == "ready"
            with pytest.raises(StreamRejected) as refused:
                await stream_audio(url, np.zeros(1600, np.float32), 16000, SendSettings(speed=0))
            return refused.value

    refused = asyncio.run(scenario())
    assert refused.status == 503 and refused.retry_after is not None and refused.retry_after > 0
    assert wait_for_no_streams(url) == 0
    assert stream_file(url, CLIP, sending=AS_FAST_AS_POSSIBLE).done  # a slot is free again


def test_a_vanished_client_frees_its_stream(server):
    url, _ = server

    async def vanish():
        ws = await connect(websocket_url(url), proxy=None)
        await ws.send(HEADER)
        await ws.recv()
        await ws.send(b"\x00\x10" * 8000)
        ws.transport.abort()  # the TCP connection drops, no close frame

    asyncio.run(vanish())
    assert wait_for_no_streams(url) == 0
    _, _, metrics = get(url, "/metrics")
    assert b"hf_w2v2_active_streams 0.0" in metrics


def test_health_and_metrics(server):
    url, _ = server
    transcribe_file(url, CLIP)  # one request of its own: the histograms have samples whatever ran before
    status, _, body = get(url, "/health")
    health = json.loads(body)
    assert status == 200 and health["kind"] == "ctc" and health["max_streams"] == 2
    status, headers, metrics = get(url, "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    for name in (
        "hf_w2v2_requests_total",
        "hf_w2v2_errors_total",
        "hf_w2v2_active_streams",
        "hf_w2v2_latency_seconds_bucket",
        "hf_w2v2_real_time_factor_bucket",
    ):
        assert name.encode() in metrics
    status, _, page = get(url, "/")
    assert status == 200 and (b"/v1/stream" in page or b"app.js" in page)


def test_every_request_without_the_token_gets_401(service):
    app = create_app(service, ServerSettings(token=TOKEN))
    with running_server(app) as url:
        for path in ("/", "/health", "/metrics", "/static/app.js"):
            assert get(url, path)[0] == 401, path
            assert get(url, path, token="wrong")[0] == 401, path
        assert get(url, "/health", token=TOKEN)[0] == 200
        assert post_file(url, b"x")[0] == 401
        with pytest.raises(urllib.error.HTTPError) as err:
            transcribe_file(url, CLIP, token="wrong")
        assert err.value.code == 401
        assert transcribe_file(url, CLIP, token=TOKEN)["text"]
        with pytest.raises(StreamRejected) as refused:
            stream_file(url, CLIP, sending=AS_FAST_AS_POSSIBLE)
        assert refused.value.status == 401
        assert stream_file(url, CLIP, sending=AS_FAST_AS_POSSIBLE, token=TOKEN).done
        status, _, _ = get(url, f"/health?token={TOKEN}")  # how the web page passes it
        assert status == 200


def test_classification_folder_serves_classify():
    service = ModelService(DIGITS, workers=1)
    try:
        with running_server(create_app(service)) as url:
            result = transcribe_file(url, DIGIT_CLIP, endpoint="/v1/classify?top_k=2")
            assert len(result["labels"]) == 2
            assert result["labels"][0]["score"] >= result["labels"][1]["score"]
            with pytest.raises(urllib.error.HTTPError) as err:
                transcribe_file(url, DIGIT_CLIP)
            assert err.value.code == 404
            with pytest.raises(StreamRejected) as refused:
                stream_file(url, DIGIT_CLIP, sending=AS_FAST_AS_POSSIBLE)
            assert refused.value.status == 404
    finally:
        service.close()


def test_cli_serve_rejects_a_missing_folder(tmp_path, capsys):
    from hf_w2v2.cli import main

    assert main(["serve", "--model", str(tmp_path / "nope")]) == 2
    assert "model folder not found" in capsys.readouterr().err


def test_example_stream_client_prints_the_finals(server, offline):
    url, _ = server
    script = os.path.join(ROOT, "examples", "stream_client.py")
    env = {**os.environ, "PYTHONPATH": ROOT}
    run = subprocess.run(
        [sys.executable, script, CLIP, "--url", url, "--speed", "4", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    messages = [json.loads(line) for line in run.stdout.splitlines()]
    assert messages[-1]["type"] == "done"
    assert " ".join(m["text"] for m in messages if m["type"] == "final") == offline


@pytest.mark.slow
def test_cli_serve_starts_with_the_token_from_the_environment():
    """``hf-w2v2 serve --port 0``: a free loopback port (uvicorn prints it), ``HF_W2V2_TOKEN``, stops on SIGTERM."""
    env = {**os.environ, "PYTHONPATH": ROOT, "HF_W2V2_TOKEN": TOKEN}
    command = [sys.executable, "-m", "hf_w2v2.cli", "serve", "--model", MODEL, "--port", "0", "--workers", "1"]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in server.stderr], daemon=True).start()
    try:
        url, seen = None, []
        deadline = time.monotonic() + 90
        while url is None:
            seen.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
            found = re.search(r"running on (http://127\.0\.0\.1:\d+)", seen[-1])
            url = found.group(1) if found else None
        assert get(url, "/health")[0] == 401
        assert get(url, "/health", token=TOKEN)[0] == 200
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_folder_with_a_saved_lm_decoder_serves_beam_search(tmp_path):
    pytest.importorskip("pyctcdecode")
    pytest.importorskip("kenlm")
    import shutil

    from transformers import Wav2Vec2Processor

    from hf_w2v2.decoding.arpa import build_arpa
    from hf_w2v2.decoding.beam import BeamSearchDecoder

    folder = tmp_path / "with_lm"
    shutil.copytree(MODEL, folder)
    build_arpa(
        os.path.join(ROOT, "tests", "fixtures", "synth_dev_text.txt"), tmp_path / "lm.arpa", order=2, progress=False
    )
    processor = Wav2Vec2Processor.from_pretrained(folder)
    BeamSearchDecoder.from_tokenizer(processor, lm_path=tmp_path / "lm.arpa").save_pretrained(folder)
    service = ModelService(str(folder), workers=1)
    try:
        assert service.has_lm
        with running_server(create_app(service)) as url:
            assert json.loads(get(url, "/health")[2])["lm"] is True
            result = transcribe_file(url, CLIP)
            assert result["text"] and all(0 <= w["confidence"] <= 1 for w in result["words"])
            assert stream_file(url, CLIP, sending=AS_FAST_AS_POSSIBLE).text == result["text"]
    finally:
        service.close()


def test_auto_precision_chooses_before_serving_guarded_by_the_calibration_transcripts(monkeypatch, tmp_path) -> None:
    """``serve --precision auto --calibration DIR``: the path is measured at start-up on the folder's first
    recordings, with their transcripts as the guard's references; requests then run on it."""
    import importlib

    from hf_w2v2.inference import machine

    optimize_module = importlib.import_module("hf_w2v2.inference.optimize")
    monkeypatch.setattr(optimize_module, "CPU_PATHS", ("fp32", "fp32-matmul"))  # two quick ones
    monkeypatch.setenv(machine.CACHE_ENV, str(tmp_path / "cache"))
    folder = os.path.join(ROOT, "tests", "fixtures", "finetune", "dev")
    with pytest.raises(ValueError, match="precision='auto'"):
        ModelService(MODEL, workers=1, calibration=folder)
    service = ModelService(MODEL, workers=1, precision="auto", calibration=folder)
    try:
        fast = service.transcriber.model  # type: ignore[union-attr]
        assert fast.choice is not None and fast.chosen in ("fp32", "fp32-matmul")  # chosen before any request
        assert fast.references is not None and len(fast.references) == len(fast.calibration) == 6
        assert all(ids and all(isinstance(i, int) for i in ids) for ids in fast.references)
        with open(CLIP, "rb") as f:
            answer = service.transcribe_bytes(f.read())
        assert answer["text"] and sum(fast.calls.values()) >= 1
        assert service.transcriber.choose_path([np.zeros(1600, np.float32)]) == fast.chosen  # already made
    finally:
        service.close()
    fp32 = ModelService(MODEL, workers=1)
    try:
        assert fp32.transcriber.choose_path([np.zeros(1600, np.float32)]) is None  # type: ignore[union-attr]
    finally:
        fp32.close()
