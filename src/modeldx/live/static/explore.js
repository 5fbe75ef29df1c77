// The network explorer: layers as columns of neuron clusters (SVG), bundles between them, a detail panel.
// Every URL is relative (a proxy may mount the page anywhere); the page's ?token= goes on every API call.

import { api, el, getJSON, hideTip, showTip } from "./pagekit.js";

const BOX_W = 190, GAP_X = 90, STRIP_H = 16, THUMB = 26, PAD = 6, HEAD_H = 58, BOX_GAP = 8, MAX_BUNDLE_W = 16;
const state = { graph: null, boxes: new Map(), selected: null, drawnAt: null };
window.modeldxExplorer = state;




// colour of a matrix cell: v in [-1, 1] of its matrix's scale; white is 0, purple positive, teal negative
function colour(v) {
  const t = Math.max(-1, Math.min(1, v || 0));
  const [r, g, b] = t >= 0 ? [63, 0, 125] : [0, 109, 119];
  const a = Math.abs(t);
  const mix = (c) => Math.round(255 + (c - 255) * a);
  return `rgb(${mix(r)},${mix(g)},${mix(b)})`;
}

function fmt(v) { return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toFixed(3); }


function header(g) {
  document.getElementById("store").textContent = g.store;
  document.getElementById("model").textContent =
    `${g.model || "model"} on ${g.dataset || "?"}` + (g.checkpoint ? "" : " (no checkpoint)");
  const src = document.getElementById("source");
  const s = g.source;
  if (s.exact) {
    src.textContent = `exact: all ${s.items.toLocaleString()} items`;
  } else {
    src.textContent = `sampled${s.sample ? ` (${s.sample})` : ""}: ${s.items.toLocaleString()} items, ` +
      `${(100 * s.fraction).toFixed(1)} % of the store, weighted`;
    src.classList.add("sampled");
  }
  document.getElementById("timing").textContent = `computed in ${g.compute_s.toFixed(2)} s`;
  const notes = [...g.notes];
  if (!g.images.available) notes.push(`Item images are unavailable: ${g.images.reason}.`);
  if (notes.length) {
    const box = document.getElementById("notes");
    box.hidden = false;
    for (const n of notes) el("p", {}, box, n);
  }
}

function boxHeight(g) { return PAD + 14 + STRIP_H + (g.images.available ? THUMB + 4 : 0) + PAD; }

// columns by depth; layers sharing a depth (branches of a DAG) stack in their column
function layout(g) {
  const columns = new Map();
  for (const layer of g.layers) {
    if (!columns.has(layer.depth)) columns.set(layer.depth, []);
    columns.get(layer.depth).push(layer);
  }
  const depths = [...columns.keys()].sort((a, b) => a - b);
  const bh = boxHeight(g);
  let height = 0;
  const placed = new Map();
  depths.forEach((d, col) => {
    let y = 10;
    for (const layer of columns.get(d)) {
      const x = 20 + col * (BOX_W + GAP_X);
      placed.set(layer.name, { x, y, layer });
      y += HEAD_H + layer.clusters.length * (bh + BOX_GAP) + 24;
    }
    height = Math.max(height, y);
  });
  return { placed, width: 40 + depths.length * (BOX_W + GAP_X) - GAP_X, height, bh };
}

function drawGraph(g) {
  const root = document.getElementById("graph");
  root.textContent = "";
  const { placed, width, height, bh } = layout(g);
  const svg = el("svg:svg", { width, height, viewBox: `0 0 ${width} ${height}`, id: "network" }, root);
  const edgeLayer = el("svg:g", { id: "bundles" }, svg);
  const boxLayer = el("svg:g", { id: "layers" }, svg);
  for (const { x, y, layer } of placed.values()) drawLayer(boxLayer, g, layer, x, y, bh);
  for (const edge of g.edges) drawEdge(edgeLayer, edge, placed, bh);
}

// a name wider than its column would run into the next one: keep its end (a dotted name's most specific
// part) after an ellipsis, and the whole name as the hover title
function fitText(text, full, maxW) {
  el("svg:title", {}, text, full);
  const node = text.firstChild;
  if (text.getComputedTextLength() <= maxW) return;
  let keep = full.length;
  while (keep > 1) {
    node.textContent = `…${full.slice(full.length - --keep)}`;
    if (text.getComputedTextLength() <= maxW) break;
  }
}

