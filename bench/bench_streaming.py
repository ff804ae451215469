"""hf-w2v2 serve under streaming load: latencies, concurrent real-time streams, a loopback load test, RSS.

Usage (from the repository root; loopback only):
    python bench/bench_streaming.py                     # about 2 minutes on 2 quiet cores
    python bench/bench_streaming.py --cycles 500 --uploads 100 --output results.json

Starts ``hf-w2v2 serve`` (``python -m hf_w2v2.cli serve``) with ``--model`` on a free loopback
port in a subprocess and drives it with :mod:`hf_w2v2.serving.client`:

1. latency: each test clip (tests/fixtures/finetune/dev, ~2 s, after ``--lead-s`` of silence)
   streamed alone at real time in 100 ms messages. First partial = arrival of the first partial
   minus the time speech started in the stream; update latency = arrival of each partial/final
   minus the send time of the last audio it covers (its ``audio_seconds``), p50/p95;
2. concurrent: ``--streams`` real-time streams at once (the same clips); each must end with
   ``done``, the server must have received every sample (``done.audio_seconds``), and its joined
   finals are compared with the offline transcription of the same audio (``POST /v1/transcribe``);
3. load: ``--uploads`` uploads and as many as-fast-as-possible streams, ``--concurrency`` at a
   time: p50/p95 latency and RTF (wall seconds per audio second), and the server's own RTF from
   ``/metrics``;
4. RSS: ``--cycles`` connect/stream/disconnect cycles (every third client vanishes mid-stream
   without a close); the server's RSS after the first tenth and at the end.

Prints a Markdown table and the load average (other work on the machine skews every number).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import soundfile as sf
from websockets.asyncio.client import connect

from hf_w2v2.data.audio import load_audio
from hf_w2v2.serving.client import SendSettings, encode, stream_audio, transcribe_file, websocket_url
from hf_w2v2.text.error_rates import char_error_rate

ROOT = Path(__file__).resolve().parent.parent
CLIPS = sorted((ROOT / "tests" / "fixtures" / "finetune" / "dev" / "audio").glob("*.flac")) + sorted(
    (ROOT / "tests" / "fixtures" / "finetune" / "train" / "audio").glob("*.flac")
)
RATE = 16_000  # Hz
STARTUP_TIMEOUT_SECONDS = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024  # type: ignore[union-attr]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def start_server(model: str, port: int, max_streams: int, workers: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "hf_w2v2.cli", "serve", "--model", model, "--port", str(port)]
    command += ["--max-streams", str(max_streams), "--workers", str(workers)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited: {server.stderr.read().decode() if server.stderr else ''}")
        try:
            with opener.open(f"http://127.0.0.1:{port}/health", timeout=2):
                return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise RuntimeError("the server did not start")


def padded(path: Path, lead_s: float, tail_s: float) -> np.ndarray:
    audio = load_audio(path, RATE)
    return np.concatenate([np.zeros(int(lead_s * RATE), np.float32), audio, np.zeros(int(tail_s * RATE), np.float32)])


def offline_text(url: str, audio: np.ndarray, folder: str) -> str:
    path = os.path.join(folder, "clip.wav")
    sf.write(path, audio, RATE, subtype="FLOAT")
    return transcribe_file(url, path)["text"]


async def latency(url: str, clips: list[np.ndarray], lead_s: float) -> dict[str, float]:
    first, updates = [], []
    for audio in clips:
        result = await stream_audio(url, audio, RATE, SendSettings(speed=1.0))
        partials = [r for r in result.received if r.message["type"] == "partial"]
        if partials:
            first.append(partials[0].at - lead_s)
        updates += [r.lag for r in result.received if r.message["type"] in ("partial", "final") and r.lag is not None]
    return {
        "first_partial_p50_s": percentile(first, 50),
        "first_partial_max_s": max(first) if first else float("nan"),
        "update_p50_s": percentile(updates, 50),
        "update_p95_s": percentile(updates, 95),
        "updates": len(updates),
    }


async def concurrent(url: str, clips: list[np.ndarray], offline: list[str]) -> dict[str, float]:
    results = await asyncio.gather(*(stream_audio(url, audio, RATE, SendSettings(speed=1.0)) for audio in clips))
    done = sum(r.done for r in results)
    received_all = sum(
        r.done and abs(r.of_type("done")[0]["audio_seconds"] - a.shape[0] / RATE) < 1e-3 for r, a in zip(results, clips)
    )
    equal = sum(r.text == o for r, o in zip(results, offline))
    lags = [x.lag for r in results for x in r.received if x.lag is not None]
    return {
        "streams": len(clips),
        "done": done,
        "all_audio_received": received_all,
        "final_equals_offline": equal,
        "cer_vs_offline": char_error_rate(offline, [r.text for r in results]),
        "update_p95_s": percentile(lags, 95),
        "max_wall_over_audio_s": max(r.wall_seconds - r.audio_seconds for r in results),
    }


async def load(url: str, files: list[str], clips: list[np.ndarray], uploads: int, concurrency: int) -> dict:
    gate = asyncio.Semaphore(concurrency)
    upload_times, stream_times = [], []

    async def one_upload(path: str) -> None:
        async with gate:
            start = time.perf_counter()
            await asyncio.to_thread(transcribe_file, url, path)
            upload_times.append(time.perf_counter() - start)

    async def one_stream(audio: np.ndarray) -> None:
        async with gate:
            result = await stream_audio(url, audio, RATE, SendSettings(speed=0))
            stream_times.append(result.wall_seconds)

    seconds = [sf.info(f).duration for f in files]
    start = time.perf_counter()
    await asyncio.gather(*(one_upload(files[i % len(files)]) for i in range(uploads)))
    upload_wall = time.perf_counter() - start
    start = time.perf_counter()
    await asyncio.gather(*(one_stream(clips[i % len(clips)]) for i in range(uploads)))
    stream_wall = time.perf_counter() - start
    upload_audio = sum(seconds[i % len(files)] for i in range(uploads))
    stream_audio_s = sum(clips[i % len(clips)].shape[0] / RATE for i in range(uploads))
    return {
        "requests": uploads,
        "concurrency": concurrency,
        "upload_p50_s": percentile(upload_times, 50),
        "upload_p95_s": percentile(upload_times, 95),
        "upload_rtf": upload_wall / upload_audio,
        "stream_p50_s": percentile(stream_times, 50),
        "stream_p95_s": percentile(stream_times, 95),
        "stream_rtf": stream_wall / stream_audio_s,
    }


async def cycles(url: str, pid: int, count: int, audio: np.ndarray) -> dict[str, float]:
    header = json.dumps({"sample_rate": RATE, "format": "pcm_s16le"})
    chunks = [encode(audio[i : i + RATE // 10], "pcm_s16le") for i in range(0, audio.shape[0], RATE // 10)]
    warm = max(1, count // 10)
    after_warmup = 0.0
    for i in range(count):
        ws = await connect(websocket_url(url), proxy=None, compression=None)
        await ws.send(header)
        await ws.recv()
        vanish = i % 3 == 2
        for chunk in chunks[: len(chunks) // 2] if vanish else chunks:
            await ws.send(chunk)
        if vanish:
            ws.transport.abort()  # no close frame, the server must notice and free the stream
        else:
            await ws.send(json.dumps({"type": "end"}))
            async for raw in ws:
                if json.loads(raw)["type"] == "done":
                    break
            await ws.close()
        if i + 1 == warm:
            after_warmup = rss_mib(pid)
    await asyncio.sleep(1.0)
    end = rss_mib(pid)
    return {"cycles": count, "rss_after_warmup_mib": after_warmup, "rss_end_mib": end, "growth": end / after_warmup - 1}


def server_rtf(url: str) -> float:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    text = opener.open(url + "/metrics").read().decode()
    total = float(re.search(r'hf_w2v2_real_time_factor_sum\{endpoint="stream"\} (\S+)', text).group(1))  # type: ignore[union-attr]
    count = float(re.search(r'hf_w2v2_real_time_factor_count\{endpoint="stream"\} (\S+)', text).group(1))  # type: ignore[union-attr]
    return total / count


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return re.search(r"model name\s*:\s*(.*)", f.read()).group(1)  # type: ignore[union-attr]
    except (OSError, AttributeError):
        return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "models" / "w2v2-small-synth-en"))
    parser.add_argument("--streams", type=int, default=8, help="concurrent real-time streams")
    parser.add_argument("--uploads", type=int, default=32, help="requests of each kind in the load test")
    parser.add_argument("--concurrency", type=int, default=4, help="requests at once in the load test")
    parser.add_argument("--cycles", type=int, default=200, help="connect/stream/disconnect cycles for RSS")
    parser.add_argument("--workers", type=int, default=2, help="the server's model threads")
    parser.add_argument("--lead-s", type=float, default=1.0, help="silence before speech in each streamed clip")
    parser.add_argument("--output", default=None, help="write the results as JSON here")
    args = parser.parse_args()

    load_before = os.getloadavg()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(args.model, port, max(args.streams, args.concurrency) + 1, args.workers)
    try:
        clips = [padded(p, args.lead_s, 1.0) for p in CLIPS]
        with tempfile.TemporaryDirectory() as folder:
            offline = [offline_text(url, a, folder) for a in clips[: args.streams]]
        results = {
            "latency": asyncio.run(latency(url, clips[:6], args.lead_s)),
            "concurrent": asyncio.run(concurrent(url, clips[: args.streams], offline)),
            "load": asyncio.run(load(url, [str(p) for p in CLIPS], clips, args.uploads, args.concurrency)),
            "rss": asyncio.run(cycles(url, server.pid, args.cycles, load_audio(CLIPS[0], RATE)[: RATE // 2])),
        }
        results["load"]["server_stream_rtf"] = server_rtf(url)
    finally:
        server.terminate()
        server.wait(timeout=30)
    results["machine"] = {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }
    print(f"model {args.model}, {args.workers} model threads, {results['machine']}")
    for section, values in results.items():
        if section == "machine":
            continue
        print(f"\n| {section} | value |\n|---|---|")
        for key, value in values.items():
            print(f"| {key} | {value:.3f} |" if isinstance(value, float) else f"| {key} | {value} |")
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
