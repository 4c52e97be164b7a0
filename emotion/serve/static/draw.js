// The page's drawings: the face mesh over the video and the score's chart. Loaded before
// app.js, which keeps the state; these only draw what they are given.
'use strict';

window.EmotionDraw = (() => {
  const CHART_SECONDS = 60;
  const GAP_SECONDS = 1.5;        // the chart's line breaks where no score came for this long
  // FaceMesh's face oval (the outline MediaPipe draws as FACEMESH_FACE_OVAL), in order.
  const FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379,
    378, 400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103,
    67, 109];
  const percent = (p) => `${(100 * p).toFixed(1)} %`;

  function fitCanvas(canvas) {
    const rect = canvas.getBoundingClientRect();
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(rect.width * ratio));
    const height = Math.max(1, Math.round(rect.height * ratio));
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
    }
    return { width, height, ratio };
  }

  // The face's dots and outline over the video (green once scored, amber otherwise).
  function mesh(canvas, message) {
    const { width, height, ratio } = fitCanvas(canvas);
    const context = canvas.getContext('2d');
    context.clearRect(0, 0, width, height);
    const points = message.landmarks;
    if (!Array.isArray(points) || !points.length) return;
    const colour = message.status === 'ok' ? '120, 255, 200' : '255, 220, 120';
    context.fillStyle = `rgba(${colour}, 0.85)`;
    const radius = 1.1 * ratio;
    context.beginPath();
    for (const [x, y] of points) {
      const px = x * width;
      const py = y * height;
      context.moveTo(px + radius, py);
      context.arc(px, py, radius, 0, 2 * Math.PI);
    }
    context.fill();
    if (points.length > 454) {
      context.strokeStyle = `rgba(${colour}, 0.6)`;
      context.lineWidth = 1.5 * ratio;
      context.beginPath();
      FACE_OVAL.forEach((index, n) => {
        const [x, y] = points[index];
        if (n === 0) context.moveTo(x * width, y * height);
        else context.lineTo(x * width, y * height);
      });
      context.closePath();
      context.stroke();
    }
  }

  // The smoothed score's last minute, broken where no score came; `history` is trimmed.
  function chart(canvas, legend, history) {
    const { width, height, ratio } = fitCanvas(canvas);
    const context = canvas.getContext('2d');
    const now = performance.now();
    const start = now - CHART_SECONDS * 1000;
    while (history.length > 1 && history[1].t < start) history.shift();

    const left = 44 * ratio;
    const right = 12 * ratio;
    const top = 10 * ratio;
    const bottom = 24 * ratio;
    const plotWidth = width - left - right;
    const plotHeight = height - top - bottom;
    const x = (t) => left + ((t - start) / (CHART_SECONDS * 1000)) * plotWidth;
    const y = (v) => top + (1 - v) * plotHeight;

    context.clearRect(0, 0, width, height);
    context.font = `${11 * ratio}px system-ui, sans-serif`;
    context.fillStyle = '#6b7280';
    context.strokeStyle = '#e5e7eb';
    context.lineWidth = ratio;
    context.textBaseline = 'middle';
    context.textAlign = 'right';
    for (const v of [0, 0.25, 0.5, 0.75, 1]) {
      context.beginPath();
      context.moveTo(left, y(v));
      context.lineTo(width - right, y(v));
      context.stroke();
      context.fillText(`${v * 100}%`, left - 6 * ratio, y(v));
    }
    context.textAlign = 'center';
    context.textBaseline = 'top';
    for (let s = CHART_SECONDS; s >= 0; s -= 10) {
      context.fillText(s === 0 ? 'now' : `−${s} s`, x(now - s * 1000), height - bottom + 6 * ratio);
    }
    // The decision line.
    context.save();
    context.setLineDash([4 * ratio, 4 * ratio]);
    context.strokeStyle = '#9ca3af';
    context.beginPath();
    context.moveTo(left, y(0.5));
    context.lineTo(width - right, y(0.5));
    context.stroke();
    context.restore();

    // The score: runs of consecutive points, broken at gaps (no face, no score).
    const runs = [];
    let run = [];
    let previous = null;
    for (const point of history) {
      const broken = point.v === null
        || (previous && point.t - previous.t > GAP_SECONDS * 1000);
      if (broken && run.length) {
        runs.push(run);
        run = [];
      }
      if (point.v !== null) run.push(point);
      previous = point;
    }
    if (run.length) runs.push(run);

    context.save();
    context.beginPath();
    context.rect(left, top, plotWidth, plotHeight);
    context.clip();
    for (const points of runs) {
      const gradient = context.createLinearGradient(0, top, 0, top + plotHeight);
      gradient.addColorStop(0, 'rgba(220, 38, 38, 0.18)');
      gradient.addColorStop(1, 'rgba(13, 148, 136, 0.08)');
      context.fillStyle = gradient;
      context.beginPath();
      context.moveTo(x(points[0].t), y(0));
      for (const p of points) context.lineTo(x(p.t), y(p.v));
      context.lineTo(x(points[points.length - 1].t), y(0));
      context.closePath();
      context.fill();

      context.strokeStyle = '#0f766e';
      context.lineWidth = 2 * ratio;
      context.lineJoin = 'round';
      context.beginPath();
      points.forEach((p, n) => (n ? context.lineTo(x(p.t), y(p.v)) : context.moveTo(x(p.t), y(p.v))));
      if (points.length === 1) context.arc(x(points[0].t), y(points[0].v), 2 * ratio, 0, 2 * Math.PI);
      context.stroke();
    }
    context.restore();
    const scored = history.filter((p) => p.v !== null);
    legend.textContent = scored.length
      ? `now ${percent(scored[scored.length - 1].v)} · 50% line = decision`
      : 'no score yet';
  }

  return { mesh, chart };
})();