function drawLayer(parent, g, layer, x, y, bh) {
  const col = el("svg:g", { class: "layer", "data-layer": layer.name }, parent);
  const title = el("svg:text", { x, y: y + 12, class: "layer-title" }, col, layer.name);
  fitText(title, layer.name, BOX_W + GAP_X - 12);
  const sub = `${layer.module_type || layer.kind} · ${layer.neurons} neurons · ${layer.k} clusters`;
  el("svg:text", { x, y: y + 27, class: "layer-sub" }, col, sub);
  // class names over the strips' columns: the order is the layer's, the same in every box
  const cw = (BOX_W - 2 * PAD) / layer.class_names.length;
  layer.class_names.forEach((name, i) => {
    const label = name.length > 4 ? name.slice(0, 4) : name;
    el("svg:text", { x: x + PAD + (i + 0.5) * cw, y: y + HEAD_H - 6, class: "class-label", "text-anchor": "middle" },
      col, label).appendChild(el("svg:title", {}, null, name));
  });
  let by = y + HEAD_H;
  for (const cl of layer.clusters) {
    drawBox(col, g, layer, cl, x, by, bh, cw);
    by += bh + BOX_GAP;
  }
}

function drawBox(parent, g, layer, cl, x, y, bh, cw) {
  const box = el("svg:g", { class: `box${cl.dead ? " dead" : ""}`, "data-layer": layer.name, "data-cluster": cl.id,
                            tabindex: 0, role: "button" }, parent);
  el("svg:rect", { class: "frame", x, y, width: BOX_W, height: bh, rx: 5 }, box);
  const label = cl.dead ? `dead: ${cl.size} neuron${cl.size === 1 ? "" : "s"}`
    : `cluster ${cl.id} · ${cl.size} neuron${cl.size === 1 ? "" : "s"}`;
  el("svg:text", { x: x + PAD, y: y + PAD + 10 }, box, label);
  const sy = y + PAD + 14;
  cl.row.forEach((v, i) => {
    const cell = el("svg:rect", { x: x + PAD + i * cw, y: sy, width: Math.max(cw - 0.5, 0.5), height: STRIP_H,
                                  fill: cl.dead ? "#dee2e6" : colour(v) }, box);
    cell.addEventListener("mousemove", (ev) => showTip(ev, `${layer.name} cluster ${cl.id}, class ` +
      `${layer.class_names[i]}: mean ${fmt(cl.raw[i])}`));
    cell.addEventListener("mouseleave", hideTip);
  });
  if (g.images.available && !cl.dead) {
    cl.top_items.slice(0, 3).forEach((item, i) => {
      el("svg:image", { href: api(`api/item/${item}.png`), x: x + PAD + i * (THUMB + 4), y: sy + STRIP_H + 4,
                        width: THUMB, height: THUMB, class: "thumb" }, box);
    });
  }
  state.boxes.set(`${layer.name}/${cl.id}`, { x, y, h: bh, box });
  const open = () => openCluster(layer.name, cl.id);
  box.addEventListener("click", open);
  box.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") open(); });
}

function drawEdge(parent, edge, placed, bh) {
  const src = placed.get(edge.source), dst = placed.get(edge.target);
  if (!src || !dst) return;
  if (!edge.bundles.length) {  // no weights (no checkpoint) or none found: the layers' order only
    const x1 = src.x + BOX_W, y1 = src.y + 20, x2 = dst.x, y2 = dst.y + 20;
    el("svg:path", { class: "chain", d: `M${x1},${y1} C${x1 + 40},${y1} ${x2 - 40},${y2} ${x2},${y2}` }, parent);
    return;
  }
  edge.bundles.forEach((bundle, b) => {
    const g = el("svg:g", { class: "bundle", "data-source": edge.source, "data-target": edge.target,
                            "data-bundle": b }, parent);
    const stroke = bundle.sign >= 0 ? "var(--pos)" : "var(--neg)";
    const ends = (layer, ids, side) => ids.map((id) => state.boxes.get(`${layer}/${id}`)).filter(Boolean)
      .map((p) => ({ id: p, x: side === "out" ? p.x + BOX_W : p.x, y: p.y + p.h / 2 }));
    const s = ends(edge.source, bundle.sources, "out"), t = ends(edge.target, bundle.targets, "in");
    if (!s.length || !t.length) return;
    // the bundle's waist: every pair's curve passes through it, so a bundle reads as one band
    const mx = (s[0].x + t[0].x) / 2;
    const my = ([...s, ...t].reduce((a, p) => a + p.y, 0)) / (s.length + t.length);
    const total = bundle.edges.reduce((a, e) => a + e[2], 0) || 1;
    const title = `${edge.source} → ${edge.target}: bundle of ${bundle.sources.length} × ` +
      `${bundle.targets.length} clusters, ${(100 * bundle.share).toFixed(1)} % of the strength, ` +
      (bundle.sign >= 0 ? "excitatory" : "inhibitory");
    for (const [si, ti, w] of bundle.edges) {
      const a = state.boxes.get(`${edge.source}/${si}`), z = state.boxes.get(`${edge.target}/${ti}`);
      if (!a || !z) continue;
      const x1 = a.x + BOX_W, y1 = a.y + a.h / 2, x2 = z.x, y2 = z.y + z.h / 2, dx = (mx - x1) / 2;
      const width = Math.max(0.6, MAX_BUNDLE_W * bundle.share * (w / total));
      const p = el("svg:path", { d: `M${x1},${y1} C${x1 + dx},${y1} ${mx - dx},${my} ${mx},${my} ` +
                                    `S${x2 - dx},${y2} ${x2},${y2}`,
                                 stroke, "stroke-width": width.toFixed(2), "stroke-opacity": 0.45 }, g);
      p.addEventListener("mousemove", (ev) => showTip(ev, title));
      p.addEventListener("mouseleave", hideTip);
    }
  });
}

