// The static page of `emotion-export RUN --web DIR`: camera -> FaceLandmarker (tasks-vision)
// -> the model's ONNX graph (onnxruntime-web) -> score, all in this browser. Every URL is
// relative to this folder: no CDN, no analytics, no server API; nothing leaves the device.
// The graph takes RAW landmarks (it normalises them itself), so no preprocessing lives here.
import { FaceLandmarker, FilesetResolver } from './vendor/tasks-vision/vision_bundle.mjs';
import * as ort from './vendor/onnxruntime-web/ort.wasm.min.mjs';
import { feeds, largestFace, loadFrames, saveFrames } from './face.js';

const TARGET_FPS = 15;
const MAX_FACES = 8;  // as the extractor: with several faces FaceLandmarker does not smooth
// The rest face is kept per folder: two exported pages on one host do not share it.
const STORE_KEY = `emotion-rest-face:${new URL('.', location.href).pathname}`;
const FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379,
  378, 400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103,
  67, 109];
const STATUS = {
  ok: ['face', 'ok'], no_face: ['no face', 'warn'], calibrating: ['calibrating', 'warn'],
  no_reference: ['calibrate first', 'warn'], loading: ['loading', ''], error: ['error', 'bad'],
};

const $ = (id) => document.getElementById(id);
// Read by the browser test; updated on every frame.
const state = {
  ready: false, frames: 0, faces: 0, status: 'loading', inputs: [], probabilities: null,
  score: null, calibrated: false, enrolled: 0, error: null,
};
window.emotionState = state;

let settings = null;  // model.json: class names, inputs, the page's settings
let session = null;
let landmarker = null;
let reference = null;  // [{landmarks, size, blendshapes, pose}] raw rest-face frames
let calibration = null;  // {until, frames} while calibrating
let lastStamp = -1;
const frameTimes = [];
const classRows = new Map();

const percent = (p) => `${(100 * p).toFixed(1)} %`;

function showError(message, fix) {
  state.error = message;
  $('error').textContent = '';
  const strong = document.createElement('strong');
  strong.textContent = message;
  $('error').append(strong, document.createTextNode(fix ? ` ${fix}` : ''));
  $('error').hidden = false;
  setStatus('error');
}

function setStatus(status) {
  state.status = status;
  const [text, kind] = STATUS[status];
  $('status').textContent = text;
  $('status').className = `pill ${kind}`;
}

// ---------- the rest face, kept in this browser only ----------

function setReference(frames, saved = true) {
  reference = frames;
  state.calibrated = Boolean(frames);
  state.enrolled = frames ? frames.length : 0;
  const count = `${state.enrolled} frame${state.enrolled === 1 ? '' : 's'}`;
  $('calibration').textContent = !frames ? 'Not calibrated: this model scores nothing before it.'
    : `Calibrated on ${count}${saved ? ', kept in this browser' : ' (this browser would not keep it: until the page closes)'}.`;
  $('calibrate').textContent = frames ? 'Recalibrate' : 'Calibrate';
  $('forget').disabled = !frames;
}

function startCalibration() {
  calibration = { until: performance.now() + 1000 * settings.page.calibration_seconds, frames: [] };
  $('calibrate').disabled = true;
  $('calibration').textContent = `Relax your face and look at the camera for ${settings.page.calibration_seconds} s…`;
}

function finishCalibration() {
  const { frames } = calibration;
  calibration = null;
  $('calibrate').disabled = false;
  if (!frames.length) {
    $('calibration').textContent = 'No face was seen while calibrating; face the camera and try again.';
    return;
  }
  const cap = settings.page.max_reference_frames;
  const kept = frames.length <= cap ? frames
    : Array.from({ length: cap }, (_, i) => frames[Math.floor((i * frames.length) / cap)]);
  setReference(kept, saveFrames(STORE_KEY, kept));
}

function forgetReference() {
  localStorage.removeItem(STORE_KEY);
  setReference(null);
}

// ---------- drawing ----------

