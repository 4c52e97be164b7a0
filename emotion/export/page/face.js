// One face as the model's ONNX graph takes it: FaceLandmarker's largest face (raw landmarks,
// image size, blendshapes, pose), the graph's feeds by its own input names, and the rest face
// packed for localStorage. Nothing is normalised here: the graph does it, as in Python.
const POINTS = 478;
const BLENDSHAPES = 52;
const SHAPES = { landmarks: [POINTS, 3], size: [2], blendshapes: [BLENDSHAPES], pose: [4, 4] };
const FIELDS = { landmarks: 'landmarks', image_size: 'size', blendshapes: 'blendshapes', pose: 'pose' };

// The face with the largest landmark box in pixels (as emotion's Landmarker picks), or null.
export function largestFace(result, width, height) {
  let best = null;
  let bestArea = -1;
  result.faceLandmarks.forEach((points, index) => {
    if (points.length !== POINTS) return;
    const xs = points.map((p) => p.x);
    const ys = points.map((p) => p.y);
    const area = (Math.max(...xs) - Math.min(...xs)) * width
      * (Math.max(...ys) - Math.min(...ys)) * height;
    if (area > bestArea) {
      bestArea = area;
      best = index;
    }
  });
  if (best === null) return null;
  const landmarks = new Float32Array(POINTS * 3);
  result.faceLandmarks[best].forEach((p, i) => landmarks.set([p.x, p.y, p.z], 3 * i));
  const blendshapes = new Float32Array(BLENDSHAPES).fill(NaN);
  for (const c of (result.faceBlendshapes[best] || { categories: [] }).categories) {
    if (c.index >= 0 && c.index < BLENDSHAPES) blendshapes[c.index] = c.score;
  }
  // tasks-vision packs the matrix column-major; the graph takes it row-major (as Python).
  const packed = (result.facialTransformationMatrixes[best] || { data: [] }).data;
  const pose = new Float32Array(16);
  for (let r = 0; r < 4; r += 1) for (let c = 0; c < 4; c += 1) pose[4 * r + c] = packed[4 * c + r];
  return { landmarks, size: Float32Array.from([width, height]), blendshapes, pose };
}

function stacked(frames, field) {
  const size = frames[0][field].length;
  const out = new Float32Array(frames.length * size);
  frames.forEach((f, i) => out.set(f[field], i * size));
  return out;
}

// {input name: Tensor} for one face (batch 1) and, for reference_* inputs, the rest face's R frames.
export function feeds(names, face, reference, Tensor) {
  const out = {};
  for (const name of names) {
    const field = FIELDS[name.replace(/^reference_/, '')];
    out[name] = name.startsWith('reference_')
      ? new Tensor('float32', stacked(reference, field), [1, reference.length, ...SHAPES[field]])
      : new Tensor('float32', face[field], [1, ...SHAPES[field]]);
  }
  return out;
}

// The rest face in localStorage: each frame's float32 arrays as base64 (exact, ~8 KB a frame).
const toBase64 = (floats) => btoa(String.fromCharCode(...new Uint8Array(floats.buffer)));
const fromBase64 = (text) =>
  new Float32Array(Uint8Array.from(atob(text), (c) => c.charCodeAt(0)).buffer);

export function saveFrames(key, frames) {
  const packed = frames.map((f) => ({
    landmarks: toBase64(f.landmarks), size: Array.from(f.size),
    blendshapes: toBase64(f.blendshapes), pose: toBase64(f.pose),
  }));
  try {
    localStorage.setItem(key, JSON.stringify({ version: 1, frames: packed }));
    return true;
  } catch {
    return false;  // storage full or off: the reference lasts until the page closes
  }
}

export function loadFrames(key) {
  try {
    const saved = JSON.parse(localStorage.getItem(key) || 'null');
    if (!saved || saved.version !== 1 || !saved.frames.length) return null;
    return saved.frames.map((f) => ({
      landmarks: fromBase64(f.landmarks), size: Float32Array.from(f.size),
      blendshapes: fromBase64(f.blendshapes), pose: fromBase64(f.pose),
    }));
  } catch {
    return null;
  }
}