function legend(g) {
  const box = document.getElementById("legend");
  box.textContent = "";
  el("h4", {}, box, "Cluster rows");
  const grad = el("div", { class: "row" }, box);
  el("span", { class: "swatch", style: `background: linear-gradient(90deg, ${colour(0)}, ${colour(1)})` }, grad);
  el("span", {}, grad, "mean activation per class (0 → the layer's largest)");
  const neg = el("div", { class: "row" }, box);
  el("span", { class: "swatch", style: `background: linear-gradient(90deg, ${colour(0)}, ${colour(-1)})` }, neg);
  el("span", {}, neg, "negative");
  const dead = el("div", { class: "row" }, box);
  el("span", { class: "swatch", style: "background: #eceef1; border: 1px dashed #999" }, dead);
  el("span", {}, dead, "dead neurons (never active)");
  el("h4", {}, box, "Bundles");
  if (g.edges.some((e) => e.bundles.length)) {
    for (const [c, text] of [["var(--pos)", "positive weights"], ["var(--neg)", "negative weights"]]) {
      const row = el("div", { class: "row" }, box);
      el("span", { class: "swatch", style: `background: ${c}; opacity: .6` }, row);
      el("span", {}, row, text);
    }
    el("p", { class: "muted" }, box, "width: share of the strength between two layers");
  } else {
    el("p", { class: "muted" }, box, "none: the layers' weights are needed (--checkpoint)");
  }
  el("p", { class: "muted" }, box, "Click a cluster for its neurons, top items and LDAM image.");
}

// a matrix as SVG: rows x columns, hover names the cell; scale: the largest |value| given (shared by a pair)
function matrixSVG(rows, rowNames, colNames, scale, { cell = 14, labelW = 44, what = "neuron" } = {}) {
  const w = labelW + colNames.length * cell + 2, h = 16 + rows.length * cell + 2;
  const svg = el("svg:svg", { width: w, height: h, class: "matrix" });
  colNames.forEach((name, j) => el("svg:text", { x: labelW + (j + 0.5) * cell, y: 11, "text-anchor": "middle" }, svg,
    name.length > 3 ? name.slice(0, 3) : name));
  rows.forEach((row, i) => {
    el("svg:text", { x: labelW - 4, y: 16 + i * cell + cell * 0.72, "text-anchor": "end" }, svg, rowNames[i]);
    row.forEach((v, j) => {
      const r = el("svg:rect", { x: labelW + j * cell, y: 16 + i * cell, width: cell - 1, height: cell - 1,
                                 fill: colour(scale > 0 ? v / scale : 0), class: "cell" }, svg);
      r.addEventListener("mousemove", (ev) => showTip(ev, `${what} ${rowNames[i]}, class ${colNames[j]}: ${fmt(v)}`));
      r.addEventListener("mouseleave", hideTip);
    });
  });
  return svg;
}

const maxAbs = (...ms) => Math.max(0, ...ms.flat(2).map(Math.abs));

function itemsView(parent, items, images) {
  const box = el("div", { class: "items" }, parent);
  if (!items.length) el("span", { class: "muted" }, box, "none: no item activates these neurons");
  for (const it of items) {
    const div = el("div", { class: `item${it.correct ? "" : " wrong"}`, "data-item": it.item_id }, box);
    if (images) el("img", { src: api(`api/item/${it.item_id}.png`), alt: `item ${it.item_id}` }, div);
    el("div", { class: "lp" }, div, `${it.label} → ${it.pred}`);
    el("div", { class: "muted" }, div, `#${it.item_id} ${it.split}`);
  }
}

