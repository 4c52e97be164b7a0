// The webcam page of emotion-serve: camera -> landmarks found here (landmarks.js), or JPEG
// frames where this browser cannot run the landmarker -> /v1/stream -> score, mesh, chart.
// Plain JS, no build step and nothing from outside this server, so it works offline.
'use strict';

(() => {
  const TARGET_FPS = 15;          // at most this many frames a second, one in flight at a time
  const CAPTURE_WIDTH = 640;      // frames are sent at most this wide (the aspect is kept)
  const JPEG_QUALITY = 0.85;
  const CALIBRATION_REPLY_MS = 15000;
  const REPLY_TIMEOUT_MS = 10000;  // a frame unanswered this long: reconnect
  const STATUS_TEXT = {
    ok: 'face',
    no_face: 'no face',
    calibrating: 'calibrating',
    no_reference: 'calibrate first',
    bad_frame: 'bad frame',
  };

  const $ = (id) => document.getElementById(id);
  const ui = {
    model: $('model'), banner: $('synthetic-banner'), error: $('error'),
    trainedOn: $('trained-on'),
    stage: $('stage'), video: $('video'), mesh: $('mesh'), stageMessage: $('stage-message'),
    fps: $('fps'), latency: $('latency'), serverTiming: $('server-timing'),
    status: $('status'), score: $('score'), label: $('label'), classes: $('classes'),
    notice: $('notice'), raw: $('raw'), positive: $('positive'),
    positiveChart: $('positive-chart'), calibrationBox: $('calibration-box'),
    calibration: $('calibration'), countdown: $('countdown'), calibrate: $('calibrate'),
    chart: $('chart'), legend: $('chart-legend'), about: $('about'),
    mode: $('mode'), privacy: $('privacy'), forget: $('forget'),
  };

  // Read by the browser test; updated on every reply. `status` is the server's status string.
  const state = {
    frames: 0, faces: 0, lastScore: null, lastSmoothed: null,
    calibrated: false, enrolled: 0, status: 'connecting',
    connected: false, camera: false, lastLabel: null, lastSmoothedLabel: null,
    mode: 'starting',             // 'landmarks' (found here) or 'frames' (sent to the server)
  };
  window.emotionState = state;
  // For tests: with `record` set, each landmark frame's pixels (PNG), its landmarks as found
  // here and the server's answer to it; the last 10.
  const probe = { record: false, frames: [] };
  window.emotionProbe = probe;
  let pendingProbe = null;
  let detect = null;              // the page's FaceLandmarker, in landmark mode
  let held = null;                // the rest face kept in this browser (landmark mode)

  let model = null;
  const classRows = new Map();    // class name -> {fill, value}
  let socket = null;
  let reconnectDelay = 500;
  let inFlight = false;
  let captureStartedAt = 0;
  let pumpTimer = null;
  let calibrating = false;        // from "start" until the server answers "stop"
  let calibrationTicker = null;
  let calibrationWatchdog = null;
  const replyTimes = [];
  const history = [];             // {t: ms, v: smoothed score 0..1 or null for a gap}
  const capture = document.createElement('canvas');
  const captureContext = capture.getContext('2d');

  // ---------- formatting ----------

  const percent = (p) => `${(100 * p).toFixed(1)} %`;
  const ms = (value) => (typeof value === 'number' ? `${Math.round(value)} ms` : '—');
  const capitalised = (text) => (text ? text.charAt(0).toUpperCase() + text.slice(1) : '');
  const positiveName = () =>
    (model && (model.positive_class || (model.class_names || [])[1])) || 'anxious';

  function scoreColour(p) {
    // Calm teal at 0, amber at the 50% decision line, red at 1.
    const q = Math.min(1, Math.max(0, p));
    const hue = q < 0.5 ? 185 - 280 * q : 45 - 90 * (q - 0.5);
    return `hsl(${hue.toFixed(0)} 70% 40%)`;
  }

  // The score a message shows: P(positive class), or the top class's when there is none.
  function pick(score, probabilities) {
    if (typeof score === 'number') return score;
    if (probabilities && typeof probabilities === 'object') {
      const values = Object.values(probabilities).filter((v) => typeof v === 'number');
      if (values.length) return Math.max(...values);
    }
    return null;
  }

  function showError(message, fix) {
    if (!message) {
      ui.error.hidden = true;
      ui.error.textContent = '';
      return;
    }
    ui.error.textContent = '';
    const strong = document.createElement('strong');
    strong.textContent = message;
    ui.error.append(strong);
    if (fix) ui.error.append(document.createTextNode(` ${fix}`));
    ui.error.hidden = false;
  }

  function setStatus(text, kind) {
    ui.status.textContent = text;
    ui.status.className = `pill ${kind || ''}`;
  }

  // ---------- the model ----------

  async function loadModel() {
    for (let attempt = 0; ; attempt += 1) {
      try {
        const response = await fetch('/v1/model', { cache: 'no-store' });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        return await response.json();
      } catch (err) {
        ui.model.textContent = `the server did not describe its model (${err.message}); retrying…`;
        await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 500 * 2 ** attempt)));
      }
    }
  }

  // Landmarks found here when the runtime loads; the frame path otherwise. Says which.
  async function chooseMode() {
    try {
      if (new URLSearchParams(location.search).get('send') === 'frames') {
        throw new Error('the address asks for it with ?send=frames');
      }
      detect = await window.EmotionLandmarks.load(model.landmarker_url);
      state.mode = 'landmarks';
      ui.mode.textContent = 'Landmarks mode: your face is found in this browser. '
        + 'No camera frame leaves it; only the face\'s landmarks go to the server.';
      ui.privacy.textContent = 'No camera frame leaves this browser: only landmarks are sent.';
      held = model.needs_reference ? window.EmotionLandmarks.stored.get(model) : null;
      if (held) {
        state.calibrated = true;
        state.enrolled = held.count;
        ui.calibration.textContent = `Calibrated on ${held.count} faces (kept in this browser).`;
      }
    } catch (err) {
      detect = null;
      state.mode = 'frames';
      ui.mode.textContent = 'Frames mode: camera frames are sent to the server, which finds '
        + `the face (this browser cannot run the landmarker: ${err.message}).`;
      ui.privacy.textContent = 'Camera frames go only to the server that served this page.';
    }
    ui.forget.hidden = !(model.needs_reference && state.mode === 'landmarks');
    ui.mode.dataset.mode = state.mode;
    updateCalibrateButton();
  }

  function forgetReference() {
    window.EmotionLandmarks.stored.forget();
    held = null;
    state.calibrated = false;
    state.enrolled = 0;
    ui.calibration.textContent = 'Not calibrated: the rest face was forgotten.';
    renderIdle();
    updateCalibrateButton();
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: 'reset' }));
    }
  }

  // What the score rests on: the data, its people, and the balanced accuracy on test people.
  function trainedOnText(on) {
    if (!on) return '';
    const people = Object.entries(on.people || {})
      .filter(([, count]) => count > 0).map(([stage, count]) => `${count} ${stage}`);
    const parts = [`Trained on ${on.data}`];
    if (on.rows) parts.push(`${on.rows} faces`);
    if (people.length) parts.push(`people: ${people.join(', ')}`);
    parts.push(typeof on.test_bal_acc === 'number'
      ? `balanced accuracy ${on.test_bal_acc.toFixed(3)} on its test people`
      : 'not tested on held-out people');
    return parts.join(' · ');
  }

  function applyModel(info) {
    model = info;
    ui.model.textContent = [info.model, info.version && `v${info.version}`]
      .filter(Boolean).join(' · ');
    ui.banner.hidden = !info.trained_on_synthetic;
    ui.trainedOn.textContent = trainedOnText(info.trained_on);
    ui.positive.textContent = positiveName();
    ui.positiveChart.textContent = positiveName();
    const about = [];
    if (info.class_names) about.push(`classes: ${info.class_names.join(' / ')}`);
    about.push(`baseline: ${info.baseline || 'none'}`);
    if (typeof info.ema_alpha === 'number') about.push(`smoothing: EMA α ${info.ema_alpha}`);
    ui.about.textContent = about.join(' · ');
    buildClassRows(info.class_names || []);
    if (info.needs_reference) {
      ui.calibrationBox.hidden = false;
      const seconds = info.calibration_seconds || 3;
      ui.calibration.textContent =
        `Not calibrated. Press Calibrate, then relax your face for ${seconds} seconds.`;
    }
    renderIdle();
  }

  function buildClassRows(names) {
    ui.classes.textContent = '';
    classRows.clear();
    for (const name of names) {
      const row = document.createElement('div');
      row.className = 'class-row';
      const label = document.createElement('span');
      label.className = 'class-name';
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
      ui.classes.append(row);
      classRows.set(name, { fill, value });
    }
  }

  // Per-class bars: the smoothed probabilities (or this frame's while there are none yet).
  function renderClasses(probabilities) {
    for (const [name, { fill, value }] of classRows) {
      const p = probabilities && typeof probabilities[name] === 'number'
        ? probabilities[name] : null;
      fill.style.width = p === null ? '0' : `${(100 * p).toFixed(1)}%`;
      fill.style.background = name === positiveName() && p !== null ? scoreColour(p) : '';
      value.textContent = p === null ? '—' : percent(p);
    }
  }

  function renderIdle() {
    if (model && model.needs_reference && !state.calibrated) {
      ui.score.textContent = '—';
      ui.score.className = 'score empty';
      ui.label.textContent = 'Calibrate first';
      renderClasses(null);
    }
  }

  // ---------- the camera ----------

  function cameraReady() {
    return state.camera && ui.video.readyState >= 2 && ui.video.videoWidth > 0;
  }

  async function startCamera() {
    const local = ['localhost', '127.0.0.1', '[::1]'].includes(location.hostname);
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      ui.stageMessage.textContent = 'no camera';
      showError('This page cannot use a camera here.', window.isSecureContext || local
        ? 'Use a recent Chrome, Edge, Firefox or Safari.'
        : 'Browsers give cameras only to secure pages: open it as http://localhost:PORT on '
          + 'the machine running emotion-serve (e.g. through an SSH tunnel), or serve it '
          + 'over HTTPS.');
      setStatus('no camera', 'bad');
      return;
    }
    try {
      const stream = await navigator.mediaDevices.getUserMedia({
        video: { width: 640, height: 480 }, audio: false,
      });
      ui.video.srcObject = stream;
      await new Promise((resolve) => {
        if (ui.video.readyState >= 1) resolve();
        else ui.video.addEventListener('loadedmetadata', resolve, { once: true });
      });
      await ui.video.play().catch(() => {});
      ui.stage.style.aspectRatio = `${ui.video.videoWidth} / ${ui.video.videoHeight}`;
      state.camera = true;
      ui.stageMessage.hidden = true;
      updateCalibrateButton();
      pump();
    } catch (err) {
      const fixes = {
        NotAllowedError: ['Camera permission was denied.',
          'Allow the camera for this site (the camera icon in the address bar), then reload.'],
        NotFoundError: ['No camera was found.', 'Plug one in, then reload.'],
        NotReadableError: ['The camera is busy.',
          'Close the other application or tab using it, then reload.'],
        OverconstrainedError: ['The camera cannot give 640x480 video.', 'Try another camera.'],
      };
      const [message, fix] = fixes[err.name] || [`The camera did not start (${err.name}).`,
        'Check that a camera is connected and allowed, then reload.'];
      ui.stageMessage.textContent = 'no camera';
      showError(message, fix);
      setStatus('no camera', 'bad');
    }
  }

  // ---------- the stream ----------

  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    socket = new WebSocket(`${scheme}://${location.host}/v1/stream`);
    socket.addEventListener('open', () => {
      state.connected = true;
      reconnectDelay = 500;
      inFlight = false;
      if (state.status === 'connecting' || state.status === 'disconnected') {
        setStatus('waiting', '');
      }
      updateCalibrateButton();
      pump();
    });
    socket.addEventListener('message', (event) => {
      if (typeof event.data !== 'string') return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.type === 'frame') onFrame(message);
      else if (message.type === 'calibrated') onCalibrated(message);
      else if (message.type === 'error') onServerError(message);
    });
    socket.addEventListener('close', () => {
      const wasConnected = state.connected;
      state.connected = false;
      inFlight = false;
      // A new connection is a new session on the server: its reference is gone (a rest face
      // kept in this browser is sent with every frame, so it stays).
      state.calibrated = Boolean(held);
      stopCalibration();
      state.status = 'disconnected';
      setStatus('disconnected', 'bad');
      ui.notice.textContent = wasConnected
        ? 'The connection to the server was lost; reconnecting…'
        : 'Cannot reach the server; retrying…';
      renderIdle();
      updateCalibrateButton();
      setTimeout(connect, reconnectDelay);
      reconnectDelay = Math.min(5000, reconnectDelay * 2);
    });
  }

  function schedule(delay) {
    clearTimeout(pumpTimer);
    pumpTimer = setTimeout(pump, Math.max(0, delay));
  }

  // Send one frame unless one is in flight; its reply schedules the next.
  function pump() {
    pumpTimer = null;
    if (inFlight) return;
    if (!socket || socket.readyState !== WebSocket.OPEN || !cameraReady()) {
      schedule(100);
      return;
    }
    const scale = Math.min(1, CAPTURE_WIDTH / ui.video.videoWidth);
    const width = Math.round(ui.video.videoWidth * scale);
    const height = Math.round(ui.video.videoHeight * scale);
    if (capture.width !== width || capture.height !== height) {
      capture.width = width;
      capture.height = height;
    }
    captureContext.drawImage(ui.video, 0, 0, width, height);
    inFlight = true;
    captureStartedAt = performance.now();
    if (detect) {
      sendLandmarks(width, height);
      return;
    }
    const sending = socket;
    capture.toBlob((blob) => {
      if (!blob || sending !== socket || sending.readyState !== WebSocket.OPEN) {
        inFlight = false;
        schedule(100);
        return;
      }
      sending.send(blob);
    }, 'image/jpeg', JPEG_QUALITY);
  }

  // Landmark mode: the face found here, its mesh drawn at once, only numbers sent.
  function sendLandmarks(width, height) {
    const found = detect(capture);
    drawMesh({ landmarks: found.face && found.face.landmarks, status: state.status });
    socket.send(window.EmotionLandmarks.message(found, width, height, model, held));
    if (probe.record) {
      pendingProbe = {
        png: capture.toDataURL('image/png'), width, height, faces: found.faces,
        landmarks: found.face && found.face.landmarks,
        blendshapes: found.face && found.face.blendshapes, pose: found.face && found.face.pose,
      };
      probe.frames.push(pendingProbe);
      while (probe.frames.length > 10) probe.frames.shift();
    }
  }

  function onFrame(message) {
    const now = performance.now();
    const roundTrip = now - captureStartedAt;
    inFlight = false;
    schedule(captureStartedAt + 1000 / TARGET_FPS - now);

    state.frames += 1;
    if (message.face) state.faces += 1;
    state.status = message.status;
    state.lastScore = pick(message.score, message.probabilities);
    state.lastSmoothed = pick(message.smoothed_score, message.smoothed);
    state.lastLabel = message.label ?? null;
    state.lastSmoothedLabel = message.smoothed_label ?? null;
    if (typeof message.enrolled === 'number') state.enrolled = message.enrolled;
    if (message.status === 'no_reference') state.calibrated = false;
    if (pendingProbe) {
      Object.assign(pendingProbe, { status: message.status, score: message.score ?? null });
      pendingProbe = null;
    }
    if (message.status === 'bad_reference') {
      forgetReference();
      showError(message.error, message.fix);
    }

    replyTimes.push(now);
    while (replyTimes.length > 2 && now - replyTimes[0] > 2000) replyTimes.shift();
    const span = (replyTimes[replyTimes.length - 1] - replyTimes[0]) / 1000;
    ui.fps.textContent = span > 0 ? `${((replyTimes.length - 1) / span).toFixed(1)} fps` : '—';
    ui.latency.textContent = ms(roundTrip);
    const timing = message.timing_ms || {};
    ui.serverTiming.textContent = typeof timing.total === 'number'
      ? `${ms(timing.total)} (FaceMesh ${ms(timing.facemesh)} · model ${ms(timing.model)})`
      : '—';

    renderScore(message);
    if (!detect) drawMesh(message);
    if (message.status === 'ok' && state.lastSmoothed !== null) {
      history.push({ t: now, v: state.lastSmoothed });
    } else if (message.status !== 'ok') {
      history.push({ t: now, v: null });
    }
    drawChart();
    if (calibrating) updateCalibrationText();
  }

  function renderScore(message) {
    const status = message.status;
    setStatus(STATUS_TEXT[status] || status, {
      ok: 'ok', no_face: 'warn', calibrating: 'busy', no_reference: 'warn', bad_frame: 'bad',
    }[status]);
    ui.raw.textContent = state.lastScore === null ? '—'
      : `${percent(state.lastScore)}${state.lastLabel ? ` · ${state.lastLabel}` : ''}`;

    if (status === 'no_reference' || status === 'calibrating') {
      ui.score.textContent = '—';
      ui.score.className = 'score empty';
      renderClasses(null);
      ui.label.textContent = status === 'calibrating' ? 'Calibrating…' : 'Calibrate first';
      ui.notice.textContent = status === 'calibrating'
        ? 'Keep a relaxed, neutral face.'
        : 'This model needs your rest face first: press Calibrate.';
      return;
    }
    const smoothed = state.lastSmoothed;
    if (smoothed !== null) {
      ui.score.textContent = percent(smoothed);
      ui.score.style.setProperty('--score-colour', scoreColour(smoothed));
    } else {
      ui.score.textContent = '—';
    }
    renderClasses(message.smoothed || message.probabilities);
    ui.classes.classList.toggle('stale', status !== 'ok');
    if (status === 'ok') {
      ui.score.className = smoothed === null ? 'score empty' : 'score';
      ui.label.textContent = capitalised(state.lastSmoothedLabel || state.lastLabel || '');
      ui.notice.textContent = '\u00a0';
    } else {
      ui.score.className = 'score stale';
      ui.label.textContent = status === 'no_face' ? 'No face found' : capitalised(status);
      ui.notice.textContent = status === 'no_face'
        ? 'Face the camera, in good light: the score waits for a face.'
        : [message.error, message.fix].filter(Boolean).join(' ') || 'The server could not '
          + 'read this frame.';
    }
  }

  // ---------- drawing (draw.js) ----------

  const drawMesh = (message) => window.EmotionDraw.mesh(ui.mesh, message);
  const drawChart = () => window.EmotionDraw.chart(ui.chart, ui.legend, history);

  // ---------- calibration ----------

  function updateCalibrateButton() {
    ui.calibrate.disabled = calibrating || !state.connected || !cameraReady();
    ui.calibrate.textContent = state.calibrated ? 'Recalibrate' : 'Calibrate';
  }

  function updateCalibrationText(remaining) {
    const faces = `${state.enrolled} face${state.enrolled === 1 ? '' : 's'} so far`;
    if (typeof remaining === 'number' && remaining > 0) {
      ui.countdown.textContent = Math.ceil(remaining / 1000).toString();
    }
    const seconds = (model && model.calibration_seconds) || 3;
    ui.calibration.textContent = ui.countdown.hidden
      ? `Setting your reference… (${faces})`
      : `Relax your face for ${seconds} seconds and look at the camera. (${faces})`;
  }

  function startCalibration() {
    if (calibrating || !socket || socket.readyState !== WebSocket.OPEN) return;
    calibrating = true;
    state.calibrated = false;
    state.enrolled = 0;
    // A new calibration replaces the reference (the server would otherwise add to it).
    socket.send(JSON.stringify({ type: 'calibrate', action: 'start', replace: true }));
    const seconds = (model && model.calibration_seconds) || 3;
    const endsAt = performance.now() + seconds * 1000;
    ui.countdown.hidden = false;
    ui.calibrationBox.classList.add('active');
    updateCalibrateButton();
    updateCalibrationText(seconds * 1000);
    calibrationTicker = setInterval(() => {
      const remaining = endsAt - performance.now();
      if (remaining > 0) {
        updateCalibrationText(remaining);
        return;
      }
      clearInterval(calibrationTicker);
      calibrationTicker = null;
      ui.countdown.hidden = true;
      updateCalibrationText();
      if (socket && socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify({ type: 'calibrate', action: 'stop' }));
      }
      calibrationWatchdog = setTimeout(() => {
        stopCalibration();
        ui.calibration.textContent = 'The server did not confirm the calibration; try again.';
      }, CALIBRATION_REPLY_MS);
    }, 100);
  }

  function stopCalibration() {
    calibrating = false;
    clearInterval(calibrationTicker);
    clearTimeout(calibrationWatchdog);
    calibrationTicker = null;
    calibrationWatchdog = null;
    ui.countdown.hidden = true;
    ui.calibrationBox.classList.remove('active');
    if (model && model.needs_reference && !state.calibrated) {
      ui.calibration.textContent = 'Not calibrated.';
    }
    updateCalibrateButton();
  }

  function onCalibrated(message) {
    state.calibrated = true;
    if (detect && message.reference) {
      held = message.reference;
      window.EmotionLandmarks.stored.set(held);
    }
    if (typeof message.enrolled === 'number') state.enrolled = message.enrolled;
    stopCalibration();
    ui.calibration.textContent =
      `Calibrated on ${state.enrolled} face${state.enrolled === 1 ? '' : 's'}.`;
    showError(null);
    // Start the smoothed score afresh from the new reference.
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: 'reset' }));
    }
  }

  function onServerError(message) {
    if (calibrating) {
      stopCalibration();
      ui.calibration.textContent = `Calibration failed: ${message.error || 'unknown error'}`
        + `${message.fix ? ` ${message.fix}` : ''}`;
      return;
    }
    showError(message.error || 'The server reported an error.', message.fix);
  }

  // ---------- start ----------

  ui.calibrate.addEventListener('click', startCalibration);
  ui.forget.addEventListener('click', forgetReference);
  window.addEventListener('resize', () => drawChart());
  setInterval(() => {
    drawChart();                  // the time axis moves even when no replies come
    if (inFlight && socket && performance.now() - captureStartedAt > REPLY_TIMEOUT_MS) {
      socket.close();             // a lost reply would stop the stream for good: start over
    }
  }, 1000);
  drawChart();
  startCamera();
  loadModel().then(async (info) => {
    applyModel(info);
    await chooseMode();
    connect();
  });
})();
