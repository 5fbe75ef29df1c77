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
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

  function receive(msg) {
    if (msg.type === "state") loadState(msg);
    else if (msg.type === "updates") applyUpdates(msg);
    else if (msg.type === "error") showMessage(msg.message);
  }

  // ----- the session's data
  function loadState(s) {
    const first = model.name === null;
    model.name = s.name; model.step = s.step; model.paused = s.paused; model.error = s.error;
    model.events = s.events; model.snapshots = s.snapshots;
    model.controls = Object.fromEntries(s.controls.map((c) => [c.name, c]));
    model.streams = {};
    for (const [name, st] of Object.entries(s.streams)) {
      model.streams[name] = st.kind === "scalar"
        ? { kind: "scalar", steps: st.step.slice(), values: st.value.slice() }
        : { kind: st.kind, step: st.latest ? st.latest[0] : null, value: st.latest ? st.latest[1] : null };
    }
    document.title = `modeldx live: ${s.name}`;
    $("title").textContent = `modeldx live · ${s.name}`;
    if (first) restoreLayout();
    for (const w of widgets.values()) markDirty(w.id);
    refreshHeader();
    refreshMenu();
  }

  function applyUpdates(msg) {
    model.step = msg.step; model.paused = msg.paused; model.error = msg.error;
    let newStream = false;
    for (const u of msg.updates) {
      if (u.type === "point") {
        let st = model.streams[u.stream];
        if (!st) { st = model.streams[u.stream] = { kind: "scalar", steps: [], values: [] }; newStream = true; }
        // a point can be both in the state sent on connect and in the first push: keep it once
        if (st.steps.length && u.step <= st.steps[st.steps.length - 1]) continue;
        st.steps.push(u.step); st.values.push(u.value);
        markDirty(`stream:${u.stream}`);
      } else if (u.type === "value") {
        if (!model.streams[u.stream]) newStream = true;
        model.streams[u.stream] = { kind: u.kind, step: u.step, value: u.value };
        markDirty(`stream:${u.stream}`);
      } else if (u.type === "event") {
        model.events.push(u);
        if (u.kind === "control" && model.controls[u.name]) {
          model.controls[u.name].value = u.value;
          markDirty(`control:${u.name}`);
        }
        if (u.kind === "snapshot" && !model.snapshots.includes(u.name)) model.snapshots.push(u.name);
        for (const w of widgets.values()) if (w.kind === "stream") markDirty(w.id);
      }
    }
    refreshHeader();
    if (newStream) refreshMenu();
  }

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
    if (sel.options.length !== Math.max(names.length, 1) || names.some((n, i) => sel.options[i].value !== n)) {
      sel.innerHTML = "";
      if (!names.length) sel.add(new Option("no snapshots", ""));
      for (const n of names) sel.add(new Option(n, n));
      if (names.length) sel.value = names[names.length - 1];
    }
    if (model.error) showMessage(model.error, 0);
  }

  let messageTimer = 0;
  function showMessage(text, ms = 5000) {
    const box = $("message");
    box.textContent = text; box.hidden = false;
    clearTimeout(messageTimer);
    if (ms) messageTimer = setTimeout(() => { box.hidden = true; }, ms);
  }

  // ----- layout: widgets on the grid, kept across reloads
  const layoutKey = () => `modeldx-layout:${model.name}`;

  function saveLayout() {
    const items = [...widgets.values()].map((w) => {
      const n = w.el.gridstackNode || {};
      return { kind: w.kind, name: w.name, x: n.x, y: n.y, w: n.w, h: n.h };
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
    saveLayout();
  }

  function defaultLayout() {
    const items = Object.keys(model.controls).map((n) => ({ kind: "control", name: n, w: 3, h: 2 }));
    for (const [n, st] of Object.entries(model.streams)) {
      items.push({ kind: "stream", name: n, w: 6, h: st.kind === "images" ? 6 : 4 });
    }
    return items;
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
    const w = kind === "control" ? controlWidget(name, body) : streamWidget(name, body, info);
    if (kind === "stream" && model.streams[name] && model.streams[name].kind === "images") {
      const png = document.createElement("button");
      png.className = "close"; png.title = "Save as PNG"; png.textContent = "PNG"; png.dataset.png = name;
      png.onclick = () => {
        const canvas = body.querySelector("canvas"), a = document.createElement("a");
        a.href = canvas.toDataURL("image/png"); a.download = `${name.replace(/\W+/g, "-")}-step${model.step}.png`;
        a.click();
      };
      head.insertBefore(png, close);
    }
    Object.assign(w, { id, kind, name, el, body });
    widgets.set(id, w);
    grid.el.appendChild(el);
    grid.makeWidget(el, { x: pos.x, y: pos.y, w: pos.w || (kind === "control" ? 3 : 6),
                          h: pos.h || (kind === "control" ? 2 : 4), autoPosition: pos.x === undefined });
    close.onclick = () => removeWidget(id);
    new ResizeObserver(() => w.resize()).observe(body);
    markDirty(id);
    return w;
  }

  function removeWidget(id) {
    const w = widgets.get(id);
    if (!w) return;
    if (w.destroy) w.destroy();
    grid.removeWidget(w.el);
    widgets.delete(id);
    saveLayout();
    refreshMenu();
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
      b.onclick = () => { addWidget(kind, name); saveLayout(); refreshMenu(); menu.hidden = true; };
      menu.append(b);
    }
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
      let dragging = false;
      input.addEventListener("input", () => { dragging = true; value.textContent = fmt(toValue(+input.value)); });
      input.addEventListener("change", () => {
        dragging = false;
        send({ type: "control", name, value: Math.min(c.high, Math.max(c.low, toValue(+input.value))) });
      });
      return { update() { if (!dragging) { input.value = toPos(model.controls[name].value); }
                          value.textContent = fmt(model.controls[name].value); },
               resize() {} };
    }
    if (c.kind === "choice") {
      const select = document.createElement("select");
      for (const o of c.options) select.add(new Option(String(o), JSON.stringify(o)));
      select.onchange = () => send({ type: "control", name, value: JSON.parse(select.value) });
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
  function streamWidget(name, body, info) {
    const st = model.streams[name];
    const kind = st ? st.kind : "scalar";
    if (kind === "scalar") return chartWidget(name, body, info);
    if (kind === "table") return tableWidget(name, body, info);
    return canvasWidget(name, body, info, { histogram: drawHistogram, images: drawImages,
                                            silhouette: drawSilhouette, matrix: drawMatrix,
                                            scatter: drawScatter }[kind]);
  }

  function chartWidget(name, body, info) {
    let plot = null;
    const markers = {
      hooks: { draw: [(u) => {
        const ctx = u.ctx, top = u.bbox.top, height = u.bbox.height;
        ctx.save();
        ctx.font = `${11 * devicePixelRatio}px system-ui`;
        const placed = [];  // label boxes drawn so far: a label that would overlap one moves down a row
        for (const e of model.events) {
          if (e.step === null || !["control", "restore", "error"].includes(e.kind)) continue;
          const x = u.valToPos(e.step, "x", true);
          if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
          ctx.strokeStyle = e.kind === "error" ? "#c92a2a" : "#e67700";
          ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
          ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke();
          ctx.fillStyle = "#8a5a00";
          const label = e.kind === "control" ? `${e.name}=${fmt(e.value)}` : e.kind;
          const wide = ctx.measureText(label).width, right = u.bbox.left + u.bbox.width;
          const lx = x + 3 * devicePixelRatio + wide > right ? x - 3 * devicePixelRatio - wide : x + 3 * devicePixelRatio;
          let row = 0;
          while (placed.some(([a, b, r]) => r === row && lx < b && lx + wide > a)) row++;
          placed.push([lx - 4, lx + wide + 4, row]);
          ctx.fillText(label, lx, top + (12 + 13 * row) * devicePixelRatio);
        }
        ctx.restore();
      }] },
    };
    function make() {
      const { width, height } = size(body);
      if (plot) plot.destroy();
      plot = new uPlot({ width, height, legend: { show: false }, plugins: [markers],
                         scales: { x: { time: false } }, axes: [{ label: "step" }, {}],
                         series: [{}, { label: name, stroke: COLORS[0], width: 1.5, points: { show: false } }] },
                       data(), body);
    }
    const data = () => { const st = model.streams[name]; return st ? [st.steps, st.values] : [[], []]; };
    return {
      update() {
        if (!plot) make(); else plot.setData(data());
        const st = model.streams[name];
        if (st && st.values.length) info.textContent = fmt(st.values[st.values.length - 1]);
      },
      resize() { if (plot) { const { width, height } = size(body); plot.setSize({ width, height }); } },
      destroy() { if (plot) plot.destroy(); },
      plot: () => plot,
    };
  }

  function size(body) {
    return { width: Math.max(body.clientWidth - 8, 50), height: Math.max(body.clientHeight - 12, 40) };
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

  function drawHistogram(ctx, canvas, v) {
    const n = v.counts.length, max = Math.max(...v.counts, 1), pad = 24 * devicePixelRatio;
    const w = (canvas.width - pad) / n, h = canvas.height - pad;
    ctx.fillStyle = COLORS[0];
    v.counts.forEach((c, i) => { const bh = h * c / max; ctx.fillRect(pad + i * w + 1, h - bh, Math.max(w - 2, 1), bh); });
    ctx.fillStyle = "#6b7380"; ctx.font = `${10 * devicePixelRatio}px system-ui`;
    ctx.fillText(fmt(v.edges[0]), pad, canvas.height - 6 * devicePixelRatio);
    const last = fmt(v.edges[v.edges.length - 1]);
    ctx.fillText(last, canvas.width - ctx.measureText(last).width - 2, canvas.height - 6 * devicePixelRatio);
    ctx.fillText(String(max), 2, 10 * devicePixelRatio);
  }

  function drawImages(ctx, canvas, v) {
    const [n, h, w] = v.shape, channels = v.shape.length === 4 ? v.shape[3] : 1;
    const bytes = Uint8Array.from(atob(v.data), (ch) => ch.charCodeAt(0));
    const cols = v.columns, rows = Math.ceil(n / cols);
    const cell = Math.floor(Math.min(canvas.width / cols, canvas.height / rows));
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
      ctx.drawImage(tile, (i % cols) * cell + 1, Math.floor(i / cols) * cell + 1, cell - 2, cell - 2);
    }
  }

  function drawSilhouette(ctx, canvas, v, info) {
    // thesis eq. 2.2: one horizontal line per item, grouped by cluster, sorted within it
    const n = v.score.length, gap = 2, clusters = new Set(v.cluster).size;
    const rowH = (canvas.height - gap * clusters) / Math.max(n, 1), zero = canvas.width * 0.3;
    let y = 0, prev = null;
    for (let i = 0; i < n; i++) {
      if (prev !== null && v.cluster[i] !== prev) y += gap;
      prev = v.cluster[i];
      ctx.fillStyle = COLORS[v.cluster[i] % COLORS.length];
      const s = v.score[i], x0 = s >= 0 ? zero : zero + s * zero, len = Math.abs(s) * (s >= 0 ? canvas.width - zero : zero);
      ctx.fillRect(x0, y, Math.max(len, 0.5), Math.max(rowH, 0.5));
      y += rowH;
    }
    ctx.fillStyle = "#333"; ctx.fillRect(zero, 0, 1, canvas.height);
    info.textContent = `mean ${v.mean.toFixed(3)}`;
  }

  function drawMatrix(ctx, canvas, v) {
    const rows = v.values.length, cols = rows ? v.values[0].length : 0;
    const flat = v.values.flat(), lo = Math.min(...flat), hi = Math.max(...flat);
    const cw = canvas.width / Math.max(cols, 1), ch = canvas.height / Math.max(rows, 1);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) {
      const t = hi > lo ? (v.values[r][c] - lo) / (hi - lo) : 0;
      ctx.fillStyle = `rgb(${255 - 200 * t}, ${255 - 140 * t}, 255)`;
      ctx.fillRect(c * cw, r * ch, Math.ceil(cw), Math.ceil(ch));
    }
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

  function drawScatter(ctx, canvas, v, info) {
    const pad = 10 * devicePixelRatio, n = v.x.length;
    const [x0, x1] = [Math.min(...v.x), Math.max(...v.x)], [y0, y1] = [Math.min(...v.y), Math.max(...v.y)];
    const sx = (x) => pad + (canvas.width - 2 * pad) * (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5);
    const sy = (y) => canvas.height - pad - (canvas.height - 2 * pad) * (y1 > y0 ? (y - y0) / (y1 - y0) : 0.5);
    canvas._points = [];
    ctx.font = `${10 * devicePixelRatio}px system-ui`;
    for (let i = 0; i < n; i++) {
      const px = sx(v.x[i]), py = sy(v.y[i]);
      canvas._points.push([px, py, i]);
      ctx.fillStyle = COLORS[0];
      ctx.beginPath(); ctx.arc(px, py, 3.5 * devicePixelRatio, 0, 2 * Math.PI); ctx.fill();
      if (v.labels && n <= 60) { ctx.fillStyle = "#555"; ctx.fillText(v.labels[i], px + 5, py - 4); }
    }
    if (v.control && !canvas.onclick) {
      canvas.style.cursor = "pointer";
      canvas.onclick = (e) => {
        const r = canvas.getBoundingClientRect(), cx = (e.clientX - r.left) * devicePixelRatio,
              cy = (e.clientY - r.top) * devicePixelRatio;
        let best = null, bd = Infinity;
        for (const [px, py, i] of canvas._points) {
          const d = (px - cx) ** 2 + (py - cy) ** 2;
          if (d < bd) { bd = d; best = i; }
        }
        const cur = model.streams[canvas._stream].value;
        if (best !== null && bd < (12 * devicePixelRatio) ** 2) {
          send({ type: "control", name: cur.control, value: cur.keys ? cur.keys[best] : best });
        }
      };
    }
    info.textContent = v.control ? "click a point" : `${n} points`;
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
      for (const id of [...widgets.keys()]) removeWidget(id);
      localStorage.removeItem(layoutKey());
      restoreLayout();
    };
    document.addEventListener("click", (e) => { if (!e.target.closest(".menu")) $("add-menu").hidden = true; });
    window.modeldx = { model, widgets, send };  // for scripts and browser tests
    connect();
  }

  init();
})();