function buildClassRows(names) {
  for (const name of names) {
    const row = document.createElement('div');
    row.className = 'class-row';
    const label = document.createElement('span');
    label.textContent = name;
    const bar = document.createElement('div');
    bar.className = 'bar';
    const fill = document.createElement('div');
    fill.className = 'bar-fill';
    bar.append(fill);
    const value = document.createElement('span');
    value.className = 'class-value';
    value.textContent = '—';
    row.append(label, bar, value);
    $('classes').append(row);
    classRows.set(name, { fill, value });
  }
}

function renderScore(status, probabilities) {
  setStatus(status);
  const names = settings.class_names;
  settings.class_names.forEach((name, i) => {
    const { fill, value } = classRows.get(name);
    const p = probabilities ? probabilities[i] : null;
    fill.style.width = p === null ? '0' : `${(100 * p).toFixed(1)}%`;
    value.textContent = p === null ? '—' : percent(p);
  });
  const positive = names.indexOf(settings.page.positive_class);
  const top = probabilities ? probabilities.indexOf(Math.max(...probabilities)) : -1;
  const shown = probabilities ? probabilities[positive >= 0 ? positive : top] : null;
  state.score = shown;
  $('score').textContent = shown === null ? '—' : percent(shown);
  $('score').className = shown === null ? 'score empty' : 'score';
  $('label').textContent = probabilities ? names[top] : {
    no_face: 'No face found', no_reference: 'Calibrate first', calibrating: 'Calibrating…',
  }[status] || '\u00a0';
  $('notice').textContent = {
    no_face: 'Face the camera, in good light.',
    no_reference: 'This model needs your rest face first: press Calibrate.',
    calibrating: 'Keep a relaxed, neutral face.',
  }[status] || '\u00a0';
}

function drawMesh(face) {
  const canvas = $('mesh');
  const rect = canvas.getBoundingClientRect();
  canvas.width = Math.max(1, Math.round(rect.width));
  canvas.height = Math.max(1, Math.round(rect.height));
  const context = canvas.getContext('2d');
  context.clearRect(0, 0, canvas.width, canvas.height);
  if (!face) return;
  const { width, height } = canvas;
  const at = (i) => [face.landmarks[3 * i] * width, face.landmarks[3 * i + 1] * height];
  context.fillStyle = 'rgba(120, 255, 200, 0.85)';
  context.beginPath();
  for (let i = 0; i < 478; i += 1) {
    const [x, y] = at(i);
    context.moveTo(x + 1.1, y);
    context.arc(x, y, 1.1, 0, 2 * Math.PI);
  }
  context.fill();
  context.strokeStyle = 'rgba(120, 255, 200, 0.6)';
  context.lineWidth = 1.5;
  context.beginPath();
  FACE_OVAL.forEach((i, n) => (n ? context.lineTo(...at(i)) : context.moveTo(...at(i))));
  context.closePath();
  context.stroke();
}

// ---------- the loop ----------

async function tick() {
  const started = performance.now();
  const video = $('video');
  try {
    if (video.readyState >= 2 && video.videoWidth > 0) await step(video);
  } catch (err) {
    showError(`Scoring failed: ${err.message || err}.`, 'Reload the page.');
    return;
  }
  setTimeout(tick, Math.max(0, started + 1000 / TARGET_FPS - performance.now()));
}

async function step(video) {
  // The very pixels scored are kept in #frame (the test reads them back).
  const frame = $('frame');
  const width = video.videoWidth;
  const height = video.videoHeight;
  if (frame.width !== width || frame.height !== height) Object.assign(frame, { width, height });
  frame.getContext('2d', { willReadFrequently: true }).drawImage(video, 0, 0, width, height);
  const stamp = Math.max(lastStamp + 1, Math.round(performance.now()));
  lastStamp = stamp;
  const found = performance.now();
  const face = largestFace(landmarker.detectForVideo(frame, stamp), width, height);
  $('landmark-time').textContent = `${Math.round(performance.now() - found)} ms`;
  state.frames += 1;
  let status = 'no_face';
  let probabilities = null;
  if (face) {
    state.faces += 1;
    if (calibration) {
      calibration.frames.push(face);
      status = 'calibrating';
    } else if (settings.page.needs_reference && !reference) {
      status = 'no_reference';
    } else {
      const scored = performance.now();
      const outputs = await session.run(feeds(session.inputNames, face, reference, ort.Tensor));
      probabilities = Array.from(outputs.probabilities.data);
      $('model-time').textContent = `${(performance.now() - scored).toFixed(1)} ms`;
      status = 'ok';
    }
  }
  if (calibration && performance.now() >= calibration.until) finishCalibration();
  state.probabilities = probabilities;
  renderScore(status, probabilities);
  drawMesh(face);
  frameTimes.push(performance.now());
  while (frameTimes.length > 2 && frameTimes[frameTimes.length - 1] - frameTimes[0] > 2000) frameTimes.shift();
  const span = (frameTimes[frameTimes.length - 1] - frameTimes[0]) / 1000;
  $('fps').textContent = span > 0 ? `${((frameTimes.length - 1) / span).toFixed(1)} fps` : '—';
}

