// The page's own FaceLandmarker (@mediapipe/tasks-vision, served from /static/vendor/, no CDN)
// and the rest face it keeps: what lets the page send landmarks instead of camera frames.
// Loaded before app.js; app.js falls back to sending frames when `load` fails (no
// WebAssembly, or a source install without the vendored runtime).
'use strict';

window.EmotionLandmarks = (() => {
  const VENDOR = '/static/vendor/tasks-vision';
  const STORE_KEY = 'emotion.reference';
  // The extractor's MAX_FACES: with 8 the graph runs the detector on every frame and does
  // no smoothing between frames, so VIDEO mode gives IMAGE mode's landmarks (the server's
  // and the stores'); with 1 it smooths and moves them far past what the model was trained on.
  const MAX_FACES = 8;
  const DIGITS = 1e7;             // landmarks travel rounded to 1e-7 of the image
  const timing = { calls: 0, totalMs: 0 };

  // Load the runtime and the model; throws (the caller falls back) when either is missing.
  async function load(modelUrl) {
    if (typeof WebAssembly === 'undefined') throw new Error('this browser has no WebAssembly');
    const vision = await import(`${VENDOR}/vision_bundle.mjs`);
    const fileset = await vision.FilesetResolver.forVisionTasks(`${VENDOR}/wasm`);
    const landmarker = await vision.FaceLandmarker.createFromOptions(fileset, {
      baseOptions: { modelAssetPath: modelUrl, delegate: 'CPU' },
      runningMode: 'VIDEO',
      numFaces: MAX_FACES,
      outputFaceBlendshapes: true,
      outputFacialTransformationMatrixes: true,
    });
    let lastStamp = -1;
    // What the landmarker costs here, for `python -m emotion.bench page`: calls, total ms.
    timing.calls = 0;
    timing.totalMs = 0;
    // The largest face (by its landmarks' box in pixels, as the server's extractor picks it)
    // in one frame drawn on `canvas`, or null; and how many faces there were.
    return function detect(canvas) {
      const stamp = Math.max(Math.round(performance.now()), lastStamp + 1);
      lastStamp = stamp;
      const started = performance.now();
      const result = landmarker.detectForVideo(canvas, stamp);
      timing.calls += 1;
      timing.totalMs += performance.now() - started;
      const faces = result.faceLandmarks || [];
      if (!faces.length) return { face: null, faces: 0 };
      let best = 0;
      let bestArea = -1;
      faces.forEach((points, index) => {
        const xs = points.map((p) => p.x);
        const ys = points.map((p) => p.y);
        const area = (Math.max(...xs) - Math.min(...xs)) * canvas.width
          * (Math.max(...ys) - Math.min(...ys)) * canvas.height;
        if (area > bestArea) {
          best = index;
          bestArea = area;
        }
      });
      const scores = new Array(52).fill(0);
      const shapes = (result.faceBlendshapes || [])[best];
      if (shapes) for (const c of shapes.categories) scores[c.index] = c.score;
      const matrix = (result.facialTransformationMatrixes || [])[best];
      // tasks-vision packs the matrix column by column; the server takes rows.
      const pose = matrix
        ? [0, 1, 2, 3].map((r) => [0, 1, 2, 3].map((c) => matrix.data[c * 4 + r]))
        : null;
      return {
        face: {
          landmarks: faces[best].map((p) => [p.x, p.y, p.z]),
          blendshapes: scores,
          pose,
        },
        faces: faces.length,
      };
    };
  }

  const round = (value) => Math.round(value * DIGITS) / DIGITS;

  // The stream's landmark message for one detection: only what the model reads.
  function message(found, width, height, model, reference) {
    const out = { type: 'landmarks', landmarks: null };
    if (found.face) {
      const recipe = (model && model.preprocessing) || {};
      out.landmarks = found.face.landmarks.map(([x, y, z]) => [round(x), round(y), round(z)]);
      out.image_size = [width, height];
      out.faces = found.faces;
      if (String(recipe.features || '').includes('blendshapes')) {
        out.blendshapes = found.face.blendshapes;
      }
      if (recipe.normalization === 'pose' && found.face.pose) out.pose = found.face.pose;
    }
    if (reference) out.reference = reference;
    return JSON.stringify(out);
  }

  // The rest face the server made for this page, kept across reloads; one made for another
  // model is dropped (the server would refuse it).
  const stored = {
    get(model) {
      try {
        const held = JSON.parse(localStorage.getItem(STORE_KEY) || 'null');
        if (held && model && held.model === model.reference_model) return held;
        if (held) localStorage.removeItem(STORE_KEY);
      } catch {
        localStorage.removeItem(STORE_KEY);
      }
      return null;
    },
    set(held) {
      try {
        localStorage.setItem(STORE_KEY, JSON.stringify(held));
      } catch {
        // Storage full or off: the reference lasts until the page is closed.
      }
    },
    forget() {
      localStorage.removeItem(STORE_KEY);
    },
  };

  return { load, message, stored, timing };
})();