async function openCluster(layer, cid) {
  const panel = document.getElementById("detail"), body = document.getElementById("detail-body");
  if (state.selected) state.selected.classList.remove("selected");
  state.selected = state.boxes.get(`${layer}/${cid}`)?.box || null;
  if (state.selected) state.selected.classList.add("selected");
  panel.hidden = false;
  body.textContent = "";
  el("p", { class: "muted" }, body, `loading ${layer} cluster ${cid}…`);
  let c;
  try {
    c = await getJSON(`api/cluster/${encodeURIComponent(layer)}/${cid}`);
  } catch (err) {
    body.textContent = "";
    el("p", { class: "message" }, body, String(err.message || err));
    return;
  }
  const g = state.graph;
  body.textContent = "";
  body.dataset.layer = layer;
  body.dataset.cluster = cid;
  el("h3", {}, body, `${layer} · ${c.dead ? "dead neurons" : `cluster ${cid}`} (${c.size} neurons)`);
  if (c.dead) el("p", { class: "muted" }, body, "These neurons were not active on any item: a cluster of their own.");
  el("h4", {}, body, "Neurons × classes (mean activation)");
  const names = c.neurons.map((n) => `n${n}`);
  const m = el("div", { id: "neuron-matrix" }, body);
  m.appendChild(matrixSVG(c.matrix, names, c.class_names, maxAbs(c.matrix), { cell: c.size > 40 ? 12 : 18 }));
  el("h4", {}, body, "Top items of the cluster (label → prediction; red: misclassified)");
  const top = el("div", { id: "top-items" }, body);
  itemsView(top, c.top_items, g.images.available);
  el("h4", {}, body, "LDAM average over the cluster's neurons");
  const ldam = el("div", { class: "ldam", id: "ldam" }, body);
  if (!g.ldam.available || c.dead) {  // dead neurons have no gradient to follow: the server refuses them
    el("span", { class: "muted" }, ldam, c.dead ? "none: these neurons were never active" : g.ldam.reason);
  } else {
    el("div", { class: "spinner" }, ldam);
    const note = el("span", { class: "muted" }, ldam, "sampling (a few seconds)…");
    const img = el("img", { alt: `LDAM of ${layer} cluster ${cid}` });
    img.onload = () => { ldam.querySelector(".spinner")?.remove(); note.textContent = "white: drives the cluster; "
      + "black: suppresses it"; ldam.prepend(img); };
    img.onerror = async () => {
      ldam.querySelector(".spinner")?.remove();
      const res = await fetch(api(`api/ldam/${encodeURIComponent(layer)}/${cid}.png`)).catch(() => null);
      note.textContent = res ? ((await res.json().catch(() => ({}))).detail || "no LDAM image") : "no LDAM image";
    };
    img.src = api(`api/ldam/${encodeURIComponent(layer)}/${cid}.png`);
  }
  const groups = Object.fromEntries(c.groups.map((gr) => [gr.name, gr]));
  for (const [a, b, title] of [["correct", "incorrect", "Correctly vs incorrectly classified items"],
                                ["train", "test", "Train vs test items"]]) {
    const pair = [groups[a], groups[b]].filter(Boolean);
    if (!pair.length) continue;
    el("h4", {}, body, title);
    const row = el("div", { class: "pair", "data-pair": `${a}-${b}` }, body);
    const scale = maxAbs(...pair.map((gr) => gr.matrix));
    for (const gr of pair) {
      const fig = el("figure", { "data-group": gr.name }, row);
      fig.appendChild(matrixSVG(gr.matrix, names, c.class_names, scale, { cell: 11 }));
      el("figcaption", {}, fig, `${gr.title}: ${gr.items.toLocaleString()} items`);
    }
  }
  el("h4", {}, body, "Each neuron's top items");
  const per = el("div", { id: "neuron-items" }, body);
  for (const n of c.neurons.slice(0, 24)) {
    const row = el("div", { class: "items", style: "align-items: center; margin: 2px 0" }, per);
    el("span", { style: "width: 44px", class: "muted" }, row, `n${n}`);
    for (const item of c.neuron_top_items[String(n)] || []) {
      if (g.images.available) el("img", { src: api(`api/item/${item}.png`), alt: `item ${item}`,
                                          style: "width: 28px; height: 28px; image-rendering: pixelated" }, row);
      else el("span", {}, row, `#${item}`);
    }
  }
  if (c.neurons.length > 24) el("p", { class: "muted" }, per, `… and ${c.neurons.length - 24} more neurons`);
  state.detail = c;
}

async function main() {
  document.getElementById("close").addEventListener("click", () => {
    document.getElementById("detail").hidden = true;
    if (state.selected) state.selected.classList.remove("selected");
  });
  try {
    state.graph = await getJSON("api/graph");
  } catch (err) {
    const msg = document.getElementById("message");
    msg.hidden = false;
    msg.textContent = `The explorer's data could not be loaded: ${err.message || err}`;
    return;
  }
  header(state.graph);
  legend(state.graph);
  drawGraph(state.graph);
  state.drawnAt = performance.now();  // time to first paint of the network: navigation start -> drawn
}

main();