async function startCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw Object.assign(new Error('This page cannot use a camera here.'), {
      fix: 'Browsers give cameras only to secure pages: open it over https, or as http://localhost.',
    });
  }
  const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  const video = $('video');
  video.srcObject = stream;
  await new Promise((resolve) => {
    if (video.readyState >= 1) resolve();
    else video.addEventListener('loadedmetadata', resolve, { once: true });
  });
  await video.play().catch(() => {});
  $('stage').style.aspectRatio = `${video.videoWidth} / ${video.videoHeight}`;
  $('stage-message').hidden = true;
}

function describeModel() {
  const { page } = settings;
  $('positive').textContent = page.positive_class || 'top class';
  $('model').textContent = `classes ${settings.class_names.join(' / ')} · reads ${session.inputNames.join(', ')}`;
  $('synthetic-banner').hidden = !page.trained_on_synthetic;
  if (!page.trained_on_synthetic) {
    $('trained-on').textContent = 'This model was trained on faces measured in real photos.';
    $('trained-on').hidden = false;
  }
  $('about').textContent = `normalisation: ${settings.normalization} · baseline: ${settings.baseline.baseline}`;
  buildClassRows(settings.class_names);
  if (page.needs_reference) {
    $('calibration-box').hidden = false;
    const saved = loadFrames(STORE_KEY);
    setReference(saved);
    $('calibrate').disabled = false;
  }
}

async function main() {
  if (typeof WebAssembly !== 'object') {
    showError('This browser has no WebAssembly, which the page needs to find the face.',
      'Use a recent Chrome, Edge, Firefox or Safari.');
    return;
  }
  $('calibrate').addEventListener('click', startCalibration);
  $('forget').addEventListener('click', forgetReference);
  try {
    settings = await (await fetch('model.json')).json();
    ort.env.wasm.numThreads = 1;  // threads need cross-origin isolation, which a plain host lacks
    ort.env.wasm.wasmPaths = new URL('vendor/onnxruntime-web/', location.href).href;
    session = await ort.InferenceSession.create('model.onnx', { executionProviders: ['wasm'] });
    state.inputs = session.inputNames;
    describeModel();
    const fileset = await FilesetResolver.forVisionTasks(new URL('vendor/tasks-vision/wasm', location.href).href);
    landmarker = await FaceLandmarker.createFromOptions(fileset, {
      baseOptions: { modelAssetPath: 'face_landmarker.task', delegate: 'CPU' },
      runningMode: 'VIDEO',
      numFaces: MAX_FACES,
      outputFaceBlendshapes: true,
      outputFacialTransformationMatrixes: true,
    });
  } catch (err) {
    showError(`The page could not load its model (${err.message || err}).`,
      'Serve the whole exported folder from a web server (not file://), then reload.');
    return;
  }
  try {
    await startCamera();
  } catch (err) {
    $('stage-message').textContent = 'no camera';
    showError(err.fix ? err.message : `The camera did not start (${err.name || err}).`,
      err.fix || 'Allow the camera for this page and check one is connected, then reload.');
    return;
  }
  state.ready = true;
  renderScore(settings.page.needs_reference && !reference ? 'no_reference' : 'no_face', null);
  tick();
}

main();
