// The modeldx live dashboard: one WebSocket to the session, widgets on a draggable, resizable grid.
// Every URL is relative, so the page works behind a proxy or under any path prefix.
(() => {
  "use strict";
  const params = new URLSearchParams(location.search);
  const token = params.get("token");
  const model = { name: null, step: 0, paused: false, error: null, controls: {}, streams: {}, events: [],
                  snapshots: [] };
  const widgets = new Map();  // id -> {id, kind, name, el, body, update(), resize()}
  const $ = (id) => document.getElementById(id);
  let socket = null, grid = null, retry = 500, dirty = new Set(), frame = 0;
  const COLORS = ["#2f6fdb", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#0b7285", "#c2255c", "#5c940d",
                  "#364fc7", "#a61e4d"];
  // the page keeps as many events as the server does: a long session must not grow the page
  const MAX_EVENTS = 500;
  // while a slider is dragged or an arrow key held, at most one control message per control per 100 ms
  const THROTTLE_MS = 100;
  const MARKED = new Set(["control", "restore", "error"]);  // the events charts draw a marker for

  // ----- connection
  function socketUrl() {
    const url = new URL("ws", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    if (token) url.searchParams.set("token", token);
    return url.toString();
  }

  function connect() {
    socket = new WebSocket(socketUrl());
    socket.onopen = () => { retry = 500; };
    socket.onmessage = (e) => receive(JSON.parse(e.data));
    socket.onclose = () => {
      setStatus("offline", "reconnecting…");
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 8000);
    };
  }

  function send(message) {
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify(message));
    return true;
  }

  const throttles = new Map();  // control name -> {last, timer, value, sent, history}
  function sendControl(name, value) {
    // the first value goes at once, later ones at most every THROTTLE_MS; the last one is always sent
    let t = throttles.get(name);
    if (!t) throttles.set(name, t = { last: -Infinity, timer: 0, value: undefined, sent: undefined, history: [],
                                      unsent: false });
    t.value = value;
    const flush = () => {
      clearTimeout(t.timer); t.timer = 0;
      if (t.value === t.sent) return;  // a drag's end repeats the value its last move sent
      // offline (reconnecting): the value goes out once the same session's state is back
      if (!send({ type: "control", name, value: t.value })) { t.unsent = true; return; }
      t.unsent = false;
      t.last = performance.now(); t.sent = t.value;
      t.history.push(t.value);
      if (t.history.length > 1000) t.history.shift();
    };
    const wait = t.last + THROTTLE_MS - performance.now();
    if (wait <= 0) flush();
    else if (!t.timer) t.timer = setTimeout(flush, wait);
  }

  function receive(msg) {
    if (msg.type === "state") loadState(msg);
    else if (msg.type === "updates") applyUpdates(msg);
    else if (msg.type === "error") showMessage(msg.message);
  }

  // ----- the session's data
  function scalarStream(st) {
    return { kind: "scalar", steps: st.step.slice(), values: st.value.slice(),
             lows: (st.low || st.value).slice(), highs: (st.high || st.value).slice() };
  }

  function loadState(s) {
    // a first load, or a reconnect to another session (a restarted server): build its own layout
    const rebuild = model.name !== s.name;
    // the same name may be another run (the script started again): only the same instance gets offline values
    const same = !rebuild && model.instance === s.instance;
    model.instance = s.instance;
    model.name = s.name; model.step = s.step; model.paused = s.paused; model.error = s.error;
    model.events = s.events.slice(-MAX_EVENTS);
    model.snapshots = s.snapshots.slice();  // the server's list replaces ours (reconnects included)
    model.controls = Object.fromEntries(s.controls.map((c) => [c.name, c]));
    model.streams = {};
    for (const [name, st] of Object.entries(s.streams)) {
      model.streams[name] = st.kind === "scalar" ? scalarStream(st)
        : { kind: st.kind, step: st.latest ? st.latest[0] : null, value: st.latest ? st.latest[1] : null };
    }
    document.title = `modeldx live: ${s.name}`;
    $("title").textContent = `modeldx live · ${s.name}`;
    if (rebuild) {
      for (const id of [...widgets.keys()]) removeWidget(id, false);
      restoreLayout();
    } else addNewStreams(Object.keys(model.streams));
    for (const w of widgets.values()) markDirty(w.id);
    refreshHeader();
    refreshMenu();
    // what the user set while offline is sent now, to the session it was meant for only
    for (const [name, t] of throttles) {
      if (!t.unsent) continue;
      t.unsent = false;
      if (same && model.controls[name]) sendControl(name, t.value);
    }
  }

  function applyUpdates(msg) {
    model.step = msg.step; model.paused = msg.paused; model.error = msg.error;
    const fresh = [];
    let events = false;
    for (const u of msg.updates) {
      if (u.type === "point") {
        let st = model.streams[u.stream];
        if (!st || st.kind !== "scalar") {
          st = model.streams[u.stream] = { kind: "scalar", steps: [], values: [], lows: [], highs: [] };
          fresh.push(u.stream);
        }
        // a point can be both in the state sent on connect and in the first push: keep it once
        if (st.steps.length && u.step <= st.steps[st.steps.length - 1]) continue;
        st.steps.push(u.step); st.values.push(u.value);
        st.lows.push(u.low ?? u.value); st.highs.push(u.high ?? u.value);
        markDirty(`stream:${u.stream}`);
      } else if (u.type === "value") {
        if (!model.streams[u.stream]) fresh.push(u.stream);
        model.streams[u.stream] = { kind: u.kind, step: u.step, value: u.value };
        markDirty(`stream:${u.stream}`);
      } else if (u.type === "event") {
        applyEvent(u);
        events = true;
      }
    }
    if (model.events.length > MAX_EVENTS) model.events.splice(0, model.events.length - MAX_EVENTS);
    if (events) for (const w of widgets.values()) if (w.kind === "stream") markDirty(w.id);
    refreshHeader();
    if (fresh.length) { addNewStreams(fresh); refreshMenu(); }
  }

  function applyEvent(u) {
    model.events.push(u);
    const setControl = (name, value, echo) => {
      if (!model.controls[name]) return;
      const t = throttles.get(name);
      if (echo && t && t.history.length) {
        // our own earlier values come back in order, late on a loaded machine: only the latest
        // we sent (with none waiting to go) is the value in force; another browser's value is not ours
        const i = t.history.lastIndexOf(value);
        if (i >= 0 && (i < t.history.length - 1 || t.timer)) return;
        if (i >= 0) t.history = [];
      }
      model.controls[name].value = value;
      if (t) { t.sent = undefined; if (!echo) t.history = []; }  // sending ours again is a change
      markDirty(`control:${name}`);
    };
    // an event's value is the value in force: a second browser and a restore stay in sync
    if (u.kind === "control") setControl(u.name, u.value, true);
    if (u.kind === "restore" && u.value && u.value.controls) {
      for (const [name, value] of Object.entries(u.value.controls)) setControl(name, value);
    }
    if (u.kind === "snapshot") {
      if (!model.snapshots.includes(u.name)) model.snapshots.push(u.name);
      const dropped = u.value && u.value.dropped;
      if (dropped) model.snapshots = model.snapshots.filter((n) => n !== dropped);
    }
    if (u.kind === "error" && !model.error) model.error = `${u.name}: ${lastLine(u.value)}`;
  }

  const lastLine = (text) => String(text ?? "").trim().split("\n").pop();

  function markDirty(id) {
    if (!widgets.has(id)) return;
    dirty.add(id);
    if (!frame) frame = requestAnimationFrame(render);
  }

  function render() {
    frame = 0;
    for (const id of dirty) { const w = widgets.get(id); if (w) w.update(); }
    dirty.clear();
  }

  // ----- header
  function setStatus(cls, text) { const s = $("status"); s.className = `status ${cls}`; s.textContent = text; }

  function refreshHeader() {
    $("step").textContent = model.step.toLocaleString();
    if (model.error) setStatus("error", "stopped by an error");
    else setStatus(model.paused ? "paused" : "running", model.paused ? "paused" : "running");
    $("pause").textContent = model.paused ? "Resume" : "Pause";
    const sel = $("snapshots");
    const names = model.snapshots;
    const shown = [...sel.options].map((o) => o.value).filter((v) => v !== "");
    if (shown.length !== names.length || names.some((n, i) => shown[i] !== n)) {
      const chosen = sel.value;
      sel.innerHTML = "";
      if (!names.length) sel.add(new Option("no snapshots", ""));
      for (const n of names) sel.add(new Option(n, n));
      if (names.length) sel.value = names.includes(chosen) ? chosen : names[names.length - 1];
    }
    // a session error stays in view until the session runs again
    const banner = $("error-banner");
    banner.hidden = !model.error;
    if (model.error) $("error-text").textContent = model.error;
  }

  let messageTimer = 0;
  function showMessage(text, ms = 8000) {
    const box = $("message");
    box.textContent = text; box.hidden = false;
    clearTimeout(messageTimer);
    if (ms) messageTimer = setTimeout(() => { box.hidden = true; }, ms);
  }

  // ----- layout: widgets on the grid, kept across reloads
  const layoutKey = () => `modeldx-layout:${model.name}`;
  const removedKey = () => `modeldx-removed:${model.name}`;  // widgets the user took off

  function removedIds() {
    try { return new Set(JSON.parse(localStorage.getItem(removedKey()) || "[]")); } catch (e) { return new Set(); }
  }

  function setRemoved(id, removed) {
    const ids = removedIds();
    if (removed) ids.add(id); else ids.delete(id);
    localStorage.setItem(removedKey(), JSON.stringify([...ids]));
  }

  function saveLayout() {
    const items = [...widgets.values()].map((w) => {
      const n = w.el.gridstackNode || {};
      return { kind: w.kind, name: w.name, x: n.x, y: n.y, w: n.w, h: n.h, ...(w.opts ? { opts: w.opts } : {}) };
    });
    localStorage.setItem(layoutKey(), JSON.stringify(items));
  }

  function restoreLayout() {
    let items = null;
    try { items = JSON.parse(localStorage.getItem(layoutKey()) || "null"); } catch (e) { items = null; }
    if (!Array.isArray(items)) items = defaultLayout();
    grid.batchUpdate();
    for (const it of items) addWidget(it.kind, it.name, it);
    grid.batchUpdate(false);
    addNewStreams(Object.keys(model.streams));  // streams the saved layout has never seen
    saveLayout();
  }

  function addNewStreams(names) {
    // a stream that appears gets a widget, unless the user removed it
    const removed = removedIds();
    let added = false;
    for (const n of names) {
      if (widgets.has(`stream:${n}`) || removed.has(`stream:${n}`)) continue;
      const st = model.streams[n];
      addWidget("stream", n, { w: 6, h: st && st.kind === "images" ? 6 : 4 });
      added = true;
    }
    if (added) saveLayout();
  }

  function defaultLayout() {
    const items = Object.keys(model.controls).map((n) => ({ kind: "control", name: n, w: 3, h: 2 }));
    for (const [n, st] of Object.entries(model.streams)) {
      items.push({ kind: "stream", name: n, w: 6, h: st.kind === "images" ? 6 : 4 });
    }
    return items;
  }

  function headButton(head, before, text, title, onclick) {
    const b = document.createElement("button");
    b.className = "tool"; b.title = title; b.textContent = text; b.onclick = onclick;
    head.insertBefore(b, before);
    return b;
  }

  function addWidget(kind, name, pos = {}) {
    const id = `${kind}:${name}`;
    if (widgets.has(id)) return widgets.get(id);
    const el = document.createElement("div");
    el.className = "grid-stack-item";
    el.dataset.widget = id;
    const content = document.createElement("div");
    content.className = "grid-stack-item-content";
    const head = document.createElement("div");
    head.className = "widget-head";
    const title = document.createElement("span");
    title.className = "title";
    title.textContent = name;
    const info = document.createElement("span");
    info.className = "info";
    const close = document.createElement("button");
    close.className = "close"; close.title = "Remove"; close.textContent = "×";
    head.append(title, info, close);
    const body = document.createElement("div");
    body.className = "widget-body";
    content.append(head, body);
    el.append(content);
    const w = kind === "control" ? controlWidget(name, body) : streamWidget(name, body, info, pos.opts);
    const sub = kind === "stream" && model.streams[name] ? model.streams[name].kind : null;
    if (sub === "images") {
      headButton(head, close, "PNG", "Save as PNG", () => {
        const canvas = body.querySelector("canvas"), a = document.createElement("a");
        a.href = canvas.toDataURL("image/png"); a.download = `${fileName(name)}-step${model.step}.png`;
        a.click();
      }).dataset.png = name;
    }
    if (CSV[sub]) {
      headButton(head, close, "CSV", "Download the data as CSV", () => {
        const [header, rows] = CSV[sub](model.streams[name]);
        download(`${fileName(name)}-step${model.step}.csv`, [header, ...rows].map((r) => r.join(",")).join("\n") + "\n");
      }).dataset.csv = name;
    }
    Object.assign(w, { id, kind, name, el, body });
    widgets.set(id, w);
    grid.el.appendChild(el);
    grid.makeWidget(el, { x: pos.x, y: pos.y, w: pos.w || (kind === "control" ? 3 : 6),
                          h: pos.h || (kind === "control" ? 2 : 4), autoPosition: pos.x === undefined });
    close.onclick = () => removeWidget(id, true);
    new ResizeObserver(() => w.resize()).observe(body);
    markDirty(id);
    return w;
  }

  function removeWidget(id, byUser) {
    const w = widgets.get(id);
    if (!w) return;
    if (w.destroy) w.destroy();
    grid.removeWidget(w.el);
    widgets.delete(id);
    if (byUser) { setRemoved(id, true); saveLayout(); refreshMenu(); }
  }

  function refreshMenu() {
    const menu = $("add-menu");
    menu.innerHTML = "";
    const entries = [
      ...Object.keys(model.streams).map((n) => ["stream", n, model.streams[n].kind]),
      ...Object.keys(model.controls).map((n) => ["control", n, model.controls[n].kind]),
    ].filter(([k, n]) => !widgets.has(`${k}:${n}`));
    if (!entries.length) {
      const empty = document.createElement("div"); empty.className = "empty";
      empty.textContent = "every stream and control is on the dashboard";
      menu.append(empty);
    }
    for (const [kind, name, sub] of entries) {
      const b = document.createElement("button");
      b.textContent = name;
      b.dataset.add = `${kind}:${name}`;
      const k = document.createElement("span"); k.className = "kind"; k.textContent = sub;
      b.append(k);
      b.onclick = () => {
        setRemoved(`${kind}:${name}`, false);
        addWidget(kind, name); saveLayout(); refreshMenu(); menu.hidden = true;
      };
      menu.append(b);
    }
  }

  // ----- export
  const fileName = (name) => name.replace(/\W+/g, "-");
  const CSV = {  // stream kind -> (stream) => [header, rows]
    scalar: (st) => [["step", "value", "min", "max"],
                     st.steps.map((s, i) => [s, st.values[i], st.lows[i], st.highs[i]])],
    histogram: (st) => {
      const v = st.value;
      if (v && v.labels) return [[v.x_title || "label", v.y_title || "count"], v.counts.map((c, i) => [v.labels[i], c])];
      return [["low", "high", "count"], v ? v.counts.map((c, i) => [v.edges[i], v.edges[i + 1], c]) : []];
    },
    silhouette: (st) => [["item", "cluster", "score"],
                         st.value ? st.value.score.map((s, i) => [i, st.value.cluster[i], s]) : []],
  };

  function download(filename, text) {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
    a.download = filename;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }

  // ----- control widgets
  function controlWidget(name, body) {
    const wrap = document.createElement("div");
    wrap.className = "control";
    body.append(wrap);
    const c = model.controls[name];
    if (!c) { wrap.textContent = "not in this session"; return { update() {}, resize() {} }; }
    if (c.kind === "slider") {
      const label = document.createElement("div");
      const value = document.createElement("span"); value.className = "value";
      label.append(value);
      const input = document.createElement("input");
      Object.assign(input, { type: "range", min: 0, max: 1000, step: 1 });
      input.setAttribute("aria-label", name);
      const bounds = document.createElement("div"); bounds.className = "bounds";
      bounds.innerHTML = `<span>${fmt(c.low)}</span><span>${c.log ? "log scale" : ""}</span><span>${fmt(c.high)}</span>`;
      wrap.append(label, input, bounds);
      const toPos = (v) => c.log ? 1000 * Math.log(v / c.low) / Math.log(c.high / c.low)
                                 : 1000 * (v - c.low) / (c.high - c.low);
      const toValue = (p) => c.log ? c.low * Math.pow(c.high / c.low, p / 1000) : c.low + (c.high - c.low) * p / 1000;
      const clamp = (v) => Math.min(c.high, Math.max(c.low, v));
      // while the user moves it, the server's events for earlier values of the drag (or held key)
      // must not pull it back: it follows the server again a moment after the last move
      let touched = -Infinity, later = 0;
      const HOLD_MS = 1000;
      // a drag (or a held arrow key) sends while it moves, throttled; its end sends the final value
      input.addEventListener("input", () => {
        touched = performance.now();
        const v = clamp(toValue(+input.value));
        value.textContent = fmt(v);
        sendControl(name, v);
      });
      input.addEventListener("change", () => { touched = performance.now(); sendControl(name, clamp(toValue(+input.value))); });
      return { update() {
                 const wait = touched + HOLD_MS - performance.now();
                 if (wait > 0) {
                   if (!later) later = setTimeout(() => { later = 0; markDirty(`control:${name}`); }, wait);
                   return;
                 }
                 input.value = toPos(model.controls[name].value);
                 value.textContent = fmt(model.controls[name].value);
               },
               resize() {} };
    }
    if (c.kind === "choice") {
      const select = document.createElement("select");
      select.setAttribute("aria-label", name);
      for (const o of c.options) select.add(new Option(String(o), JSON.stringify(o)));
      select.onchange = () => sendControl(name, JSON.parse(select.value));
      wrap.append(select);
      return { update() { select.value = JSON.stringify(model.controls[name].value); }, resize() {} };
    }
    const button = document.createElement("button");
    button.textContent = name;
    button.onclick = () => send({ type: "control", name });
    wrap.append(button);
    return { update() {}, resize() {} };
  }

  // ----- stream widgets
  function streamWidget(name, body, info, opts) {
    const st = model.streams[name];
    const kind = st ? st.kind : "scalar";
    if (kind === "scalar") return chartWidget(name, body, info, opts);
    if (kind === "table") return tableWidget(name, body, info);
    return canvasWidget(name, body, info, { histogram: drawHistogram, images: drawImages,
                                            silhouette: drawSilhouette, matrix: drawMatrix,
                                            scatter: drawScatter }[kind]);
  }

  function smoothed(values, weight) {
    // TensorBoard's smoothing: an exponential moving average, debiased so that it starts at the data
    const out = new Array(values.length);
    let last = 0, n = 0;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v === null || !Number.isFinite(v)) { out[i] = v; continue; }
      last = last * weight + (1 - weight) * v; n++;
      out[i] = weight ? last / (1 - Math.pow(weight, n)) : v;
    }
    return out;
  }

  function drawMarkers(u, drawn) {
    // one pass over the events, whatever their number: cull those outside the x range, merge markers
    // closer than a few pixels into one (with a count), one stroke per colour, labels left-aligned
    // from their marker, skipped where they would overlap the previous label, kept inside the plot
    const dpr = devicePixelRatio, { left, top, width, height } = u.bbox, right = left + width;
    const lo = u.scales.x.min, hi = u.scales.x.max, near = 4 * dpr;
    const groups = [];
    let sorted = true, prev = -Infinity;
    for (const e of model.events) {
      if (e.step === null || e.step === undefined || !MARKED.has(e.kind) || e.step < lo || e.step > hi) continue;
      if (e.step < prev) sorted = false;
      prev = e.step;
      groups.push({ x: u.valToPos(e.step, "x", true), count: 1, last: e, error: e.kind === "error" });
    }
    if (!sorted) groups.sort((a, b) => a.x - b.x);
    const merged = [];
    for (const g of groups) {
      const m = merged[merged.length - 1];
      if (m && g.x - m.x < near) { m.count++; m.last = g.last; m.error = m.error || g.error; } else merged.push(g);
    }
    const ctx = u.ctx;
    ctx.save();
    ctx.beginPath(); ctx.rect(left, top, width, height); ctx.clip();
    ctx.setLineDash([4 * dpr, 3 * dpr]);
    for (const error of [false, true]) {
      ctx.strokeStyle = error ? "#c92a2a" : "#e67700";
      ctx.beginPath();
      for (const m of merged) if (m.error === error) { ctx.moveTo(m.x, top); ctx.lineTo(m.x, top + height); }
      ctx.stroke();
    }
    ctx.font = `${11 * dpr}px system-ui`;
    ctx.textAlign = "left"; ctx.textBaseline = "top";
    const labels = [];
    let end = -Infinity;
    for (const m of merged) {
      const e = m.last;
      let text = e.kind === "control" ? `${e.name}=${fmt(e.value)}` : e.kind;
      if (m.count > 1) text += ` (+${m.count - 1})`;
      const wide = ctx.measureText(text).width;
      const x = Math.max(left, Math.min(m.x + 3 * dpr, right - wide));
      if (x < end + 4 * dpr || wide > width) continue;
      ctx.fillStyle = "rgba(255,255,255,0.85)";  // legible over dense markers
      ctx.fillRect(x - 1, top + 1, wide + 2, 14 * dpr);
      ctx.fillStyle = "#8a5a00";
      ctx.fillText(text, x, top + 2 * dpr);
      labels.push({ text, x, width: wide });
      end = x + wide;
    }
    ctx.restore();
    Object.assign(drawn, { markers: merged.length, labels, left, right });
  }

  function chartWidget(name, body, info, opts) {
    // per chart, kept in the layout: log-scale y and the smoothing weight
    const o = { log: false, smooth: 0, ...(opts || {}) };
    body.classList.add("chart");
    const bar = document.createElement("div"); bar.className = "chart-bar";
    const readout = document.createElement("span"); readout.className = "readout";
    const smoothLabel = document.createElement("label"); smoothLabel.title = "Exponential moving average, as in TensorBoard";
    const smoothInput = document.createElement("input");
    Object.assign(smoothInput, { type: "range", min: 0, max: 0.99, step: 0.01, value: o.smooth });
    smoothInput.className = "smooth"; smoothInput.setAttribute("aria-label", `smoothing of ${name}`);
    const smoothValue = document.createElement("span"); smoothValue.textContent = fmt(o.smooth);
    smoothLabel.append("smooth ", smoothInput, smoothValue);
    const logButton = document.createElement("button");
    logButton.className = "log"; logButton.textContent = "log y"; logButton.title = "Logarithmic y axis";
    logButton.setAttribute("aria-pressed", String(o.log));
    bar.append(readout, smoothLabel, logButton);
    const holder = document.createElement("div"); holder.className = "plot";
    body.append(bar, holder);
    let plot = null, zoom = null;
    const drawn = {};
    const widget = { opts: o, drawn };

    function data() {
      const st = model.streams[name];
      if (!st) return [[], [], []];
      // copies: the stream's arrays change in place (new points, downsampling), and the three
      // series the chart holds must stay one consistent snapshot until the next setData
      // (a log axis cannot show values <= 0: leave gaps there)
      const raw = o.log ? st.values.map((v) => (v > 0 ? v : null)) : st.values.slice();
      return [st.steps.slice(), raw, o.smooth ? smoothed(raw, o.smooth) : raw.map(() => null)];
    }
    function make() {
      const { width, height } = size(holder);
      if (plot) plot.destroy();
      const faint = o.smooth > 0;
      plot = new uPlot({
        width, height, legend: { show: false },
        plugins: [{ hooks: { draw: [(u) => drawMarkers(u, drawn)] } }],
        cursor: { drag: { x: true, y: false, setScale: false } },
        scales: { x: { time: false }, y: o.log ? { distr: 3, log: 10 } : {} },
        axes: [{ label: "step", labelSize: 18, size: 36 }, { values: (u, splits) => tickLabels(splits), size: 56 }],
        series: [{}, { label: name, stroke: faint ? "rgba(47,111,219,0.35)" : COLORS[0], width: faint ? 1 : 1.5,
                       points: { show: false } },
                 { label: `${name} (smoothed)`, stroke: COLORS[0], width: 1.5, show: faint, points: { show: false } }],
        hooks: {
          setSelect: [(u) => {
            // a drag zooms the x axis; the zoom is ours to keep, so new points (setData) do not reset it
            if (u.select.width < 3) return;
            zoom = { min: u.posToVal(u.select.left, "x"), max: u.posToVal(u.select.left + u.select.width, "x") };
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            u.setScale("x", zoom);
          }],
          setCursor: [(u) => {
            const i = u.cursor.idx;
            if (i === null || i === undefined || !u.data[0].length) { readout.textContent = ""; return; }
            let text = `step ${u.data[0][i]}: ${fmt(model.streams[name].values[i])}`;
            if (o.smooth) text += ` (smoothed ${fmt(u.data[2][i])})`;
            readout.textContent = text;
          }],
        },
      }, data(), holder);
      // uPlot's double click shows all the data again: forget the zoom
      plot.over.addEventListener("dblclick", () => { zoom = null; plot.setData(data()); });
      if (zoom) plot.setScale("x", zoom);
    }
    smoothInput.addEventListener("input", () => {
      o.smooth = +smoothInput.value; smoothValue.textContent = fmt(o.smooth); make(); saveLayout();
    });
    logButton.onclick = () => {
      o.log = !o.log; logButton.setAttribute("aria-pressed", String(o.log)); make(); saveLayout();
    };
    return Object.assign(widget, {
      update() {
        if (!plot) make();
        else {
          plot.setData(data());
          if (zoom) plot.setScale("x", zoom);
        }
        const st = model.streams[name];
        if (st && st.values.length) info.textContent = fmt(st.values[st.values.length - 1]);
      },
      resize() { if (plot) { const { width, height } = size(holder); plot.setSize({ width, height }); } },
      destroy() { if (plot) plot.destroy(); },
      plot: () => plot,
      zoom: () => zoom,
    });
  }

  function size(el) {
    return { width: Math.max(el.clientWidth - 8, 50), height: Math.max(el.clientHeight - 4, 40) };
  }

  function canvasWidget(name, body, info, draw) {
    const canvas = document.createElement("canvas");
    canvas.className = "plain";
    canvas._stream = name;
    body.append(canvas);
    const fit = () => {
      canvas.width = Math.max(1, body.clientWidth * devicePixelRatio);
      canvas.height = Math.max(1, (body.clientHeight - 8) * devicePixelRatio);
    };
    return {
      update() {
        const st = model.streams[name];
        if (!st || st.value === null) return;
        if (canvas.width !== Math.floor(body.clientWidth * devicePixelRatio)) fit();
        const ctx = canvas.getContext("2d");
        ctx.clearRect(0, 0, canvas.width, canvas.height);
        info.textContent = `step ${st.step}`;
        (draw || drawUnknown)(ctx, canvas, st.value, info);
      },
      resize() { fit(); markDirty(`stream:${name}`); },
    };
  }

  function axes(ctx, canvas, xLabel, yLabel, left = 44) {
    // the plot area inside a canvas, with room for tick values and both axis labels; draws the labels
    const d = devicePixelRatio;
    const area = { left: left * d, top: 8 * d, right: canvas.width - 10 * d, bottom: canvas.height - 30 * d };
    ctx.save();
    ctx.fillStyle = "#6b7380"; ctx.font = `${11 * d}px system-ui`;
    ctx.textAlign = "center"; ctx.textBaseline = "bottom";
    ctx.fillText(xLabel, (area.left + area.right) / 2, canvas.height - 1 * d);
    ctx.translate(12 * d, (area.top + area.bottom) / 2); ctx.rotate(-Math.PI / 2);
    ctx.textBaseline = "middle";
    ctx.fillText(yLabel, 0, 0);
    ctx.restore();
    ctx.fillStyle = "#9aa3ae";
    ctx.fillRect(area.left, area.bottom, area.right - area.left, 1);
    ctx.fillRect(area.left - 1, area.top, 1, area.bottom - area.top);
    return area;
  }

  function tick(ctx, text, x, y, align, baseline) {
    ctx.save();
    ctx.fillStyle = "#6b7380"; ctx.font = `${10 * devicePixelRatio}px system-ui`;
    ctx.textAlign = align; ctx.textBaseline = baseline;
    ctx.fillText(text, x, y);
    ctx.restore();
  }

  function drawHistogram(ctx, canvas, v) {
    // bins between edges, or with labels one bar per category (LDA's topics and their shares)
    const d = devicePixelRatio, a = axes(ctx, canvas, v.x_title || "value", v.y_title || "count", 54);
    // the y axis up to the tallest bar rounded up to two significant digits: short tick labels
    const n = v.counts.length, top = Math.max(...v.counts, 0);
    const mag = top > 0 ? Math.pow(10, Math.floor(Math.log10(top)) - 1) : 1;
    const max = top > 0 ? Math.ceil(top / mag - 1e-9) * mag : 1;
    const w = (a.right - a.left) / n, h = a.bottom - a.top;
    ctx.fillStyle = COLORS[0];
    v.counts.forEach((c, i) => {
      const bh = h * c / max;
      ctx.fillRect(a.left + i * w + 1, a.bottom - bh, Math.max(w - 2, 1), bh);
    });
    if (v.labels) {
      // every label that fits (about 5 characters' width each), the first and last always
      const every = Math.max(1, Math.ceil(30 * d / w));
      v.labels.forEach((l, i) => {
        if (i % every === 0 || i === n - 1) tick(ctx, l, a.left + (i + 0.5) * w, a.bottom + 3 * d, "center", "top");
      });
    } else {
      tick(ctx, fmt(v.edges[0]), a.left, a.bottom + 3 * d, "left", "top");
      tick(ctx, fmt(v.edges[v.edges.length - 1]), a.right, a.bottom + 3 * d, "right", "top");
    }
    const [half, full] = tickLabels([max / 2, max]);
    tick(ctx, full, a.left - 4 * d, a.top, "right", "top");
    tick(ctx, half, a.left - 4 * d, a.top + h / 2, "right", "middle");
    ctx.fillStyle = "#e3e6ea"; ctx.fillRect(a.left, a.top + h / 2, a.right - a.left, 1);
    tick(ctx, "0", a.left - 4 * d, a.bottom, "right", "bottom");
  }

  function drawImages(ctx, canvas, v) {
    const [n, h, w] = v.shape, channels = v.shape.length === 4 ? v.shape[3] : 1;
    const bytes = Uint8Array.from(atob(v.data), (ch) => ch.charCodeAt(0));
    const cols = v.columns, rows = Math.ceil(n / cols);
    const head = v.column_names ? 14 * devicePixelRatio : 0;  // a row of column names above the grid
    const cell = Math.floor(Math.min(canvas.width / cols, (canvas.height - head) / rows));
    canvas.dataset.columns = v.column_names ? v.column_names.join(",") : "";
    if (cell < 1) return;
    const img = new ImageData(w, h), tile = document.createElement("canvas");
    tile.width = w; tile.height = h;
    const tctx = tile.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    for (let i = 0; i < n; i++) {
      for (let p = 0; p < w * h; p++) {
        const o = (i * w * h + p) * channels;
        img.data[4 * p] = bytes[o];
        img.data[4 * p + 1] = bytes[o + (channels === 3 ? 1 : 0)];
        img.data[4 * p + 2] = bytes[o + (channels === 3 ? 2 : 0)];
        img.data[4 * p + 3] = 255;
      }
      tctx.putImageData(img, 0, 0);
      ctx.drawImage(tile, (i % cols) * cell + 1, head + Math.floor(i / cols) * cell + 1, cell - 2, cell - 2);
    }
    if (v.column_names) {
      ctx.save();
      ctx.fillStyle = "#333"; ctx.font = `${Math.min(11 * devicePixelRatio, cell / 4)}px system-ui`;
      ctx.textAlign = "center"; ctx.textBaseline = "bottom";
      v.column_names.forEach((c, k) => ctx.fillText(c, k * cell + cell / 2, head - 1, cell - 2));
      ctx.restore();
    }
  }

  function drawSilhouette(ctx, canvas, v, info) {
    // thesis eq. 2.2: one horizontal line per item, grouped by cluster, sorted within it
    const d = devicePixelRatio, a = axes(ctx, canvas, "silhouette score", "item");
    const n = v.score.length, gap = 2, clusters = new Set(v.cluster).size;
    // one linear x scale from the lowest score (at most -0.25, so that zero is in view) to 1
    const lo = Math.min(-0.25, Math.floor(Math.min(...v.score, 0) * 4) / 4);
    const sx = (s) => a.left + (a.right - a.left) * (s - lo) / (1 - lo), zero = sx(0);
    const rowH = (a.bottom - a.top - gap * clusters) / Math.max(n, 1);
    let y = a.top, prev = null;
    for (let i = 0; i < n; i++) {
      if (prev !== null && v.cluster[i] !== prev) y += gap;
      prev = v.cluster[i];
      ctx.fillStyle = COLORS[v.cluster[i] % COLORS.length];
      const x = sx(v.score[i]);
      ctx.fillRect(Math.min(x, zero), y, Math.max(Math.abs(x - zero), 0.5), Math.max(rowH, 0.5));
      y += rowH;
    }
    ctx.fillStyle = "#333"; ctx.fillRect(zero, a.top, 1, a.bottom - a.top);
    for (const s of [lo, 0, 0.5, 1]) {
      tick(ctx, fmt(s), sx(s), a.bottom + 3 * d, s === lo ? "left" : s === 1 ? "right" : "center", "top");
    }
    tick(ctx, "0", a.left - 4 * d, a.top, "right", "top");
    tick(ctx, String(n), a.left - 4 * d, a.bottom, "right", "bottom");
    info.textContent = `mean ${v.mean.toFixed(3)}`;
  }

  function drawMatrix(ctx, canvas, v) {
    // cells coloured from the lowest (white) to the highest value (blue); row and column names
    // around it where given, and a footer with the note and the colour scale's two ends
    const d = devicePixelRatio, rows = v.values.length, cols = rows ? v.values[0].length : 0;
    const flat = v.values.flat(), lo = Math.min(...flat), hi = Math.max(...flat);
    const colour = (t) => `rgb(${255 - 200 * t}, ${255 - 140 * t}, 255)`;
    const named = !!(v.rows || v.columns);
    const left = v.rows ? 22 * d : 0, topM = v.columns ? 14 * d : 0, foot = 16 * d;
    const cw = (canvas.width - left) / Math.max(cols, 1), ch = (canvas.height - topM - foot) / Math.max(rows, 1);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) {
      const t = hi > lo ? (v.values[r][c] - lo) / (hi - lo) : 0;
      ctx.fillStyle = colour(t);
      ctx.fillRect(left + c * cw, topM + r * ch, Math.ceil(cw), Math.ceil(ch));
    }
    if (named) {
      const font = Math.min(10 * d, Math.max(cw, ch) * 0.8);
      const everyC = Math.max(1, Math.ceil(font * 2 / cw)), everyR = Math.max(1, Math.ceil(font * 1.2 / ch));
      (v.columns || []).forEach((c, i) => {
        if (i % everyC === 0) tick(ctx, String(c), left + (i + 0.5) * cw, topM - 2 * d, "center", "bottom");
      });
      (v.rows || []).forEach((r, i) => {
        if (i % everyR === 0) tick(ctx, String(r), left - 3 * d, topM + (i + 0.5) * ch, "right", "middle");
      });
    }
    const y = canvas.height - foot / 2, [l, h] = tickLabels([lo, hi]);
    if (v.note) tick(ctx, v.note, left, y, "left", "middle");
    const bar = 60 * d, right = canvas.width - 4 * d;
    tick(ctx, h, right, y, "right", "middle");
    const hiW = (h.length + 1) * 6 * d;
    for (let i = 0; i < bar; i++) { ctx.fillStyle = colour(i / bar); ctx.fillRect(right - hiW - bar + i, y - 4 * d, 1, 8 * d); }
    tick(ctx, l, right - hiW - bar - 3 * d, y, "right", "middle");
  }

  function drawUnknown(ctx, canvas) {
    ctx.fillStyle = "#6b7380"; ctx.fillText("no view for this stream", 10, 20);
  }

  function tableWidget(name, body, info) {
    const holder = document.createElement("div");
    holder.style.overflow = "auto"; holder.style.height = "100%";
    body.append(holder);
    return {
      update() {
        const st = model.streams[name];
        if (!st || !st.value) return;
        const { rows, control, key } = st.value, cols = rows.length ? Object.keys(rows[0]) : [];
        const t = document.createElement("table"); t.className = "data" + (control ? " clickable" : "");
        t.innerHTML = "<tr>" + cols.map((c) => `<th>${esc(c)}</th>`).join("") + "</tr>" +
          rows.map((r, i) => `<tr data-row="${i}">` + cols.map((c) => `<td>${esc(fmt(r[c]))}</td>`).join("") +
                   "</tr>").join("");
        if (control) {
          t.onclick = (e) => {
            const tr = e.target.closest("tr[data-row]");
            if (tr) send({ type: "control", name: control, value: rows[+tr.dataset.row][key] });
          };
        }
        holder.replaceChildren(t);
        info.textContent = control ? "click a row" : `step ${st.step}`;
      },
      resize() {},
    };
  }

  function decodeImages(thumbs) {
    // base64 uint8 (n, h, w) greys -> one small canvas per image
    const [n, h, w] = thumbs.shape, bytes = Uint8Array.from(atob(thumbs.data), (ch) => ch.charCodeAt(0));
    const tiles = [];
    for (let i = 0; i < n; i++) {
      const tile = document.createElement("canvas"), img = new ImageData(w, h);
      tile.width = w; tile.height = h;
      for (let p = 0; p < w * h; p++) {
        const g = bytes[i * w * h + p];
        img.data[4 * p] = g; img.data[4 * p + 1] = g; img.data[4 * p + 2] = g; img.data[4 * p + 3] = 255;
      }
      tile.getContext("2d").putImageData(img, 0, 0);
      tiles.push(tile);
    }
    return tiles;
  }

  function drawScatter(ctx, canvas, v, info) {
    // thesis Fig. 4.7's neuron map: axes with titles and tick values, labels, LDAM thumbnails, hover
    const d = devicePixelRatio, n = v.x.length, titled = v.x_title || v.y_title;
    const a = titled ? axes(ctx, canvas, v.x_title || "", v.y_title || "")
      : { left: 10 * d, top: 10 * d, right: canvas.width - 10 * d, bottom: canvas.height - 10 * d };
    const inset = 8 * d;  // points and thumbnails keep off the axis lines
    const [x0, x1] = [Math.min(...v.x), Math.max(...v.x)], [y0, y1] = [Math.min(...v.y), Math.max(...v.y)];
    const sx = (x) => a.left + inset + (a.right - a.left - 2 * inset) * (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5);
    const sy = (y) => a.bottom - inset - (a.bottom - a.top - 2 * inset) * (y1 > y0 ? (y - y0) / (y1 - y0) : 0.5);
    canvas.dataset.xTitle = v.x_title || ""; canvas.dataset.yTitle = v.y_title || "";
    if (titled) {
      tick(ctx, fmt(x0), sx(x0), a.bottom + 3 * d, "center", "top");
      tick(ctx, fmt(x1), sx(x1), a.bottom + 3 * d, "center", "top");
      tick(ctx, fmt(y0), a.left - 4 * d, sy(y0), "right", "middle");
      tick(ctx, fmt(y1), a.left - 4 * d, sy(y1), "right", "middle");
    }
    canvas._points = [];
    ctx.font = `${10 * d}px system-ui`;
    for (let i = 0; i < n; i++) {
      const px = sx(v.x[i]), py = sy(v.y[i]);
      canvas._points.push([px, py, i]);
      ctx.fillStyle = COLORS[0];
      ctx.beginPath(); ctx.arc(px, py, 3.5 * d, 0, 2 * Math.PI); ctx.fill();
      if (v.labels && n <= 60) { ctx.fillStyle = "#555"; ctx.fillText(v.labels[i], px + 5 * d, py - 4 * d); }
    }
    if (v.thumbnails) {
      const tiles = decodeImages(v.thumbnails), size = 26 * d;
      ctx.imageSmoothingEnabled = false;
      v.thumbnails.index.forEach((i, k) => {
        const px = sx(v.x[i]), py = sy(v.y[i]);
        ctx.drawImage(tiles[k], px - size / 2, py - size / 2, size, size);
        ctx.strokeStyle = COLORS[0]; ctx.lineWidth = d; ctx.strokeRect(px - size / 2, py - size / 2, size, size);
        if (v.labels) { ctx.fillStyle = "#333"; ctx.fillText(v.labels[i], px + size / 2 + 2 * d, py - size / 2 + 8 * d); }
      });
    }
    const nearest = (e) => {
      const r = canvas.getBoundingClientRect(), cx = (e.clientX - r.left) * devicePixelRatio,
            cy = (e.clientY - r.top) * devicePixelRatio;
      let best = null, bd = Infinity;
      for (const [px, py, i] of canvas._points) {
        const dd = (px - cx) ** 2 + (py - cy) ** 2;
        if (dd < bd) { bd = dd; best = i; }
      }
      return best !== null && bd < (12 * devicePixelRatio) ** 2 ? best : null;
    };
    if (!canvas._hover) {
      // one tooltip per canvas, above it: the neuron, its mean activation, dead or not
      const tip = document.createElement("div");
      tip.className = "tooltip"; tip.hidden = true;
      canvas.parentElement.append(tip);
      canvas._hover = tip;
      canvas.onmousemove = (e) => {
        const cur = model.streams[canvas._stream].value, i = nearest(e);
        if (i === null || !cur) { tip.hidden = true; return; }
        tip.textContent = cur.hover ? cur.hover[i] : (cur.labels ? cur.labels[i] : String(i));
        const r = canvas.getBoundingClientRect();
        tip.style.left = `${e.clientX - r.left + 12}px`; tip.style.top = `${e.clientY - r.top + 12}px`;
        tip.hidden = false;
      };
      canvas.onmouseleave = () => { tip.hidden = true; };
    }
    if (v.control && !canvas.onclick) {
      canvas.style.cursor = "pointer";
      canvas.onclick = (e) => {
        const cur = model.streams[canvas._stream].value, best = nearest(e);
        if (best !== null) send({ type: "control", name: cur.control, value: cur.keys ? cur.keys[best] : best });
      };
    }
    info.textContent = v.control ? "click a point" : `${n} points`;
  }

  function tickLabels(splits) {
    // axis ticks with just enough digits to say each tick's value (uPlot's default rounds 3e-4 to "0",
    // and merely distinct labels may still round 2.5e-4 to 3e-4): within a thousandth of the spacing;
    // scientific below 1e-3 and from 1e5, grouped thousands otherwise
    const vals = splits.filter((v) => v !== null);
    const big = Math.max(0, ...vals.map(Math.abs));
    const gaps = vals.slice(1).map((v, i) => Math.abs(v - vals[i])).filter((g) => g > 0);
    const spacing = gaps.length ? Math.min(...gaps) : big || 1;
    const sci = big >= 1e5 || (big > 0 && big < 1e-3);
    const label = (v, p) => (v === null ? "" : v === 0 ? "0" : sci ? v.toExponential(p)
      : v.toLocaleString("en-US", { minimumFractionDigits: p, maximumFractionDigits: p }));
    let out = [];
    for (let p = 0; p <= 12; p++) {
      out = splits.map((v) => label(v, p));
      if (splits.every((v, i) => v === null || Math.abs(+out[i].replace(/,/g, "") - v) <= spacing * 1e-3)) break;
    }
    return out;
  }

  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  function fmt(v) {
    if (v === null || v === undefined) return "";
    if (typeof v !== "number") return String(v);
    if (v === 0) return "0";
    const a = Math.abs(v);
    return a >= 1e4 || a < 1e-3 ? v.toExponential(2) : +v.toPrecision(4) + "";
  }

  // ----- wiring
  function init() {
    grid = GridStack.init({ cellHeight: 70, margin: 6, handle: ".widget-head", float: false, column: 12 }, "#grid");
    grid.on("change", saveLayout);
    $("pause").onclick = () => send({ type: "command", command: model.paused ? "resume" : "pause" });
    $("single").onclick = () => send({ type: "command", command: "step" });
    $("snapshot").onclick = () => send({ type: "command", command: "snapshot", name: `step ${model.step}` });
    $("restore").onclick = () => { const n = $("snapshots").value; if (n) send({ type: "command", command: "restore", name: n }); };
    $("add").onclick = () => { refreshMenu(); $("add-menu").hidden = !$("add-menu").hidden; };
    $("reset-layout").onclick = () => {
      for (const id of [...widgets.keys()]) removeWidget(id, false);
      localStorage.removeItem(layoutKey());
      localStorage.removeItem(removedKey());
      restoreLayout();
      refreshMenu();
    };
    document.addEventListener("click", (e) => { if (!e.target.closest(".menu")) $("add-menu").hidden = true; });
    window.modeldx = { model, widgets, send, socket: () => socket, tickLabels };  // for scripts and browser tests
    connect();
  }

  init();
})();
