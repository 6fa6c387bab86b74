/* cprof's flame graph page. It reads the JSON data block next to it, rebuilds the
 * tree's children from the preorder depths, and draws one absolutely positioned
 * div per frame at least MIN_PX wide (so a 300k-sample profile draws a few
 * thousand divs at most), with one delegated listener per event. */
(function () {
"use strict";
const ROW = 18, MIN_PX = 1.5;
const box = document.currentScript.previousElementSibling;
const $ = (c) => box.querySelector(c);
const D = JSON.parse($(".cfg-data").textContent);
const chart = $(".cfg-chart"), tip = $(".cfg-tip"), details = $(".cfg-details");
const search = $(".cfg-search"), chooser = $(".cfg-type"), matched = $(".cfg-matched");
const N = D.func.length, T = D.types.length, W2 = 2 * T;

const parent = new Int32Array(N), kids = new Array(N);
{
  const path = [];
  for (let i = 0; i < N; i++) {
    const d = D.depth[i];
    kids[i] = [];
    path.length = d;
    parent[i] = d ? path[d - 1] : -1;
    if (d) kids[path[d - 1]].push(i);
    path.push(i);
  }
}
const covered = new Uint8Array(N);  // showShare's scratch: node or an ancestor matched

let t = D.initial, zoom = 0, flame = true, funcMatch = null, setMatch = null;

function pos(i) { return D.pos[t][i]; }
function neg(i) { return D.neg ? D.neg[t][i] : 0; }
function width(i) { return pos(i) + neg(i); }

const UNITS = {
  time: [["ns", 1], ["us", 1e3], ["ms", 1e6], ["s", 1e9], ["hrs", 3600e9]],
  bytes: [["B", 1], ["kB", 1024], ["MB", 1048576], ["GB", 1073741824], ["TB", 1099511627776],
          ["PB", 1125899906842624]],
};
function fmt(v) {
  const ty = D.types[t], sign = v < 0 ? "-" : "";
  const a = Math.abs(v) * ty.divisor * ty.factor;
  const units = UNITS[ty.family];
  if (!units) {
    const u = ty.unit === "count" || ty.unit === "" ? "" : " " + ty.unit;
    return sign + String(a) + u;
  }
  let best = units[0];
  for (const u of units) if (a / u[1] >= 1) best = u;
  let s = (a / best[1]).toFixed(2).replace(/\.00$/, "");
  return s === "0" ? "0" : sign + s + best[0];
}
function pct(v, total) {
  return total ? (Math.abs(v) / total * 100).toFixed(2) + "%" : "0%";
}
function delta(i) { return pos(i) - neg(i); }

function hash(s) {
  let h = 0;
  for (let k = 0; k < s.length; k++) h = (Math.imul(h, 31) + s.charCodeAt(k)) >>> 0;
  return h;
}
const colorCache = new Map();
function color(i) {
  if (D.diff) {
    const w = width(i), d = delta(i), k = 0.15 + 0.85 * Math.sqrt(w ? Math.abs(d) / w : 0);
    const target = d > 0 ? [222, 45, 38] : d < 0 ? [40, 90, 220] : [200, 200, 200];
    const mix = target.map((c) => Math.round(245 + (c - 245) * k));
    return "rgb(" + mix.join(",") + ")";
  }
  const name = D.names[D.func[i]];
  let c = colorCache.get(name);
  if (c === undefined) {
    const h = hash(name);
    if (name.startsWith("<") || name.startsWith("[")) {
      const g = 170 + (h % 40);
      c = "rgb(" + g + "," + g + "," + g + ")";
    } else {
      c = "rgb(" + (205 + (h % 50)) + "," + (80 + ((h >>> 8) % 150)) + "," + ((h >>> 16) % 55) + ")";
    }
    colorCache.set(name, c);
  }
  return c;
}

function isMatch(i) { return funcMatch !== null && i !== 0 && funcMatch[D.func[i]] === 1; }

function render() {
  const W = chart.clientWidth || 800;
  const boxes = [];  // [node, x, w, depth, ancestor]
  const anc = [];
  for (let a = zoom; a >= 0; a = parent[a]) anc.push(a);
  anc.reverse();
  anc.forEach((a, d) => boxes.push([a, 0, W, d, a !== zoom]));
  const zw = width(zoom);
  let maxDepth = anc.length - 1;
  if (zw > 0) {
    const scale = W / zw;
    const todo = [[zoom, 0, anc.length - 1]];
    while (todo.length) {
      const [i, x0, d] = todo.pop();
      let x = x0;
      const ks = kids[i];
      const next = [];
      for (const k of ks) {
        const w = width(k) * scale;
        if (w >= MIN_PX) {
          boxes.push([k, x, w, d + 1, false]);
          next.push([k, x, d + 1]);
          if (d + 1 > maxDepth) maxDepth = d + 1;
        }
        x += w;
      }
      for (let n = next.length - 1; n >= 0; n--) todo.push(next[n]);
    }
  }
  const frag = document.createDocumentFragment();
  for (const [i, x, w, d, isAnc] of boxes) {
    const el = document.createElement("div");
    el.className = "cfg-f" + (isAnc ? " cfg-anc" : "") + (isMatch(i) ? " cfg-match" : "");
    el.dataset.i = i;
    el.style.left = x.toFixed(2) + "px";
    el.style.width = w.toFixed(2) + "px";
    el.style.top = ((flame ? maxDepth - d : d) * ROW) + "px";
    el.style.background = color(i);
    if (w > 24) el.textContent = D.names[D.func[i]];
    frag.appendChild(el);
  }
  chart.replaceChildren(frag);
  chart.style.height = ((maxDepth + 1) * ROW) + "px";
  if (width(0) === 0) {
    const p = document.createElement("div");
    p.className = "cfg-empty";
    p.textContent = "No sample has a value of this type.";
    chart.appendChild(p);
  }
  crumbs();
}

function crumbs() {
  const el = $(".cfg-crumbs");
  el.replaceChildren();
  if (zoom === 0) return;
  const path = [];
  for (let a = zoom; a >= 0; a = parent[a]) path.push(a);
  path.reverse().forEach((a, n) => {
    if (n) el.appendChild(document.createTextNode(" \u203a "));
    const link = document.createElement(a === zoom ? "b" : "a");
    link.textContent = D.names[D.func[a]];
    if (a !== zoom) link.addEventListener("click", () => { zoom = a; render(); });
    el.appendChild(link);
  });
}

function describe(i) {
  const f = D.func[i], name = D.names[f], file = D.files[f];
  const lines = [name];
  if (file) {
    const line = D.line[i] || D.starts[f];
    lines.push(file + (line ? ":" + line : "") + (D.line[i] ? "" : line ? " (function start)" : ""));
  }
  const total = width(0), up = parent[i] >= 0 ? width(parent[i]) : width(i);
  const flat = D.flat[t][i];
  if (D.diff) {
    lines.push("change " + (delta(i) > 0 ? "+" : "") + fmt(delta(i)) + " (new " + fmt(pos(i)) +
               ", base " + fmt(neg(i)) + ")");
    lines.push(pct(width(i), total) + " of total width, " + pct(width(i), up) + " of parent");
  } else {
    lines.push(fmt(pos(i)) + " " + D.types[t].type + ", " + pct(width(i), total) + " of total, " +
               pct(width(i), up) + " of parent");
    lines.push("self " + fmt(flat) + " (" + pct(flat, total) + ")");
  }
  return lines;
}

function target(e) {
  const el = e.target.closest ? e.target.closest(".cfg-f") : null;
  return el && chart.contains(el) ? el : null;
}
chart.addEventListener("mousemove", (e) => {
  const el = target(e);
  if (!el) { tip.hidden = true; return; }
  const lines = describe(+el.dataset.i);
  tip.textContent = lines.join("\n");
  details.textContent = lines.join("  |  ");
  tip.hidden = false;
  const r = tip.getBoundingClientRect();
  tip.style.left = Math.max(0, Math.min(e.clientX + 12, window.innerWidth - r.width - 4)) + "px";
  tip.style.top = (e.clientY + 16 + r.height > window.innerHeight ? e.clientY - r.height - 8
                                                                  : e.clientY + 16) + "px";
});
chart.addEventListener("mouseleave", () => { tip.hidden = true; });
chart.addEventListener("click", (e) => {
  const el = target(e);
  if (!el) return;
  zoom = +el.dataset.i;
  tip.hidden = true;
  render();
});

function runSearch() {
  const q = search.value;
  search.classList.remove("cfg-bad");
  if (!q) {
    funcMatch = setMatch = null;
    matched.textContent = "";
    markMatches();
    return;
  }
  let test;
  try {
    const re = new RegExp(q);
    test = (s) => re.test(s);
  } catch (err) {
    search.classList.add("cfg-bad");
    test = (s) => s.includes(q);
  }
  funcMatch = new Uint8Array(D.names.length);
  for (let f = 1; f < D.names.length; f++) {
    funcMatch[f] = test(D.names[f]) || (D.files[f] !== "" && test(D.files[f])) ? 1 : 0;
  }
  setMatch = D.sets.map((s) => s.some((f) => funcMatch[f] === 1));
  markMatches();
  showShare();
}

// A search changes no frame's place or size, only its colour: mark the drawn
// frames in place rather than drawing them again, which on a large profile
// (thousands of divs) costs more than the search itself.
function markMatches() {
  for (const el of chart.children) {
    if (el.dataset.i !== undefined) el.classList.toggle("cfg-match", isMatch(+el.dataset.i));
  }
}

function showShare() {
  if (funcMatch === null) return;
  // Each sample counts once: a matching frame counts whole unless a frame
  // above it matched already, and so do the hidden frames (residue rows)
  // under a node that no frame on its path matched. Nodes are in preorder,
  // parents first, so one pass over flat arrays marks the covered ones.
  let p = 0, n = 0;
  covered.fill(0);
  for (let i = 1; i < N; i++) {
    if (covered[parent[i]]) covered[i] = 1;
    else if (isMatch(i)) { covered[i] = 1; p += pos(i); n += neg(i); }
  }
  for (const r of D.residue) {
    if (setMatch[r[1]] && !covered[r[0]]) { p += r[2 + t]; n += r[2 + T + t]; }
  }
  const total = width(0);
  matched.textContent = "Matched: " + pct(p + n, total) + " of total (" +
    (D.diff ? "change " + fmt(p - n) : fmt(p)) + ")" +
    (D.unsearched[t] ? "; " + pct(D.unsearched[t], total) + " in hidden frames not searched" : "");
  matched.dataset.share = total ? String((p + n) / total) : "0";
}

function showType() {
  const total = width(0);
  $(".cfg-total").textContent = "Total: " + (D.diff ? "change " + fmt(delta(0)) + ", width " : "") +
                                fmt(D.diff ? total : pos(0)) + " " + D.types[t].type;
  if (D.hidden) {
    $(".cfg-note-share").textContent = " Hidden: " + pct(D.hiddenWidth[t], total) + " of the total " +
                                       D.types[t].type + ".";
  }
}

D.types.forEach((ty, n) => {
  const o = document.createElement("option");
  o.value = String(n);
  o.textContent = ty.type + " (" + ty.unit + ")";
  chooser.appendChild(o);
});
chooser.value = String(t);
chooser.addEventListener("change", () => {
  t = +chooser.value;
  showType();
  render();
  showShare();
});
search.addEventListener("input", runSearch);
search.addEventListener("keydown", (e) => { if (e.key === "Escape") { search.value = ""; runSearch(); } });
$(".cfg-orient").addEventListener("click", (e) => {
  flame = !flame;
  e.target.textContent = "View: " + (flame ? "flame" : "icicle");
  render();
});
$(".cfg-reset").addEventListener("click", () => {
  zoom = 0;
  search.value = "";
  runSearch();  // clears the marks only: the zoom needs a drawing
  render();
});
if (D.diff) $(".cfg-legend").hidden = false;
let lastWidth = 0;
window.addEventListener("resize", () => {
  if (chart.clientWidth !== lastWidth) { lastWidth = chart.clientWidth; render(); }
});
showType();
render();
lastWidth = chart.clientWidth;
})();
