// A capture in progress (modeldx serve capture): its progress, the top-k neurons of each group of a layer with
// each neuron's confidence, refined as chunks land, and once complete how close each earlier answer was to the
// final one. Every URL is relative; the page's ?token= goes on every API call.

import { el, getJSON, hideTip, showTip } from "./pagekit.js";

const POLL_MS = 1000;
const state = { status: null, answer: null, history: null, layer: null, polls: 0, answerAt: null, historyAt: null };
window.modeldxCapture = state;

const int = (v) => Number(v).toLocaleString("en-US");
const pct = (v) => `${(100 * v).toFixed(0)}%`;

function message(text) {
  const box = document.getElementById("message");
  box.hidden = !text;
  box.textContent = text || "";
}

function duration(s) {
  if (s === null || s === undefined) return "unknown";
  if (s < 60) return `${Math.ceil(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

function showStatus(s) {
  document.getElementById("store-path").textContent = s.path;
  const badge = document.getElementById("status");
  badge.textContent = s.status === "capturing" ? "capturing…" : s.status === "waiting" ? "waiting for the store…" : s.status;
  badge.className = `badge ${s.status}`;
  document.getElementById("writer").textContent =
    s.status !== "capturing" || s.writing === null ? ""  // fsspec storage has no lock to tell
      : s.writing ? "a writer is at work" : "no process holds the store's lock: the capture stopped";
  document.getElementById("biased").hidden = !(s.biased && s.status === "capturing");
  const share = s.items_total ? s.items_done / s.items_total : 0;
  document.getElementById("progress-fill").style.width = `${(100 * share).toFixed(1)}%`;
  document.getElementById("counts").textContent = s.items_total === null ? "no store yet"
    : `${int(s.items_done)} of ${int(s.items_total)} items (${pct(share)}) · ${s.chunks_done} of ${s.chunks_total} chunks`;
  document.getElementById("rate").textContent = s.status === "complete" ? "complete"
    : `${s.rate ? `${int(Math.round(s.rate))} items/s` : "rate: after two chunks"} · ${s.rate ? `${duration(s.eta_s)} left` : ""}`;
  if (s.error) message(`the capture failed: ${s.error}`);
  const sel = document.getElementById("layer-select");
  if (!sel.options.length && s.layers.length) {
    for (const l of s.layers) el("option", { value: l.name }, sel, `${l.name} (${l.neurons})`);
    state.layer = s.default_layer ?? s.layers.at(-1).name;  // the last layer wider than k: the logits' top k is all
    sel.value = state.layer;
  }
}

function groupName(g) {
  const classes = state.status.classes || [];
  return `${classes[g.label] ?? g.label} ${g.correct ? "✓" : "✗"}`;
}

function drawAnswer(a) {
  const table = document.getElementById("answer");
  const head = table.tHead, body = table.tBodies[0];
  head.textContent = "";
  body.textContent = "";
  const note = document.getElementById("answer-note");
  if (!a.groups.length) { note.textContent = "no chunk written yet"; return; }
  const row = el("tr", {}, head);
  el("th", {}, row, "group");
  for (let r = 1; r <= a.k; r++) el("th", { class: "rank" }, row, `#${r}`);
  for (const g of a.groups) {
    const tr = el("tr", { "data-label": g.label, "data-correct": g.correct }, body);
    const td = el("td", { class: `group ${g.correct ? "" : "wrong"}` }, tr, `${groupName(g)} `);
    el("span", { class: "n" }, td, `${int(g.n_items)} item${g.n_items === 1 ? "" : "s"}`);
    for (let r = 0; r < a.k; r++) {
      const n = g.neurons[r];
      if (!n) { el("td", { class: "cell none" }, tr); continue; }
      const c = n.confidence;
      const cell = el("td", { class: `cell${c !== null && c > 0.6 ? " strong" : ""}`, "data-neuron": n.neuron,
        "data-confidence": c === null ? "" : c }, tr, String(n.neuron));
      // shade at most 0.62 of the blue: the dark number stays >= 4.5:1 (WCAG AA) on every cell
      cell.style.setProperty("--c", c === null ? 0.06 : (0.06 + 0.56 * c).toFixed(3));
      if (c !== null) el("span", { class: "conf" }, cell).style.width = `${(46 * c).toFixed(1)}px`;
      const tip = `neuron ${n.neuron} · rank ${n.rank} · value ${n.value === null ? "?" : n.value.toFixed(3)} · `
        + (c === null ? "no confidence from one chunk" : `confidence ${c.toFixed(2)}`);
      cell.addEventListener("mousemove", (ev) => showTip(ev, tip));
      cell.addEventListener("mouseleave", hideTip);
    }
  }
  note.textContent = `${a.complete ? "exact: every item" : `from ${int(a.items_done)} items (${a.chunks_done} chunks)`}`
    + (a.mean_confidence === null ? "" : ` · mean confidence ${a.mean_confidence.toFixed(2)}`);
}

