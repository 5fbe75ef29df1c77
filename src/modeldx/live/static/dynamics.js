// Training dynamics (DGMTracker): the snapshot view (loss, per-layer bands over time), the layer view
// (blue-noise sampled polylines, zoom re-samples on the server) and the neuron view (its series and its top
// contributors). Every URL is relative; the page's ?token= goes on every API call. Non-finite values come
// as "nan" / "inf" / "-inf": drawn as gaps, with a red mark where a series stops being finite.

import { el, getJSON, hideTip, showTip } from "./pagekit.js";

const POLL_MS = 2000;
const state = {
  run: null, summaryStat: null, layer: null, lineStat: null,
  window: { start: 0, stop: null, lo: null, hi: null }, lines: null, neuron: null,
  drawnAt: null, linesDrawnAt: null, neuronDrawnAt: null, linesRequests: 0, linesAnswers: 0, neuronRequests: 0, neuronAnswers: 0, polls: 0,
};
window.modeldxDynamics = state;




const num = (v) => (typeof v === "number" ? v : v === "inf" ? Infinity : v === "-inf" ? -Infinity : NaN);
const nums = (a) => a.map(num);
function fmt(v) {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(0).replace("e+", "e");
  return a >= 100 ? v.toFixed(0) : a >= 1 ? v.toFixed(2) : v.toFixed(3);
}

function message(text) {
  const box = document.getElementById("message");
  box.hidden = !text;
  box.textContent = text || "";
}


// ---- a chart: axes, scales, paths with gaps ------------------------------------------------------------------

