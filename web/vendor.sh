#!/usr/bin/env bash
# Install the browser runtimes from package-lock.json and copy the files the pages load into
# emotion/serve/static/vendor/ (package data: the wheel carries them; no CDN at run time):
#   @mediapipe/tasks-vision  the FaceLandmarker (JavaScript and its WebAssembly, with and
#                            without SIMD); the model is emotion/assets/face_landmarker.task
#   onnxruntime-web          the ONNX runtime (WebAssembly build) of the static export
# Without npm it says so and leaves the folder as it is: the served page then sends camera
# frames to the server instead of finding the face itself.
set -euo pipefail
cd "$(dirname "$0")"
target=../emotion/serve/static/vendor
if ! command -v npm >/dev/null; then
  echo "warning: npm not found: the page's in-browser FaceLandmarker is not installed" \
    "(install Node.js and npm, then make setup); the page falls back to sending frames" >&2
  exit 0
fi
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
rm -rf "$target.new"
mkdir -p "$target.new/tasks-vision/wasm" "$target.new/onnxruntime-web"
vision=node_modules/@mediapipe/tasks-vision
cp "$vision/vision_bundle.mjs" "$target.new/tasks-vision/"
for variant in vision_wasm_internal vision_wasm_nosimd_internal; do
  cp "$vision/wasm/$variant.js" "$vision/wasm/$variant.wasm" "$target.new/tasks-vision/wasm/"
done
ort=node_modules/onnxruntime-web/dist
cp "$ort/ort.wasm.min.mjs" "$ort/ort-wasm-simd-threaded.mjs" "$ort/ort-wasm-simd-threaded.wasm" \
  "$target.new/onnxruntime-web/"
# What was copied, from which version, under which licence (each package's own field).
node -e '
const out = {};
for (const name of ["@mediapipe/tasks-vision", "onnxruntime-web"]) {
  const meta = require(`./node_modules/${name}/package.json`);
  out[name] = {version: meta.version, license: meta.license};
}
console.log(JSON.stringify(out, null, 1));' > "$target.new/versions.json"
rm -rf "$target"
mv "$target.new" "$target"
echo "vendored $(du -sh "$target" | cut -f1) into emotion/serve/static/vendor/"
