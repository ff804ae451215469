"""The web page of hf-w2v2 serve in headless Chromium with a fake microphone playing a test clip.

Chromium's fake capture device loops a WAV file (``--use-file-for-fake-audio-capture``); the page
streams it through its AudioWorklet to ``/v1/stream`` and must show partials and then the clip's
transcript as a final; the same file given to the page's file input must show the upload's
transcript. Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them) and
selenium; skips, saying which is missing, elsewhere. ``HF_W2V2_SCREENSHOT=PATH`` saves a
screenshot of the page (docs/serving_page.png was made so).
"""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("uvicorn")
pytest.importorskip("selenium", reason="selenium is not installed (pip install selenium)")

from selenium import webdriver

from hf_w2v2.data.audio import load_audio
from hf_w2v2.serving.app import create_app
from hf_w2v2.serving.server import running_server
from hf_w2v2.serving.service import ModelService
from hf_w2v2.text.error_rates import char_error_rate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "models", "w2v2-small-synth-en")
CLIP = os.path.join(ROOT, "tests", "fixtures", "finetune", "dev", "audio", "espeak-7057-1-01690.flac")
RATE = 16_000  # Hz
LEAD_SECONDS, TAIL_SECONDS = 1.0, 2.0  # silence around the clip: speech starts late, a pause ends it
PAGE_TIMEOUT_SECONDS = 60.0
MAX_CER = 0.35  # page final vs offline transcript of the clip


def browser_binaries() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip("Chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    return chromium, driver


@pytest.mark.slow
def test_page_streams_the_microphone_and_shows_the_transcript(tmp_path):
    chromium, driver_path = browser_binaries()
    audio = load_audio(CLIP, RATE)
    silence = np.zeros(int(LEAD_SECONDS * RATE), np.float32)
    clip = np.concatenate([silence, audio, np.zeros(int(TAIL_SECONDS * RATE), np.float32)])
    wav = tmp_path / "mic.wav"
    sf.write(wav, clip, RATE, subtype="PCM_16")

    service = ModelService(MODEL, workers=1)
    expected = service.transcriber.transcribe_array(audio, RATE).text
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=900,700",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
        "--autoplay-policy=no-user-gesture-required",
    ):
        options.add_argument(flag)
    try:
        with running_server(create_app(service)) as url:
            driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
            try:
                driver.get(url + "/")
                driver.find_element("id", "start").click()
                partials, final = set(), ""
                deadline = time.monotonic() + PAGE_TIMEOUT_SECONDS
                while not final and time.monotonic() < deadline:
                    partials.add(driver.find_element("id", "partial").text)
                    finals = driver.find_elements("css selector", '#finals .final[data-source="stream"]')
                    final = finals[0].get_attribute("data-text") if finals else ""
                    status = driver.find_element("id", "status").text
                    assert not status.startswith("error"), status
                    time.sleep(0.05)
                if os.environ.get("HF_W2V2_SCREENSHOT"):
                    time.sleep(3.5)  # the clip loops: the next partial shows under the final
                    driver.save_screenshot(os.environ["HF_W2V2_SCREENSHOT"])
                driver.find_element("id", "stop").click()
                driver.find_element("id", "file").send_keys(str(wav))  # the page's file upload
                deadline = time.monotonic() + PAGE_TIMEOUT_SECONDS
                while not (shown := driver.find_elements("css selector", '#finals .final[data-source="upload"]')):
                    assert time.monotonic() < deadline, driver.find_element("id", "status").text
                    time.sleep(0.05)
                uploaded = shown[0].get_attribute("data-text")
            finally:
                driver.quit()
    finally:
        service.close()
    assert final, f"no final within {PAGE_TIMEOUT_SECONDS} s (partials seen: {partials})"
    assert partials - {""}, "no partial text was shown before the final"
    # The browser resamples the 16 kHz file to its own rate (and, on a loaded machine, may glitch), so
    # the page's text differs from the offline transcript by a few letters (CER 0.0 to 0.24 seen).
    assert char_error_rate([expected], [final]) <= MAX_CER, (expected, final)
    assert uploaded == service.transcribe_bytes(wav.read_bytes())["text"]
