// What the explorer and dynamics pages share: relative API URLs carrying the page's ?token=, JSON
// fetches whose errors name the server's detail, and a DOM/SVG element builder.

export const SVG = "http://www.w3.org/2000/svg";
const token = new URLSearchParams(location.search).get("token");

export function api(path, params = {}) {
  const url = new URL(path, location.href);
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined) url.searchParams.set(k, v);
  if (token) url.searchParams.set("token", token);
  return url.toString();
}

export async function getJSON(path, params) {
  const res = await fetch(api(path, params));
  const body = await res.json();
  if (!res.ok) throw new Error(body.detail || `${path}: HTTP ${res.status}`);
  return body;
}

export function el(tag, attrs = {}, parent = null, text = null) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== null) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

// the page's hover tip: an element with id "tip", placed beside the pointer
export function showTip(ev, text) {
  const tip = document.getElementById("tip");
  tip.textContent = text;
  tip.hidden = false;
  tip.style.left = `${ev.clientX + 12}px`;
  tip.style.top = `${ev.clientY + 12}px`;
}

export function hideTip() { document.getElementById("tip").hidden = true; }
