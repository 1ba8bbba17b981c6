// Recording voice notes and video messages with MediaRecorder: Opus in WebM or Ogg (whichever
// this browser records), a running timer, cancel and send; a video message has a live preview,
// stops by itself at its cap, and is reviewed before it is sent.

import { clock } from "./attachment-view.js";

const VOICE_TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/ogg", "audio/mp4"];
const VIDEO_TYPES = ["video/webm;codecs=vp8,opus", "video/webm;codecs=vp9,opus", "video/webm", "video/mp4"];
export const VIDEO_MAX_SECONDS = 60;
const POSTER_PX = 640;
const EXTENSIONS = { "audio/webm": "webm", "audio/ogg": "ogg", "audio/mp4": "m4a", "video/webm": "webm", "video/mp4": "mp4" };

export class Recorder {
  constructor({ elements, limits, onRecorded, onError, canStart }) {
    this.dom = elements;
    this.limits = limits;
    this.onRecorded = onRecorded;
    this.onError = onError;
    this.canStart = canStart;
    this.session = null;
    elements.voiceButton.addEventListener("click", () => this.start("voice"));
    elements.videoButton.addEventListener("click", () => this.start("video"));
    elements.cancel.addEventListener("click", () => this.cancel());
    elements.stop.addEventListener("click", () => this.stop());
    elements.send.addEventListener("click", () => this.send());
    elements.panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        this.cancel();
      }
    });
  }

  static supported() {
    return typeof MediaRecorder !== "undefined" && Boolean(navigator.mediaDevices?.getUserMedia);
  }

  async start(kind) {
    if (this.session || !this.canStart()) return;
    if (!Recorder.supported()) {
      this.onError("This browser cannot record here (it needs a secure page and a microphone).");
      return;
    }
    const video = kind === "video";
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia(video ? { audio: true, video: { width: { ideal: 640 }, height: { ideal: 480 } } } : { audio: true });
    } catch (error) {
      this.onError(error.name === "NotAllowedError" ? `Allow the ${video ? "camera and microphone" : "microphone"} to record.` : `Cannot record: ${error.message}`);
      return;
    }
    const mimeType = (video ? VIDEO_TYPES : VOICE_TYPES).find((type) => MediaRecorder.isTypeSupported(type)) ?? "";
    const recorder = new MediaRecorder(stream, mimeType ? { mimeType } : {});
    const session = { kind, stream, recorder, chunks: [], started: performance.now(), elapsed: 0, timer: null, poster: null, blob: null, cancelled: false };
    this.session = session;
    recorder.addEventListener("dataavailable", (event) => event.data.size && session.chunks.push(event.data));
    recorder.addEventListener("start", () => {
      session.started = performance.now();
    });
    session.stopped = new Promise((resolve) => recorder.addEventListener("stop", resolve, { once: true }));
    this.showPanel(session);
    recorder.start(250);
    const cap = video ? VIDEO_MAX_SECONDS : this.limits.attachment_max_seconds || 600;
    session.timer = setInterval(() => {
      session.elapsed = (performance.now() - session.started) / 1000;
      this.dom.timer.textContent = `${clock(session.elapsed)} / ${clock(cap)}`;
      if (video && !session.poster && session.elapsed > 0.5) this.takePoster(session);
      if (session.elapsed >= cap) this.stop();
    }, 200);
  }

  showPanel(session) {
    const { panel, preview, review, status, stop, send, cancel, timer } = this.dom;
    const video = session.kind === "video";
    panel.hidden = false;
    panel.dataset.state = "recording";
    status.textContent = video ? "Recording a video message" : "Recording a voice note";
    timer.textContent = "0:00";
    preview.hidden = !video;
    review.hidden = true;
    if (video) {
      preview.srcObject = session.stream;
      preview.play().catch(() => {});
    }
    stop.hidden = !video;
    send.hidden = video;
    // Named apart from the composer's own Send button, which stays on screen.
    send.setAttribute("aria-label", video ? "Send video message" : "Send voice note");
    cancel.textContent = "Cancel";
    cancel.setAttribute("aria-label", video ? "Cancel video message" : "Cancel voice note");
    (video ? stop : send).focus();
  }

  takePoster(session) {
    const preview = this.dom.preview;
    if (!preview.videoWidth) return;
    const scale = Math.min(1, POSTER_PX / Math.max(preview.videoWidth, preview.videoHeight));
    const canvas = new OffscreenCanvas(Math.round(preview.videoWidth * scale), Math.round(preview.videoHeight * scale));
    canvas.getContext("2d").drawImage(preview, 0, 0, canvas.width, canvas.height);
    session.poster = canvas.convertToBlob({ type: "image/jpeg", quality: 0.8 });
  }

  /** Stop recording (once, however often asked): a video message is then shown for review. */
  stop() {
    const session = this.session;
    if (!session) return Promise.resolve(null);
    session.stopping ??= this.finish(session);
    return session.stopping;
  }

  async finish(session) {
    clearInterval(session.timer);
    session.elapsed = (performance.now() - session.started) / 1000;
    if (session.recorder.state !== "inactive") session.recorder.stop();
    for (const track of session.stream.getTracks()) track.stop();
    await session.stopped;
    session.blob = new Blob(session.chunks, { type: baseType(session.recorder.mimeType) });
    if (session.kind === "video" && !session.cancelled) this.showReview(session);
    return session;
  }

  showReview(session) {
    const { panel, preview, review, status, stop, send, cancel, timer } = this.dom;
    panel.dataset.state = "review";
    preview.srcObject = null;
    preview.hidden = true;
    session.reviewUrl = URL.createObjectURL(session.blob);
    review.src = session.reviewUrl;
    review.hidden = false;
    status.textContent = "Your video message: send it?";
    timer.textContent = clock(session.elapsed);
    stop.hidden = true;
    send.hidden = false;
    cancel.textContent = "Discard";
    cancel.setAttribute("aria-label", "Discard video message");
    send.focus();
  }

  async send() {
    const session = await this.stop();
    if (!session || session.cancelled) return;
    const type = baseType(session.recorder.mimeType) || (session.kind === "video" ? "video/webm" : "audio/webm");
    const name = `${session.kind === "video" ? "video-message" : "voice-note"}.${EXTENSIONS[type] ?? "webm"}`;
    const file = new File([session.blob], name, { type });
    const poster = session.poster ? await session.poster.catch(() => null) : null;
    this.close();
    this.onRecorded(file, { kind: session.kind, duration: Math.max(0.1, session.elapsed), poster });
  }

  async cancel() {
    const session = this.session;
    if (!session) return;
    session.cancelled = true;
    await this.stop();
    this.close();
  }

  close() {
    const session = this.session;
    this.session = null;
    if (session?.reviewUrl) URL.revokeObjectURL(session.reviewUrl);
    const { panel, preview, review, voiceButton, videoButton } = this.dom;
    preview.srcObject = null;
    review.removeAttribute("src");
    panel.hidden = true;
    (session?.kind === "video" ? videoButton : voiceButton).focus();
  }
}

function baseType(type) {
  return (type || "").split(";")[0].trim().toLowerCase();
}
