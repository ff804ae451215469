// The page of `hf-w2v2 serve`: microphone -> AudioWorklet -> WebSocket /v1/stream (f32le at the
// AudioContext's rate), or a dropped file -> POST /v1/transcribe. A ?token=T in the page's URL is
// passed on (browsers cannot set an Authorization header on a WebSocket).
"use strict";
const token = new URLSearchParams(location.search).get("token");
const withToken = (path) => (token ? `${path}?token=${encodeURIComponent(token)}` : path);
const $ = (id) => document.getElementById(id);
let socket = null;
let context = null;
let media = null;

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function showFinal(text, words, source) {
  if (!text) return;
  const p = document.createElement("p");
  p.className = "final";
  for (const w of words) {
    const span = document.createElement("span");
    span.className = "word";
    span.textContent = w.word;
    const times = document.createElement("small");
    times.textContent = `${w.start.toFixed(2)}-${w.end.toFixed(2)} s, ${Math.round(w.confidence * 100)}%`;
    span.appendChild(times);
    p.appendChild(span);
  }
  p.dataset.text = text;
  p.dataset.source = source;
  $("finals").appendChild(p);
}

function onMessage(event) {
  const message = JSON.parse(event.data);
  if (message.type === "ready") setStatus("listening");
  else if (message.type === "partial") $("partial").textContent = message.text;
  else if (message.type === "final") {
    $("partial").textContent = "";
    showFinal(message.text, message.words, "stream");
  } else if (message.type === "done") setStatus("done");
  else if (message.type === "error") setStatus(`error: ${message.message}`, true);
}

async function start() {
  $("start").disabled = true;
  try {
    media = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 },
    });
    context = new AudioContext();
    await context.audioWorklet.addModule("static/pcm-worklet.js");
    const source = context.createMediaStreamSource(media);
    const sender = new AudioWorkletNode(context, "pcm-sender");
    const wsUrl = new URL(withToken("v1/stream"), location.href);
    wsUrl.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(wsUrl);
    socket.binaryType = "arraybuffer";
    socket.onmessage = onMessage;
    socket.onclose = () => { setStatus($("status").className === "error" ? $("status").textContent : "closed"); stopAudio(); };
    socket.onopen = () => {
      socket.send(JSON.stringify({ sample_rate: context.sampleRate, format: "f32le" }));
      sender.port.onmessage = (e) => { if (socket.readyState === WebSocket.OPEN) socket.send(e.data); };
      source.connect(sender);
      $("stop").disabled = false;
    };
  } catch (err) {
    setStatus(`error: ${err.message || err}`, true);
    $("start").disabled = false;
  }
}

function stopAudio() {
  if (media) media.getTracks().forEach((t) => t.stop());
  if (context) context.close();
  media = context = null;
  $("start").disabled = false;
  $("stop").disabled = true;
}

function stop() {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "end" }));
  stopAudio();
}

async function upload(file) {
  setStatus(`transcribing ${file.name}`);
  const form = new FormData();
  form.append("file", file);
  const response = await fetch(withToken("v1/transcribe"), { method: "POST", body: form });
  const result = await response.json();
  if (!response.ok) return setStatus(`error: ${result.error}`, true);
  showFinal(result.text, result.words, "upload");
  setStatus(`done (${result.duration.toFixed(1)} s of audio)`);
}

$("start").onclick = start;
$("stop").onclick = stop;
$("file").onchange = (e) => e.target.files[0] && upload(e.target.files[0]);
const drop = $("drop");
drop.ondragover = (e) => { e.preventDefault(); drop.classList.add("over"); };
drop.ondragleave = () => drop.classList.remove("over");
drop.ondrop = (e) => { e.preventDefault(); drop.classList.remove("over"); if (e.dataTransfer.files[0]) upload(e.dataTransfer.files[0]); };