function drawHistory(h) {
  const box = document.getElementById("history-chart");
  box.textContent = "";
  const e = h.entries;
  const total = state.status.items_total || 1;
  const w = 700, ht = 200, m = { l: 40, r: 12, t: 10, b: 28 };
  const svg = el("svg:svg", { width: w, height: ht, viewBox: `0 0 ${w} ${ht}` }, box);
  const x = (v) => m.l + (v / total) * (w - m.l - m.r);
  const y = (v) => ht - m.b - v * (ht - m.t - m.b);
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    el("svg:line", { x1: m.l, x2: w - m.r, y1: y(t), y2: y(t), class: "grid" }, svg);
    el("svg:text", { x: m.l - 5, y: y(t) + 3, "text-anchor": "end" }, svg, t.toFixed(2));
  }
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    el("svg:text", { x: x(t * total), y: ht - m.b + 14, "text-anchor": "middle" }, svg, pct(t));
  }
  el("svg:text", { x: (w + m.l) / 2, y: ht - 3, "text-anchor": "middle" }, svg, "items captured");
  el("svg:line", { x1: m.l, x2: w - m.r, y1: y(0), y2: y(0), class: "axis" }, svg);
  el("svg:line", { x1: m.l, x2: m.l, y1: y(0), y2: y(1), class: "axis" }, svg);
  for (const [key, cls] of [["mean_confidence", "conf"], ["precision", "prec"]]) {
    const pts = e.filter((p) => p[key] !== null).map((p) => [x(p.items), y(p[key])]);
    if (!pts.length) continue;
    el("svg:path", { d: pts.map(([a, b], i) => `${i ? "L" : "M"}${a.toFixed(1)},${b.toFixed(1)}`).join(""),
      class: `${cls}-line` }, svg);
    for (const [a, b] of pts) el("svg:circle", { cx: a, cy: b, r: 2.5, class: `${cls}-dot` }, svg);
  }
  const prec = e.filter((p) => p.precision !== null);
  document.getElementById("history-note").textContent = !e.length ? "no answer yet"
    : prec.length ? `${e.length} answer${e.length === 1 ? "" : "s"}; the first at ${pct(e[0].items / total)} of the items had precision ${e[0].precision.toFixed(2)}`
    : `${e.length} answer${e.length === 1 ? "" : "s"} so far; precision against the final answer once the capture completes`;
}

async function loadAnswer() {
  const [a, h] = await Promise.all([getJSON("api/answer", { layer: state.layer }), getJSON("api/history", { layer: state.layer })]);
  state.answer = a;
  state.history = h;
  drawAnswer(a);
  drawHistory(h);
  state.answerAt = Date.now();
}

async function poll() {
  try {
    const s = await getJSON("api/status");
    const grew = !state.status || s.chunks_done !== state.status.chunks_done || s.status !== state.status.status;
    state.status = s;
    state.polls++;
    showStatus(s);
    if (grew && s.chunks_done > 0) await loadAnswer();
    message(s.error ? `the capture failed: ${s.error}` : "");
    if (s.status !== "complete") setTimeout(poll, POLL_MS);
  } catch (err) {
    message(String(err.message || err));
    setTimeout(poll, POLL_MS);
  }
}

document.getElementById("layer-select").addEventListener("change", async (ev) => {
  state.layer = ev.target.value;
  try { await loadAnswer(); } catch (err) { message(String(err.message || err)); }
});
poll();