function extent(arrays, fallback = [0, 1]) {
  let lo = Infinity, hi = -Infinity;
  for (const a of arrays) for (const v of a) if (Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (lo === Infinity) return fallback;
  if (lo === hi) { if (lo === 0) return [0, 1]; const d = Math.abs(lo) * 0.05; return [lo - d, hi + d]; }
  return [lo, hi];  // the chart pads it, in its own scale
}

function ticks(lo, hi, n = 4) {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const step = 10 ** Math.floor(Math.log10(span / n));
  const nice = [1, 2, 5, 10].map((f) => f * step).find((s) => span / s <= n + 1) || step * 10;
  const out = [];
  for (let t = Math.ceil(lo / nice) * nice; t <= hi + 1e-12 * span; t += nice) out.push(+t.toPrecision(12));
  return out;
}

// a scale for these values: log for a positive quantity spanning decades, symlog (linear near 0, log beyond the
// values' median magnitude) when a few values dwarf the rest -- a run about to blow up -- else linear
function autoScale(arrays, positiveLog = false) {
  const a = [];
  for (const arr of arrays) for (const v of arr) if (Number.isFinite(v)) a.push(v);
  if (a.length < 2) return { scale: "linear" };
  const mags = a.map(Math.abs).filter((v) => v > 0).sort((p, q) => p - q);
  if (!mags.length) return { scale: "linear" };
  const median = mags[Math.floor(mags.length / 2)], top = mags[mags.length - 1];
  if (positiveLog && a.every((v) => v > 0) && top / mags[0] > 100) return { scale: "log" };
  if (top / median > 1e3) return { scale: "symlog", c: median };
  return { scale: "linear" };
}

// chart(parent, {width, height, xDomain, yDomain, scale, c, title, cls, compact}) -> {svg, plot, x, y, inv, box}
function chart(parent, o) {
  const m = { l: o.compact ? 50 : 62, r: 10, t: o.title ? 18 : 8, b: o.compact ? 18 : 24 };
  const w = o.width, h = o.height;
  const svg = el("svg:svg", { width: w, height: h, viewBox: `0 0 ${w} ${h}`, class: o.cls || "" }, parent);
  const box = { l: m.l, r: w - m.r, t: m.t, b: h - m.b };
  const [x0, x1] = o.xDomain[0] === o.xDomain[1] ? [o.xDomain[0] - 1, o.xDomain[1] + 1] : o.xDomain;
  const scale = o.scale || "linear", c0 = o.c || 1;
  const ty = scale === "log" ? (v) => Math.log10(v)
    : scale === "symlog" ? (v) => Math.sign(v) * Math.log10(1 + Math.abs(v) / c0) : (v) => v;
  const un = scale === "log" ? (t) => 10 ** t
    : scale === "symlog" ? (t) => Math.sign(t) * c0 * (10 ** Math.abs(t) - 1) : (t) => t;
  let [y0, y1] = o.yDomain.map(ty);
  if (!(y1 > y0)) { y0 -= 0.5; y1 += 0.5; }
  const pad = o.exact ? 0 : (y1 - y0) * 0.04;
  y0 = o.yDomain[0] >= 0 && scale !== "log" ? Math.max(y0 - pad, ty(0)) : y0 - pad;  // no negative room for a >= 0 stat
  y1 += pad;
  const x = (v) => box.l + ((v - x0) / (x1 - x0)) * (box.r - box.l);
  const y = (v) => box.b - ((ty(v) - y0) / (y1 - y0)) * (box.b - box.t);
  const inv = {
    x: (px) => x0 + ((px - box.l) / (box.r - box.l)) * (x1 - x0),
    y: (py) => un(y0 + ((box.b - py) / (box.b - box.t)) * (y1 - y0)),
  };
  if (o.title) el("svg:text", { x: box.l, y: 12, class: "title" }, svg, o.title);
  const axis = el("svg:g", { class: "axis" }, svg);
  let yt;
  if (scale === "linear") {
    yt = ticks(o.yDomain[0], o.yDomain[1], o.compact ? 3 : 4);
  } else {  // powers of ten (and 0 on symlog), thinned to a handful
    const [lo, hi] = [un(y0), un(y1)];
    yt = [];
    if (scale === "symlog" && lo <= 0 && hi >= 0) yt.push(0);
    for (let k = -30; k <= 40; k++) {
      const p = 10 ** k;
      if (scale === "symlog" && p < c0) continue;
      if (p >= lo && p <= hi) yt.push(p);
      if (scale === "symlog" && -p >= lo && -p <= hi) yt.push(-p);
    }
    yt.sort((p, q) => p - q);
    const most = o.compact ? 4 : 6;
    if (yt.length > most) { const every = Math.ceil(yt.length / most); yt = yt.filter((_, i) => i % every === 0); }
  }
  // linear ticks get the decimals their spacing needs (0.0401 and 0.0402 must not both read 0.040); the
  // spacing is rounded first: 0.001 - 0.0009 is 9.9999e-5 in floating point, not 1e-4
  const gap = scale === "linear" && yt.length > 1 ? +(yt[1] - yt[0]).toPrecision(6) : null;
  const biggest = Math.max(...yt.map(Math.abs));
  const label = (t) => {
    if (t === 0) return "0";
    if (scale !== "linear") {  // powers of ten: 0.01, 1, 1000, then 1e5
      return Math.abs(t) >= 1e5 || Math.abs(t) < 1e-3 ? fmt(t) : String(+t.toPrecision(3));
    }
    if (gap === null) return Math.abs(t) >= 1e5 ? fmt(t) : String(+t.toPrecision(3));  // a lone tick: 5, not 5.00
    if (biggest >= 1e5 || gap < 1e-4) {  // 1.10e-3, 1.11e-3: as many digits as the spacing needs
      const digits = Math.max(0, Math.min(6, Math.floor(Math.log10(biggest) + 1e-9) - Math.floor(Math.log10(gap) + 1e-9)));
      return t.toExponential(digits).replace("e+", "e");
    }
    return t.toFixed(Math.max(0, Math.min(8, -Math.floor(Math.log10(gap) + 1e-9))));
  };
  for (const t of yt) {
    el("svg:line", { x1: box.l, x2: box.r, y1: y(t), y2: y(t), class: "grid" }, axis);
    el("svg:text", { x: box.l - 4, y: y(t) + 3, "text-anchor": "end" }, axis, label(t));
  }
  if (scale !== "linear" && !o.compact) {
    el("svg:text", { x: box.l + 5, y: box.t + 10, class: "scale" }, svg, `${scale} scale`);
  }
  for (const t of ticks(x0, x1, o.compact ? 3 : 8).filter(Number.isInteger)) {
    el("svg:text", { x: x(t), y: box.b + 13, "text-anchor": "middle" }, axis, String(t));
  }
  el("svg:line", { x1: box.l, x2: box.r, y1: box.b, y2: box.b }, axis);
  el("svg:line", { x1: box.l, x2: box.l, y1: box.t, y2: box.b }, axis);
  const id = `clip${Math.random().toString(36).slice(2)}`;
  const clip = el("svg:clipPath", { id }, el("svg:defs", {}, svg));
  el("svg:rect", { x: box.l, y: box.t - 1, width: box.r - box.l, height: box.b - box.t + 2 }, clip);
  const plot = el("svg:g", { "clip-path": `url(#${id})` }, svg);
  return { svg, plot, x, y, inv, box, log: scale === "log" };
}

// "M..L.." of the finite points; a non-finite value (or a non-positive one on a log axis) breaks the path.
// A point with no drawable neighbour (a run of one snapshot, a value between NaNs) is a short dash: a
// lone "M" draws nothing, and the line could be neither seen nor clicked.
function pathOf(c, xs, ys) {
  let d = "";
  const ok = (i) => i >= 0 && i < xs.length && Number.isFinite(ys[i]) && !(c.log && ys[i] <= 0);
  for (let i = 0; i < xs.length; i++) {
    if (!ok(i)) continue;
    const px = c.x(xs[i]), py = c.y(ys[i]).toFixed(1);
    if (ok(i - 1)) d += `L${px.toFixed(1)},${py}`;
    else if (ok(i + 1)) d += `M${px.toFixed(1)},${py}`;
    else d += `M${(px - 3).toFixed(1)},${py}h6`;
  }
  return d;
}

// the min-max band as polygons over runs of finite snapshots
function bandOf(c, xs, lo, hi) {
  let d = "", run = [];
  const flush = () => {
    if (run.length) {
      const top = run.map((i) => `${c.x(xs[i]).toFixed(1)},${c.y(hi[i]).toFixed(1)}`);
      const bottom = run.slice().reverse().map((i) => `${c.x(xs[i]).toFixed(1)},${c.y(lo[i]).toFixed(1)}`);
      d += `M${top.join("L")}L${bottom.join("L")}Z`;
    }
    run = [];
  };
  for (let i = 0; i < xs.length; i++) {
    if (Number.isFinite(lo[i]) && Number.isFinite(hi[i])) run.push(i); else flush();
  }
  flush();
  return d;
}

// a red mark where a series is not finite: a triangle at the top (+inf), bottom (-inf), a dot at the top (nan)
function nonfiniteMarks(c, parent, xs, ys, firstOnly = false) {
  let n = 0;
  for (let i = 0; i < xs.length; i++) {
    const v = ys[i];
    if (Number.isFinite(v)) continue;
    const px = c.x(xs[i]);
    if (v === -Infinity) {
      el("svg:path", { d: `M${px - 4},${c.box.b}L${px + 4},${c.box.b}L${px},${c.box.b - 6}Z`, class: "nf-mark" },
        parent);
    } else if (v === Infinity) {
      el("svg:path", { d: `M${px - 4},${c.box.t}L${px + 4},${c.box.t}L${px},${c.box.t + 6}Z`, class: "nf-mark" },
        parent);
    } else {
      el("svg:circle", { cx: px, cy: c.box.t + 3, r: 3, class: "nf-mark" }, parent);
    }
    n++;
    if (firstOnly) break;
  }
  return n;
}

// the vertical marker at the first non-finite snapshot
function marker(c, step, label) {
  if (step === null || step === undefined) return;
  const g = el("svg:g", { class: "marker", "data-step": step }, c.svg);
  const px = c.x(step);
  el("svg:line", { x1: px, x2: px, y1: c.box.t, y2: c.box.b }, g);
  if (label) {
    const right = px < (c.box.l + c.box.r) / 2;
    // below the red marks that non-finite values leave along the top edge
    el("svg:text", { x: right ? px + 4 : px - 4, y: c.box.t + 22, "text-anchor": right ? "start" : "end" }, g, label);
  }
}

const markStep = () => (state.run.first_nonfinite ? state.run.first_nonfinite.step : null);

// ---- header, failure ---------------------------------------------------------------------------------------

function header(r) {
  document.getElementById("run-path").textContent = r.path;
  const cls = r.meta.model_class || r.meta.model || "";
  document.getElementById("model").textContent = cls;
  const badge = document.getElementById("status");
  badge.textContent = r.status === "recording" ? "recording…" : r.status;
  badge.classList.toggle("recording", r.status === "recording");
  const steps = r.losses.n ?? r.losses.steps.length;  // the steps sent are thinned on a long run
  document.getElementById("counts").textContent =
    `${r.n_snapshots} snapshots · ${steps} steps · ${r.layers.length} layers`;
  const box = document.getElementById("failure");
  box.textContent = "";
  if (r.first_nonfinite) {
    box.hidden = false;
    el("strong", {}, box, `First non-finite value at step ${r.first_nonfinite.step}` +
      ` (snapshot ${r.first_nonfinite.snapshot}). `);
    const f = r.failure;
    if (f) {
      el("span", { id: "failure-reason" }, box, `${f.reason} `);
      if (f.layer && layerInfo(f.layer)) {
        const a = el("a", { id: "failure-open" }, box, `show ${f.layer} · ${f.stat}`);
        a.addEventListener("click", () => openLayer(f.layer, f.stat, f.neurons && f.neurons.length ? f.neurons[0] : null));
      }
    }
  } else {
    box.hidden = true;
  }
}

// ---- snapshot view ------------------------------------------------------------------------------------------

function drawLoss(r) {
  const root = document.getElementById("loss-chart");
  root.textContent = "";
  const xs = r.losses.steps.length ? r.losses.steps : r.steps;
  const ys = nums(r.losses.steps.length ? r.losses.loss : r.loss);
  const snapLoss = nums(r.loss);
  const sc = autoScale([ys, snapLoss], true);
  const logY = sc.scale === "log";
  const fin = ys.concat(snapLoss).filter(Number.isFinite);
  const dom = logY ? [Math.min(...fin), Math.max(...fin)] : extent([ys, snapLoss]);
  const width = Math.max(600, root.clientWidth || 1200);
  const c = chart(root, { width, height: 190, xDomain: [xs[0] || 0, xs[xs.length - 1] || 1], yDomain: dom,
    ...sc, cls: "loss" });
  el("svg:path", { d: pathOf(c, xs, ys), class: "loss-line" }, c.plot);
  r.steps.forEach((s, i) => {
    if (Number.isFinite(snapLoss[i]) && (!logY || snapLoss[i] > 0)) {
      el("svg:circle", { cx: c.x(s), cy: c.y(snapLoss[i]), r: 2.2, class: "loss-dot" }, c.plot);
    }
  });
  const bad = nonfiniteMarks(c, c.svg, xs, ys);
  const first = r.first_nonfinite;
  marker(c, markStep(), first ? `first non-finite: step ${first.step}` : null);
  document.getElementById("loss-note").textContent = `every step (line), snapshots (dots)` +
    (sc.scale !== "linear" ? ` · ${sc.scale} scale` : "") + (bad ? ` · ${bad} non-finite loss${bad > 1 ? "es" : ""} (red marks)` : "");
}

async function drawMultiples() {
  const r = state.run;
  if (!r.n_snapshots) {  // a recorder that has not taken its first snapshot yet
    document.getElementById("multiples").textContent = "no snapshot yet";
    state.drawnAt = performance.now();
    return;
  }
  const data = await getJSON(`api/summaries/${encodeURIComponent(state.summaryStat)}`);
  const root = document.getElementById("multiples");
  root.textContent = "";
  const failed = r.failure ? r.failure.layer : null;
  for (const layer of r.layers) {
    const s = data.layers[layer.name];
    if (!s) continue;
    const [mean, lo, hi, nf] = [nums(s.mean), nums(s.min), nums(s.max), nums(s.nonfinite)];
    const wrap = el("div", { class: `small${layer.name === failed ? " failed" : ""}`, "data-layer": layer.name }, root);
    const c = chart(wrap, { width: 290, height: 130, compact: true, xDomain: [data.steps[0], data.steps.at(-1)],
      yDomain: extent([lo, hi, mean]), ...autoScale([lo, hi]), title: `${layer.name} · ${layer.neurons} neurons` +
      (layer.name === failed ? " · blamed" : "") });
    el("svg:path", { d: bandOf(c, data.steps, lo, hi), class: "band" }, c.plot);
    el("svg:path", { d: pathOf(c, data.steps, mean), class: "mean" }, c.plot);
    data.steps.forEach((st, i) => {   // snapshots with a non-finite value somewhere in the layer
      if (nf[i] > 0 || !Number.isFinite(mean[i])) {
        el("svg:line", { x1: c.x(st), x2: c.x(st), y1: c.box.b - 5, y2: c.box.b, class: "nf-tick" }, c.svg);
      }
    });
    marker(c, markStep(), null);
    wrap.addEventListener("click", () => openLayer(layer.name, state.summaryStat));
  }
  state.drawnAt = performance.now();
}

// ---- layer view ---------------------------------------------------------------------------------------------

function fillSelect(select, options, value) {
  select.textContent = "";
  for (const o of options) el("option", { value: o }, select, o);
  if (value !== null && options.includes(value)) select.value = value;
}

function layerInfo(name) { return state.run.layers.find((l) => l.name === name); }

async function openLayer(layer, stat, pick = null) {
  const info = layerInfo(layer);
  state.layer = layer;
  state.lineStat = info.stats.includes(stat) ? stat : info.stats[0];
  state.window = { start: 0, stop: null, lo: null, hi: null };
  fillSelect(document.getElementById("layer-select"), state.run.layers.map((l) => l.name), layer);
  fillSelect(document.getElementById("line-stat"), info.stats, state.lineStat);
  for (const s of document.querySelectorAll(".small")) s.classList.toggle("selected", s.dataset.layer === layer);
  await loadLines();
  document.getElementById("layer-view").scrollIntoView({ block: "nearest" });
  if (pick !== null) openNeuron(layer, pick);
}

async function loadLines() {
  const w = state.window;
  const m = Math.max(1, Math.min(1000, parseInt(document.getElementById("line-count").value, 10) || 150));
  const ticket = ++state.linesRequests;
  let d;
  try {
    d = await getJSON(`api/lines/${encodeURIComponent(state.layer)}/${encodeURIComponent(state.lineStat)}`,
      { start: w.start, stop: w.stop, lo: w.lo, hi: w.hi, m });
  } catch (err) {
    state.linesAnswers++;
    if (ticket === state.linesRequests) message(String(err.message || err));
    return;
  }
  state.linesAnswers++;
  // zooming faster than the server answers: only the newest request's answer is drawn
  if (ticket !== state.linesRequests) return;
  state.lines = d;
  message(null);
  drawLines();
}

function drawLines() {
  const d = state.lines;
  const root = document.getElementById("lines-chart");
  root.textContent = "";
  const xs = d.steps;
  const series = d.lines.map((l) => nums(l.values));
  const zoomedBand = state.window.lo !== null || state.window.hi !== null;
  const yDom = zoomedBand ? d.value_range : extent(series, d.value_range);
  const width = Math.max(600, root.clientWidth || 1200);
  const xDom = xs.length > 1 ? [xs[0], xs.at(-1)] : [xs[0] - 1, xs[0] + 1];
  const c = chart(root, { width, height: 380, xDomain: xDom, yDomain: yDom, ...autoScale(series), exact: zoomedBand,
    cls: "lines" });
  state.linesChart = c;
  // the ordinary lines first, the emphasised ones on top
  const rank = (l) => (l.suspect ? 3 : l.early ? 2 : l.outlier ? 1 : 0);
  const order = d.lines.map((_, i) => i).sort((a, b) => rank(d.lines[a]) - rank(d.lines[b]));
  // fewer lines can each be darker; many must stay translucent so that bundles read as density
  const alpha = Math.min(0.7, Math.max(0.18, 3 / Math.sqrt(Math.max(1, d.lines.length))));
  const g = el("svg:g", { id: "polylines", style: `--line-alpha: ${alpha.toFixed(2)}` }, c.plot);
  for (const i of order) {
    const l = d.lines[i];
    const cls = `line${l.outlier ? " outlier" : ""}${l.early ? " nonfinite" : ""}${l.suspect ? " suspect" : ""}`;
    const p = el("svg:path", { d: pathOf(c, xs, series[i]) || `M${c.box.l},${c.box.t}`, class: cls,
      "data-neuron": l.neuron }, g);
    p.addEventListener("mousemove", (ev) => showTip(ev, `neuron ${l.neuron}` + (l.suspect ? " · suspect" : "") +
      (l.outlier ? " · outlier" : "") +
      (l.early ? " · non-finite before the rest" : l.nonfinite ? " · non-finite" : "")));
    p.addEventListener("mouseleave", hideTip);
    p.addEventListener("click", (ev) => { ev.stopPropagation(); if (!c.dragged) openNeuron(state.layer, l.neuron); });
    if (l.early) nonfiniteMarks(c, c.svg, xs, series[i], true);
  }
  const step = markStep();
  if (step !== null && step >= xDom[0] && step <= xDom[1]) marker(c, step, `first non-finite: step ${step}`);
  if (d.lines.length && !series.some((a) => a.some(Number.isFinite))) {  // else an empty chart, unexplained
    el("svg:text", { x: (c.box.l + c.box.r) / 2, y: (c.box.t + c.box.b) / 2, "text-anchor": "middle",
      class: "empty-note" }, c.svg,
    `every value of these ${d.eligible} neurons is non-finite (NaN or ±inf) in steps ${xs[0]}–${xs.at(-1)}: ` +
      "nothing to draw");
  }
  brush(c);
  const outl = d.lines.filter((l) => l.outlier).length, bad = d.lines.filter((l) => l.early).length;
  document.getElementById("lines-note").textContent =
    `${d.lines.length} of ${d.eligible} neurons` + (d.eligible !== d.neurons ? ` (of ${d.neurons} in the band)` : "") +
    ` · steps ${xs[0]}–${xs.at(-1)}` + (zoomedBand ? ` · values ${fmt(d.value_range[0])}…${fmt(d.value_range[1])}` : "");
  const legend = document.getElementById("line-legend");
  legend.textContent = "";
  const item = (colour, text) => {
    const s = el("span", {}, legend);
    el("span", { class: "sw", style: `background:${colour}` }, s);
    s.appendChild(document.createTextNode(text));
  };
  item("rgba(76,110,245,.5)", "blue-noise sample of the layer's neurons" +
    (d.basis < d.steps.length ? ` (compared over steps ${xs[0]}–${xs[d.basis - 1]}, before most of them broke)` : ""));
  item("#e8590c", `outliers (${outl}; top 1 % by distance to the 10th nearest series)`);
  const suspects = d.lines.filter((l) => l.suspect).length;
  if (suspects) item("#212529", `suspects the localisation names (${suspects})`);
  if (bad) {
    item("#d6336c", (d.basis < d.steps.length ? "non-finite before most of the layer" : "non-finite") +
      ` (${bad}; a red mark where each stops)`);
  }
  state.linesDrawnAt = performance.now();
}

// drag to zoom: sideways a time range, up/down a value band, both a box
function brush(c) {
  let start = null, rect = null;
  if (state.brushOff) state.brushOff.abort();  // the previous chart's window listener goes with it
  state.brushOff = new AbortController();
  const point = (ev) => {
    const b = c.svg.getBoundingClientRect();
    return [Math.max(c.box.l, Math.min(c.box.r, ev.clientX - b.left)), Math.max(c.box.t, Math.min(c.box.b, ev.clientY - b.top))];
  };
  c.svg.addEventListener("mousedown", (ev) => {
    if (ev.button !== 0) return;
    ev.preventDefault();
    start = point(ev);
    c.dragged = false;
  });
  c.svg.addEventListener("mousemove", (ev) => {
    if (!start) return;
    const [x, y] = point(ev);
    if (!c.dragged && Math.abs(x - start[0]) < 5 && Math.abs(y - start[1]) < 5) return;
    c.dragged = true;
    if (!rect) rect = el("svg:rect", { class: "brush" }, c.svg);
    const box = frame(start, [x, y]);
    for (const [k, v] of Object.entries(box)) rect.setAttribute(k, v);
  });
  const frame = (a, b) => {
    let { l, r, t, bo } = { l: Math.min(a[0], b[0]), r: Math.max(a[0], b[0]), t: Math.min(a[1], b[1]), bo: Math.max(a[1], b[1]) };
    if (bo - t < 12) { t = c.box.t; bo = c.box.b; }          // a sideways drag: the whole value range
    else if (r - l < 12) { l = c.box.l; r = c.box.r; }       // an up/down drag: the whole time range
    return { x: l, y: t, width: r - l, height: bo - t };
  };
  window.addEventListener("mouseup", (ev) => {
    if (!start) return;
    const a = start;
    start = null;
    if (!c.dragged) return;
    const box = frame(a, point(ev));
    zoomTo(c, box);
    setTimeout(() => { c.dragged = false; }, 0);
  }, { signal: state.brushOff.signal });
}

function zoomTo(c, box) {
  const d = state.lines, steps = d.steps;
  const s0 = c.inv.x(box.x), s1 = c.inv.x(box.x + box.width);
  let i0 = steps.findIndex((s) => s >= s0);
  let i1 = steps.length - 1 - [...steps].reverse().findIndex((s) => s <= s1);
  if (i0 < 0) i0 = steps.length - 1;
  if (i1 < i0) i1 = i0;
  if (i1 - i0 < 1) { if (i1 < steps.length - 1) i1++; else if (i0 > 0) i0--; }   // a polyline needs two snapshots
  const w = state.window;
  const full = box.y <= c.box.t + 0.5 && box.y + box.height >= c.box.b - 0.5;
  state.window = {
    start: d.start + i0, stop: d.start + i1 + 1,
    lo: full ? w.lo : c.inv.y(box.y + box.height), hi: full ? w.hi : c.inv.y(box.y),
  };
  loadLines();
}

// ---- neuron view --------------------------------------------------------------------------------------------

async function openNeuron(layer, neuron) {
  const view = document.getElementById("neuron-view");
  view.hidden = false;
  document.getElementById("neuron-title").textContent = `${layer} · neuron ${neuron}`;
  document.getElementById("contrib-note").textContent = "computing contributions over the snapshots…";
  document.getElementById("neuron-stats").textContent = "";
  document.getElementById("contributors").textContent = "";
  for (const p of document.querySelectorAll(".line.picked")) p.classList.remove("picked");
  const path = document.querySelector(`.line[data-neuron='${neuron}']`);
  if (path) path.classList.add("picked");
  const ticket = ++state.neuronRequests;
  let d;
  try {
    d = await getJSON(`api/neuron/${encodeURIComponent(layer)}/${neuron}`);
  } catch (err) {
    state.neuronAnswers++;
    if (ticket === state.neuronRequests) message(String(err.message || err));
    return;
  }
  state.neuronAnswers++;
  if (ticket !== state.neuronRequests) return;  // another neuron was clicked meanwhile: its answer is drawn
  state.neuron = d;
  const stats = document.getElementById("neuron-stats");
  for (const [stat, values] of Object.entries(d.stats)) {
    small(stats, d.steps, nums(values), stat, "stat-line", null, { "data-stat": stat });
  }
  const cs = d.contributors;
  const title = document.getElementById("contrib-title");
  const note = document.getElementById("contrib-note");
  const list = document.getElementById("contributors");
  if (!cs.available) {
    title.textContent = "Top contributors";
    note.textContent = cs.reason;
  } else {
    title.textContent = `Top contributors in ${cs.source_layer}`;
    note.textContent = `contribution to ${layer} #${neuron} at each snapshot (gradient × activation on the run's ` +
      `probe batch), largest |sum over snapshots| first; dashed grey: the contributor's own mean activation, on its own scale`;
    for (const it of cs.items) {
      small(list, d.steps, nums(it.series), `${it.layer} #${it.neuron} · total ${fmt(num(it.total))}`, "contrib",
        it.mean ? nums(it.mean) : null, { "data-neuron": it.neuron, "data-layer": it.layer });
    }
  }
  state.neuronDrawnAt = performance.now();
  view.scrollIntoView({ block: "nearest" });
}

function small(parent, steps, ys, title, cls, second, attrs) {
  const wrap = el("div", { class: "small static", ...attrs }, parent);
  const c = chart(wrap, { width: 290, height: 130, compact: true, xDomain: [steps[0], steps.at(-1)],
    yDomain: extent([ys]), ...autoScale([ys]), title });
  if (second) {  // another quantity: drawn on its own scale over the chart's height, no axis of its own
    const [lo, hi] = extent([second]);
    const own = { ...c, log: false, y: (v) => c.box.b - ((v - lo) / (hi - lo)) * (c.box.b - c.box.t) };
    el("svg:path", { d: pathOf(own, steps, second), class: "contrib-mean" }, c.plot);
  }
  el("svg:path", { d: pathOf(c, steps, ys), class: cls }, c.plot);
  nonfiniteMarks(c, c.svg, steps, ys, true);
  marker(c, markStep(), null);
  return c;
}

// ---- live: poll while the run records ------------------------------------------------------------------------

async function redraw() {
  header(state.run);
  drawLoss(state.run);
  await drawMultiples();
}

async function poll() {
  let r;
  try {
    r = await getJSON("api/run");
  } catch (err) {
    message(String(err.message || err));
    setTimeout(poll, POLL_MS);
    return;
  }
  state.polls++;
  const grew = r.n_snapshots !== state.run.n_snapshots || r.status !== state.run.status;
  state.run = r;
  if (grew) {
    await redraw();
    if (!state.layer && r.n_snapshots && r.layers.length) await openFirstLayer();
    else if (state.layer && state.window.stop === null && state.lines) await loadLines();  // not zoomed: follow
  }
  if (r.status === "recording") setTimeout(poll, POLL_MS);
}

// the layer the localisation blames, else the first having the chosen statistic
async function openFirstLayer() {
  const r = state.run, f = r.failure;
  const located = f && f.layer && layerInfo(f.layer);
  const first = located ? f.layer : (r.layers.find((l) => l.stats.includes(state.summaryStat)) || r.layers[0]).name;
  await openLayer(first, located ? f.stat : state.summaryStat);
}

async function main() {
  try {
    state.run = await getJSON("api/run");
  } catch (err) {
    message(String(err.message || err));
    return;
  }
  const r = state.run;
  const all = [...new Set(r.layers.flatMap((l) => l.stats))];
  const f = r.failure;
  const located = f && f.layer && layerInfo(f.layer);
  state.summaryStat = located && all.includes(f.stat) ? f.stat : all.includes("max_abs") ? "max_abs" : all[0];
  const sel = document.getElementById("summary-stat");
  fillSelect(sel, all, state.summaryStat);
  sel.addEventListener("change", () => { state.summaryStat = sel.value; drawMultiples(); });
  document.getElementById("layer-select").addEventListener("change", (ev) => openLayer(ev.target.value, state.lineStat));
  document.getElementById("line-stat").addEventListener("change", (ev) => {
    state.lineStat = ev.target.value;
    state.window = { start: 0, stop: null, lo: null, hi: null };
    loadLines();
  });
  document.getElementById("line-count").addEventListener("change", () => loadLines());
  document.getElementById("reset-zoom").addEventListener("click", () => {
    state.window = { start: 0, stop: null, lo: null, hi: null };
    loadLines();
  });
  document.getElementById("close-neuron").addEventListener("click", () => {
    document.getElementById("neuron-view").hidden = true;
  });
  await redraw();
  if (r.layers.length && r.n_snapshots) await openFirstLayer();
  if (r.status === "recording") setTimeout(poll, POLL_MS);
}

main();
