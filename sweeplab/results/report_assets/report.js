(function () {
  "use strict";
  var errors = [];
  function flushErrors() { document.body.setAttribute("data-errors", JSON.stringify(errors)); }
  window.addEventListener("error", function (e) { errors.push(String(e.message)); flushErrors(); });
  var consoleError = console.error;
  console.error = function () {
    errors.push(Array.prototype.map.call(arguments, String).join(" "));
    flushErrors();
    consoleError.apply(console, arguments);
  };
  flushErrors();

  var D = JSON.parse(document.getElementById("sweeplab-data").textContent);
  var NS = "http://www.w3.org/2000/svg";
  var tip = document.getElementById("tip");
  var counts = {};
  var state = { strategies: new Set(D.strategies), datasets: new Set(D.datasets), run: D.layerRun };
  var layersCard = null;
  var runsById = {};
  D.runs.forEach(function (r) { runsById[r.id] = r; });

  function svg(tag, attrs, parent) {
    var node = document.createElementNS(NS, tag);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(node);
    return node;
  }
  function html(tag, text, parent, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    if (parent) parent.appendChild(node);
    return node;
  }
  function num(v, d) { return v === null || v === undefined ? "—" : Number(v).toFixed(d); }
  function pct(v) { return v === null || v === undefined ? "—" : (100 * v).toFixed(2); }
  function showTip(ev, lines) {
    tip.textContent = lines.join("\n");
    tip.style.display = "block";
    var x = ev.clientX + 14, y = ev.clientY + 14;
    var w = tip.offsetWidth, h = tip.offsetHeight;
    if (x + w > window.innerWidth) x = Math.max(0, ev.clientX - w - 14);
    if (y + h > window.innerHeight) y = Math.max(0, window.innerHeight - h - 4);
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  }
  function bindTip(node, lines) {
    node.addEventListener("mousemove", function (ev) { showTip(ev, lines()); });
    node.addEventListener("mouseleave", function () { tip.style.display = "none"; });
  }
  function runLines(r) {
    var s = D.series[r.s];
    var out = ["run " + r.id, "series: " + s.name, "data/model: " + D.groups[r.g].title,
      "seed: " + r.seed, "sparsity requested " + num(r.sreq, 4) + ", achieved " + num(r.sach, 4),
      "compression: " + num(r.c, 2) + "x",
      "acc %: dense " + pct(r.dense) + " -> pruned " + pct(r.accb) + " -> finetuned " + pct(r.acc),
      "config:"];
    Object.keys(r.config).sort().forEach(function (k) {
      out.push("  " + k + " = " + r.config[k]);
    });
    return out;
  }
  function pointLines(p) {
    var s = D.series[p.s];
    return ["series: " + s.name, "data/model: " + D.groups[p.g].title,
      "sparsity requested " + num(p.sreq, 4) + ", achieved " + num(p.sach, 4),
      "compression: " + num(p.c, 2) + "x" + (p.sp ? ", FLOP speedup " + num(p.sp, 2) + "x" : ""),
      "acc % after finetune: " + pct(p.acc) + " ± " + pct(p.std) + " (n=" + p.n + ")",
      "acc % before finetune: " + pct(p.accb) + " ± " + pct(p.stdb),
      "runs: " + p.runs.join(" "), "hover a small dot for one run's config"];
  }
  function niceTicks(lo, hi, n) {
    var span = hi - lo || Math.abs(hi) || 1;
    var step = Math.pow(10, Math.floor(Math.log10(span / n)));
    [1, 2, 5, 10].some(function (m) {
      if (span / (step * m) > n) return false;
      step *= m;
      return true;
    });
    var out = [];
    for (var t = Math.ceil(lo / step) * step; t <= hi + 1e-9 * step; t += step) {
      out.push(+t.toFixed(10));
    }
    return out;
  }
  function finite(v) { return typeof v === "number" && isFinite(v); }

  // spec: {id, title, xlabel, ylabel, xlog, diag, count,
  //        lines: [{name, color, dash, band, pts: [{x, y, lo, hi, tip}]}],
  //        dots: [{x, y, color, tip, click}]}
  function chart(parent, spec) {
    var W = 580, H = 330, L = 52, R = 14, T = 26, B = 40;
    var xs = [], ys = [];
    spec.lines.forEach(function (l) { l.pts.forEach(function (p) {
      if (finite(p.x) && finite(p.y)) { xs.push(p.x); ys.push(p.y);
        if (finite(p.lo)) ys.push(p.lo); if (finite(p.hi)) ys.push(p.hi); } }); });
    spec.dots.forEach(function (d) {
      if (finite(d.x) && finite(d.y)) { xs.push(d.x); ys.push(d.y); }
    });
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, class: "chart", "data-chart": spec.id,
      role: "img" }, parent);
    svg("text", { x: L, y: 16, "font-weight": "600" }, root).textContent = spec.title;
    if (!xs.length) {
      svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", fill: "#888" }, root).textContent =
        "nothing selected";
      counts[spec.id] = 0;
      root.setAttribute("data-series", "0");
      return root;
    }
    var fx = spec.xlog ? function (v) { return Math.log2(v); } : function (v) { return v; };
    var x0 = Math.min.apply(null, xs.map(fx)), x1 = Math.max.apply(null, xs.map(fx));
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    if (spec.diag) { x0 = Math.min(x0, y0); y0 = x0; x1 = Math.max(x1, y1); y1 = x1; }
    var px = (x1 - x0) * 0.04 || 0.5, py = (y1 - y0) * 0.06 || 1;
    x0 -= px; x1 += px; y0 -= py; y1 += py;
    function sx(v) { return L + (fx(v) - x0) / (x1 - x0) * (W - L - R); }
    function sy(v) { return H - B - (v - y0) / (y1 - y0) * (H - T - B); }
    var axis = svg("g", { stroke: "#e5e7eb" }, root);
    var xt = spec.xlog ? [] : niceTicks(x0, x1, 6);
    if (spec.xlog) for (var e = Math.ceil(x0); e <= Math.floor(x1); e++) xt.push(Math.pow(2, e));
    xt.forEach(function (t) {
      var X = sx(t);
      svg("line", { x1: X, x2: X, y1: T, y2: H - B }, axis);
      svg("text", { x: X, y: H - B + 14, "text-anchor": "middle", fill: "#444", stroke: "none" },
        root).textContent = spec.xlog ? t + "x" : +t.toFixed(4);
    });
    niceTicks(y0, y1, 6).forEach(function (t) {
      var Y = sy(t);
      svg("line", { x1: L, x2: W - R, y1: Y, y2: Y }, axis);
      svg("text", { x: L - 4, y: Y + 4, "text-anchor": "end", fill: "#444" }, root).textContent =
        +t.toFixed(4);
    });
    svg("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "none",
      stroke: "#9ca3af" }, root);
    svg("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle" }, root).textContent =
      spec.xlabel;
    svg("text", { x: 12, y: (T + H - B) / 2, "text-anchor": "middle",
      transform: "rotate(-90 12 " + (T + H - B) / 2 + ")" }, root).textContent = spec.ylabel;
    if (spec.diag) {
      svg("line", { x1: sx(x0), y1: sy(x0), x2: sx(x1), y2: sy(x1), stroke: "#9ca3af",
        "stroke-dasharray": "2 3" }, root);
    }
    var series = 0;
    spec.lines.forEach(function (l) {
      var pts = l.pts.filter(function (p) { return finite(p.x) && finite(p.y); });
      if (!pts.length) return;
      if (!l.dash) series += 1;
      if (l.band) {
        var upper = pts.map(function (p) {
          return sx(p.x) + "," + sy(finite(p.hi) ? p.hi : p.y);
        });
        var lower = pts.slice().reverse().map(function (p) {
          return sx(p.x) + "," + sy(finite(p.lo) ? p.lo : p.y);
        });
        svg("polygon", { points: upper.concat(lower).join(" "), fill: l.color, "fill-opacity": 0.13,
          stroke: "none" }, root);
      }
      svg("polyline", { points: pts.map(function (p) { return sx(p.x) + "," + sy(p.y); }).join(" "),
        fill: "none", stroke: l.color, "stroke-width": l.dash ? 1.2 : 2,
        "stroke-dasharray": l.dash ? "5 4" : "none", "stroke-opacity": l.dash ? 0.75 : 1,
        "data-series-name": l.name }, root);
      pts.forEach(function (p) {
        var c = svg("circle", { cx: sx(p.x), cy: sy(p.y), r: l.dash ? 3 : 4.5, class: "pt",
          fill: l.dash ? "#fff" : l.color, stroke: l.color, "stroke-width": 1.5 }, root);
        if (p.tip) bindTip(c, p.tip);
      });
    });
    spec.dots.forEach(function (d) {
      if (!(finite(d.x) && finite(d.y))) return;
      var c = svg("circle", { cx: sx(d.x), cy: sy(d.y), r: 2.6, fill: d.color, "fill-opacity": 0.55,
        stroke: "none", class: "run" }, root);
      bindTip(c, d.tip);
      if (d.click) { c.style.cursor = "pointer"; c.addEventListener("click", d.click); }
    });
    var n = spec.count !== undefined ? spec.count : series;
    counts[spec.id] = n;
    root.setAttribute("data-series", String(n));
    return root;
  }
  function legend(parent, items) {
    var box = html("div", null, parent, "legend");
    items.forEach(function (it) {
      var span = html("span", null, box);
      var sw = html("i", null, span);
      sw.style.background = it.color;
      span.appendChild(document.createTextNode(it.name));
    });
  }
  function visibleSeries(s) { return state.strategies.has(s.strategy); }
  function runDot(r, y, x) {
    var s = D.series[r.s];
    return { x: x, y: y, color: s.color, tip: function () { return runLines(r); },
      click: function () { state.run = r.id; drawLayers(); } };
  }

  function accuracyChart(card, g, key, id, title, xlabel) {
    var lines = [], items = [];
    D.series.forEach(function (s, si) {
      if (!visibleSeries(s)) return;
      var pts = D.points.filter(function (p) { return p.g === g && p.s === si && finite(p[key]); })
        .sort(function (a, b) { return a[key] - b[key]; });
      if (!pts.length) return;
      var dense = D.dense.filter(function (d) { return d.g === g && d.s === si; })[0];
      var head = dense ? [{ x: 1, y: 100 * dense.acc, lo: 100 * (dense.acc - dense.std),
        hi: 100 * (dense.acc + dense.std), tip: function () {
          return ["series: " + s.name, "own dense models: " + pct(dense.acc) + " ± " +
            pct(dense.std) + " (n=" + dense.n + ")"];
        } }] : [];
      lines.push({ name: s.name, color: s.color, band: true, pts: head.concat(pts.map(function (p) {
        return { x: p[key], y: 100 * p.acc, lo: 100 * (p.acc - p.std), hi: 100 * (p.acc + p.std),
          tip: function () { return pointLines(p); } }; })) });
      lines.push({ name: s.name + " (before finetune)", color: s.color, dash: true,
        pts: head.map(function (h) { return { x: h.x, y: h.y }; }).concat(pts.map(function (p) {
          return { x: p[key], y: 100 * p.accb, tip: function () { return pointLines(p); } };
        })) });
      items.push({ name: s.name, color: s.color });
    });
    var dots = D.runs.filter(function (r) { return r.g === g && visibleSeries(D.series[r.s]) &&
      finite(key === "c" ? r.c : r.sp); }).map(function (r) {
        return runDot(r, 100 * r.acc, key === "c" ? r.c : r.sp); });
    chart(card, { id: id, title: title, xlabel: xlabel, ylabel: "test accuracy %", xlog: true,
      lines: lines, dots: dots });
    legend(card, items);
  }

  function drawLayers() {
    var card = layersCard;
    card.textContent = "";
    var r = runsById[state.run];
    html("h3", "Per-layer sparsity" + (r ? " of run " + r.id : ""), card);
    if (!r || !Object.keys(r.layers).length) {
      html("p", "Click a run (small dot) in a chart to see its per-layer sparsity.", card, "note");
      counts["layers"] = 0;
      return;
    }
    html("p", D.series[r.s].name + " · " + D.groups[r.g].title + " · requested " + num(r.sreq, 4) +
      " · achieved " + num(r.sach, 4), card, "note");
    var names = Object.keys(r.layers);
    var W = 580, row = 16, L = 200, T = 8, H = T + names.length * row + 24;
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, class: "chart",
      "data-chart": "layers" }, card);
    [0, 0.25, 0.5, 0.75, 1].forEach(function (t) {
      var X = L + t * (W - L - 20);
      svg("line", { x1: X, x2: X, y1: T, y2: H - 20, stroke: "#e5e7eb" }, root);
      svg("text", { x: X, y: H - 6, "text-anchor": "middle", fill: "#444" }, root).textContent = t;
    });
    names.forEach(function (n, i) {
      var v = r.layers[n] || 0, Y = T + i * row;
      var label = svg("text", { x: L - 6, y: Y + 11, "text-anchor": "end" }, root);
      label.textContent = n.length > 32 ? "…" + n.slice(-31) : n;
      var bar = svg("rect", { x: L, y: Y + 2, width: Math.max(0, v) * (W - L - 20), height: row - 5,
        fill: D.series[r.s].color }, root);
      bindTip(bar, function () { return [n, "sparsity " + num(v, 4)]; });
    });
    root.setAttribute("data-series", "1");
    counts["layers"] = 1;
    publish();
  }

  function draw() {
    var root = document.getElementById("charts");
    root.textContent = "";
    counts = {};
    D.groups.forEach(function (grp, g) {
      if (!state.datasets.has(grp.data)) return;
      var card = html("div", null, root, "card");
      html("h3", grp.title, card);
      accuracyChart(card, g, "c", "acc-compression-" + g, "Accuracy vs compression",
        "compression (log2): total / nonzero parameters");
      var hasSpeedup = D.points.some(function (p) { return p.g === g && finite(p.sp); });
      if (hasSpeedup) accuracyChart(card, g, "sp", "acc-speedup-" + g, "Accuracy vs FLOP speedup",
        "theoretical FLOP speedup (log2)");
    });
    var sc = html("div", null, root, "card");
    html("h3", "Requested vs achieved sparsity", sc);
    var shown = D.runs.filter(function (r) { return state.datasets.has(D.groups[r.g].data) &&
      visibleSeries(D.series[r.s]); });
    var strategies = new Set(shown.map(function (r) { return D.series[r.s].strategy; }));
    chart(sc, { id: "sparsity", title: "achieved vs requested (dotted: equal)", diag: true,
      xlabel: "requested sparsity", ylabel: "achieved sparsity", lines: [], count: strategies.size,
      dots: shown.map(function (r) { return runDot(r, r.sach, r.sreq); }) });
    layersCard = html("div", null, root, "card");
    drawLayers();
    document.querySelectorAll("tr[data-strategy]").forEach(function (tr) {
      var s = tr.getAttribute("data-strategy");
      tr.style.display = s === "dense" || s === "" || state.strategies.has(s) ? "" : "none";
    });
    document.querySelectorAll("section[data-data]").forEach(function (sec) {
      sec.style.display = state.datasets.has(sec.getAttribute("data-data")) ? "" : "none";
    });
    publish();
  }
  function publish() {
    document.body.setAttribute("data-charts", JSON.stringify(counts));
    document.body.setAttribute("data-ready", "1");
  }
  // Filters live in the URL hash too (#strategy=a,b&data=c), so a filtered view can be shared.
  function readHash() {
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      var kv = part.split("=");
      if (kv.length !== 2) return;
      var wanted = kv[1].split(",").map(decodeURIComponent);
      var set = kv[0] === "strategy" ? state.strategies : kv[0] === "data" ? state.datasets : null;
      if (!set) return;
      var all = Array.from(set);
      set.clear();
      all.forEach(function (v) { if (wanted.indexOf(v) >= 0) set.add(v); });
    });
  }
  function writeHash() {
    function enc(set) { return Array.from(set).map(encodeURIComponent).join(","); }
    history.replaceState(null, "", "#strategy=" + enc(state.strategies) + "&data=" +
      enc(state.datasets));
  }
  function filters(id, values, set) {
    var box = document.getElementById(id);
    values.forEach(function (v) {
      var label = html("label", null, box);
      var input = html("input", null, label);
      input.type = "checkbox";
      input.checked = set.has(v);
      input.value = v;
      input.addEventListener("change", function () {
        if (input.checked) set.add(v); else set.delete(v);
        writeHash();
        draw();
      });
      label.appendChild(document.createTextNode(" " + v));
    });
  }
  try {
    readHash();
    filters("f-strategy", D.strategies, state.strategies);
    filters("f-data", D.datasets, state.datasets);
    draw();
  } catch (e) {
    errors.push(String(e && e.stack || e));
    flushErrors();
    throw e;
  }
})();
