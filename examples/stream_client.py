"""Stream an audio file to ``hf-w2v2 serve`` as a microphone would, printing partials and finals.

    hf-w2v2 serve --model models/w2v2-small-synth-en &
    python examples/stream_client.py speech.flac                 # real time
    python examples/stream_client.py speech.flac --speed 0       # as fast as the server takes it
    python examples/stream_client.py speech.flac --upload        # POST /v1/transcribe instead

Partials are redrawn on one line of stderr; finals (with word times) go to stdout; ``--json``
prints every server message as a JSON line instead. The token comes from ``--token`` or
``$HF_W2V2_TOKEN``. Logic: :mod:`hf_w2v2.serving.client`.
"""

import argparse
import asyncio
import json
import os
import sys

from hf_w2v2.data.audio import load_audio
from hf_w2v2.serving.client import SendSettings, StreamRejected, stream_audio, transcribe_file


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("audio", help="any file soundfile reads")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server")
    parser.add_argument("--speed", type=float, default=1.0, help="times real time (0: as fast as possible)")
    parser.add_argument("--rate", type=int, default=16_000, help="sample rate to stream at (Hz)")
    parser.add_argument("--format", choices=("pcm_s16le", "f32le"), default="pcm_s16le")
    parser.add_argument("--chunk-s", type=float, default=0.1, help="audio per message (seconds)")
    parser.add_argument("--token", default=os.environ.get("HF_W2V2_TOKEN"), help="bearer token")
    parser.add_argument("--upload", action="store_true", help="upload the file to /v1/transcribe instead")
    parser.add_argument("--json", action="store_true", help="print every server message as a JSON line")
    args = parser.parse_args()
    if args.upload:
        print(json.dumps(transcribe_file(args.url, args.audio, token=args.token)))
        return 0

    def show(message: dict) -> None:
        if args.json:
            print(json.dumps(message), flush=True)
        elif message["type"] == "partial":
            print(f"\r\033[K... {message['text']}", end="", file=sys.stderr, flush=True)
        elif message["type"] == "final":
            times = " ".join(f"{w['word']}[{w['start']:.2f}-{w['end']:.2f}]" for w in message["words"])
            print("\r\033[K", end="", file=sys.stderr)
            print(f"{message['text']}\t{times}", flush=True)

    audio = load_audio(args.audio, args.rate)
    try:
        result = asyncio.run(
            stream_audio(
                args.url,
                audio,
                args.rate,
                SendSettings(speed=args.speed, chunk_seconds=args.chunk_s, fmt=args.format),
                token=args.token,
                on_message=show,
            )
        )
    except StreamRejected as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if result.error:
        print(f"error: {result.error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
