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
  var MISSING = "\u2014";
  var tip = document.getElementById("tip");
  var counts = {}, bands = {};
  var runsById = {}, keyInfo = {};
  D.runs.forEach(function (r) { runsById[r.id] = r; });
  D.keys.forEach(function (k) { keyInfo[k.key] = k; });
  var layersCard = null;

  function finite(v) { return typeof v === "number" && isFinite(v); }
  function one() { return 1; }
  function meanOf(rs, f) {
    var v = rs.map(f).filter(finite);
    return v.length ? v.reduce(function (a, b) { return a + b; }, 0) / v.length : null;
  }
  function bytes(v) {
    var u = [[1048576, " MiB"], [1024, " KiB"]].filter(function (p) { return v >= p[0]; })[0];
    return u ? +(v / u[0]).toPrecision(3) + u[1] : Math.round(v) + " B";
  }
  // x axes: what a run's point sits at, where its line's dense model sits, how ticks read.
  var XS = [
    { id: "c", label: "compression", log: true, dense: one, fmt: function (t) { return t + "x"; },
      axis: "compression (log2): total / nonzero parameters" },
    { id: "fsp", label: "FLOP speedup", log: true, dense: one,
      fmt: function (t) { return t + "x"; }, axis: "theoretical FLOP speedup (log2)" },
    { id: "msp", label: "measured speedup", log: false, dense: one,
      fmt: function (t) { return t + "x"; }, axis: "measured speedup: dense / pruned latency, batch 64" },
    { id: "size", label: "size", log: true, dense: function (r) { return r.dsize; }, fmt: bytes,
      axis: "model size (log2)" },
    { id: "lat", label: "latency", log: false, dense: function (r) { return r.dlat; },
      fmt: function (t) { return t; }, axis: "latency, batch 1 (ms)" },
  ].filter(function (x) { return D.runs.some(function (r) { return finite(r[x.id]); }); });
  var YS = [
    { id: "acc", label: "accuracy after recovery", axis: "test accuracy % after recovery",
      get: function (r) { return 100 * r.acc; }, dense: function (d) { return 100 * d; } },
    { id: "accb", label: "accuracy before recovery", axis: "test accuracy % before recovery",
      get: function (r) { return 100 * r.accb; }, dense: function (d) { return 100 * d; } },
    { id: "drop", label: "drop vs dense", axis: "accuracy drop vs own dense model (points)",
      get: function (r) { return 100 * (r.dense - r.acc); }, dense: function () { return 0; } },
  ];
  var GROUPS = [{ key: "series", name: "series (label)" }].concat(D.keys.map(function (k) {
    return { key: k.key, name: k.key };
  }));
  var state = { x: XS.length ? XS[0].id : "c", y: "acc", group: "series", filters: {},
    run: D.layerRun };
  D.keys.forEach(function (k) { state.filters[k.key] = new Set(k.values); });

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
  function num(v, d) { return finite(v) ? Number(v).toFixed(d) : MISSING; }
  function pct(v) { return finite(v) ? (100 * v).toFixed(2) : MISSING; }
  function natural(a, b) {
    var pa = String(a).split(/(\d+(?:\.\d+)?)/), pb = String(b).split(/(\d+(?:\.\d+)?)/);
    for (var i = 0; i < Math.min(pa.length, pb.length); i++) {
      if (pa[i] === pb[i]) continue;
      if (i % 2) return Number(pa[i]) - Number(pb[i]);
      return pa[i] < pb[i] ? -1 : 1;
    }
    return pa.length - pb.length;
  }
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
  function configOf(rs) {
    // Every config key of these runs: one value, or all of them joined when they differ.
    var values = {};
    Object.keys(D.common).forEach(function (k) { values[k] = [String(D.common[k])]; });
    rs.forEach(function (r) {
      Object.keys(r.config).forEach(function (k) {
        var v = String(r.config[k]);
        values[k] = values[k] || [];
        if (values[k].indexOf(v) < 0) values[k].push(v);
      });
    });
    return Object.keys(values).sort().map(function (k) {
      return "  " + k + " = " + values[k].sort(natural).join(" | ");
    });
  }
  function runLines(r) {
    return ["run " + r.id, "series: " + r.k.series, "data/model: " + D.groups[r.g].title,
      "seed: " + r.seed + (finite(r.round) ? ", round " + r.round : ""),
      "sparsity requested " + num(r.sreq, 4) + ", achieved " + num(r.sach, 4),
      "compression: " + num(r.c, 2) + "x",
      "acc %: dense " + pct(r.dense) + " -> pruned " + pct(r.accb) + " -> recovered " + pct(r.acc),
      "config:"].concat(configOf([r]));
  }
  function pointLines(line, p) {
    var Y = yAxis();
    if (p.dense) {
      return ["line: " + line.name, "its own dense models (n=" + p.n + "), at " + xAxis().label +
        " " + num(p.x, 4) + ": " + Y.label + " " + num(p.y, 2) + (finite(p.half) ? " \u00b1 " +
        num(p.half, 2) : ""), "dense ids: " + p.runs.map(function (r) { return r.did; }).join(" ")];
    }
    return ["line: " + line.name, "series: " + uniq(p.runs.map(function (r) {
      return r.k.series; })).join(" | "), "data/model: " + D.groups[p.runs[0].g].title,
      "sparsity requested " + num(p.sreq, 4) + (finite(p.round) ? ", round " + p.round : ""),
      xAxis().label + ": " + num(p.x, 4),
      Y.label + ": " + num(p.y, 2) + (finite(p.half) ? " \u00b1 " + num(p.half, 2) + " (" +
        Math.round(100 * D.level) + "% CI)" : "") + ", n=" + p.n,
      "runs: " + p.runs.map(function (r) { return r.id; }).join(" "),
      "hover a small dot for one run's config"];
  }
  function uniq(xs) { return xs.filter(function (v, i) { return xs.indexOf(v) === i; }); }
  function xAxis() { return XS.filter(function (x) { return x.id === state.x; })[0] || XS[0]; }
  function yAxis() { return YS.filter(function (y) { return y.id === state.y; })[0]; }
  function visible(r) {
    return Object.keys(state.filters).every(function (k) { return state.filters[k].has(r.k[k]); });
  }
  function lineName(r) {
    if (state.group === "series") return r.k.series;
    var info = keyInfo[state.group];
    return info.bare ? r.k[state.group] : info.name + "=" + r.k[state.group];
  }
  function palette() {
    // Series keep the static plots' colours; other lines take the palette in natural order.
    var names = uniq(D.runs.filter(visible).map(lineName)).sort(natural), out = {};
    names.forEach(function (n, i) { out[n] = D.palette[i % D.palette.length]; });
    return function (name, r) { return state.group === "series" ? D.series[r.s].color : out[name]; };
  }
  function tq(df) { return df <= D.t.length ? D.t[df - 1] : 1.96; }
  function stat(values) {
    var v = values.filter(finite), n = v.length;
    if (!n) return null;
    var m = v.reduce(function (a, b) { return a + b; }, 0) / n;
    if (n < 2) return { mean: m, n: n, half: null };
    var sd = Math.sqrt(v.reduce(function (a, b) { return a + (b - m) * (b - m); }, 0) / (n - 1));
    return { mean: m, n: n, half: tq(n - 1) * sd / Math.sqrt(n) };
  }
  // A point: one line's runs at one (requested sparsity, round), as the tables pool them.
  function points(rs, X, get) {
    var at = new Map();
    rs.forEach(function (r) {
      var key = r.sreq + "|" + r.round;
      if (!at.has(key)) at.set(key, []);
      at.get(key).push(r);
    });
    var out = [];
    at.forEach(function (group) {
      var x = meanOf(group, function (r) { return r[X.id]; });
      var s = stat(group.map(get));
      if (!finite(x) || !s) return;
      out.push({ x: x, y: s.mean, half: s.half, n: s.n, runs: group, sreq: group[0].sreq,
        round: group[0].round });
    });
    // Along the pruning path (sparsity, then round), not by x: measured speedup and latency
    // need not grow with sparsity.
    return out.sort(function (a, b) { return a.sreq - b.sreq || (a.round || 0) - (b.round || 0); });
  }
  function densePoint(rs, X, Y) {
    var seen = {}, models = rs.filter(function (r) {
      if (seen[r.did]) return false;
      seen[r.did] = true;
      return true;
    });
    var x = meanOf(models, X.dense), s = stat(models.map(function (r) { return Y.dense(r.dense); }));
    if (!finite(x) || !s) return null;
    return { x: x, y: s.mean, half: state.y === "drop" ? null : s.half, n: s.n, dense: true,
      runs: models };
  }
  function lines(g) {
    var by = new Map(), color = palette(), X = xAxis(), Y = yAxis();
    D.runs.forEach(function (r) {
      if (r.g !== g || !visible(r)) return;
      var n = lineName(r);
      if (!by.has(n)) by.set(n, []);
      by.get(n).push(r);
    });
    return Array.from(by.keys()).sort(natural).map(function (name) {
      var rs = by.get(name), pts = points(rs, X, Y.get);
      var head = pts.length ? densePoint(rs, X, Y) : null;
      var before = state.y === "acc" ? points(rs, X, YS[1].get) : [];
      var dense = head && state.y === "acc" ? [{ x: head.x, y: head.y }] : [];
      return { name: name, color: color(name, rs[0]), runs: rs,
        pts: (head ? [head] : []).concat(pts), before: before.length ? dense.concat(before) : [] };
    }).filter(function (l) { return l.pts.length; });
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
  // spec: {id, title, xlabel, ylabel, xlog, xfmt, diag, count,
  //        lines: [{name, color, dash, band, pts: [{x, y, half, tip}]}],
  //        dots: [{x, y, color, tip, click}]}
  function chart(parent, spec) {
    var W = 580, H = 330, L = 56, R = 16, T = 26, B = 40;
    var xs = [], ys = [];
    // The range holds points and runs; bands stop at the plot's edge (a t interval over two
    // seeds reaches 12.7 standard errors on each side).
    spec.lines.forEach(function (l) { l.pts.forEach(function (p) {
      if (finite(p.x) && finite(p.y)) { xs.push(p.x); ys.push(p.y); } }); });
    spec.dots.forEach(function (d) {
      if (finite(d.x) && finite(d.y)) { xs.push(d.x); ys.push(d.y); }
    });
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, class: "chart", "data-chart": spec.id,
      role: "img" }, parent);
    svg("text", { x: L, y: 16, "font-weight": "600" }, root).textContent = spec.title;
    bands[spec.id] = 0;
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
    if (spec.xlog) {
      var e0 = Math.ceil(x0), e1 = Math.floor(x1), every = Math.max(1, Math.ceil((e1 - e0 + 1) / 9));
      for (var e = e0; e <= e1; e += every) xt.push(Math.pow(2, e));
    }
    var fmt = spec.xfmt || function (t) { return +t.toFixed(4); };
    xt.forEach(function (t) {
      var X = sx(t);
      svg("line", { x1: X, x2: X, y1: T, y2: H - B }, axis);
      svg("text", { x: X, y: H - B + 14, "text-anchor": "middle", fill: "#444", stroke: "none" },
        root).textContent = fmt(+t.toFixed(6));
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
      if (l.band && pts.some(function (p) { return p.n > 1; })) {
        var half = function (p) { return finite(p.half) ? p.half : 0; };
        var cy = function (v) { return sy(Math.max(y0, Math.min(y1, v))); };  // kept in the plot
        var upper = pts.map(function (p) { return sx(p.x) + "," + cy(p.y + half(p)); });
        var lower = pts.slice().reverse().map(function (p) {
          return sx(p.x) + "," + cy(p.y - half(p));
        });
        svg("polygon", { points: upper.concat(lower).join(" "), fill: l.color, "fill-opacity": 0.15,
          stroke: "none", class: "band" }, root);
        bands[spec.id] += 1;
      }
      svg("polyline", { points: pts.map(function (p) { return sx(p.x) + "," + sy(p.y); }).join(" "),
        fill: "none", stroke: l.color, "stroke-width": l.dash ? 1.2 : 2,
        "stroke-dasharray": l.dash ? "5 4" : "none", "stroke-opacity": l.dash ? 0.75 : 1,
        "data-series-name": l.name }, root);
      pts.forEach(function (p) {
        var c = svg("circle", { cx: sx(p.x), cy: sy(p.y), r: l.dash ? 2.5 : p.dense ? 5 : 4,
          class: "pt", fill: l.dash || p.dense ? "#fff" : l.color, stroke: l.color,
          "stroke-width": p.dense ? 2 : 1.5 }, root);
        if (p.tip) bindTip(c, p.tip);
      });
    });
    spec.dots.forEach(function (d) {
      if (!(finite(d.x) && finite(d.y))) return;
      var c = svg("circle", { cx: sx(d.x), cy: sy(d.y), r: 2.4, fill: d.color, "fill-opacity": 0.5,
        stroke: "none", class: "run" }, root);
      bindTip(c, d.tip);
      if (d.click) { c.style.cursor = "pointer"; c.addEventListener("click", d.click); }
    });
    var n = spec.count !== undefined ? spec.count : series;
    counts[spec.id] = n;
    root.setAttribute("data-series", String(n));
    return root;
  }
  function swatch(parent, kind, color) {
    var s = svg("svg", { width: 22, height: 10, viewBox: "0 0 22 10", class: "sw" }, parent);
    if (kind === "band") svg("rect", { x: 0, y: 1, width: 22, height: 8, fill: color,
      "fill-opacity": 0.25 }, s);
    if (kind === "line" || kind === "dash") svg("line", { x1: 0, x2: 22, y1: 5, y2: 5,
      stroke: color, "stroke-width": kind === "line" ? 2 : 1.2,
      "stroke-dasharray": kind === "dash" ? "5 4" : "none" }, s);
    if (kind === "line") svg("circle", { cx: 11, cy: 5, r: 3.5, fill: color }, s);
    if (kind === "dense") svg("circle", { cx: 11, cy: 5, r: 4, fill: "#fff", stroke: color,
      "stroke-width": 2 }, s);
    if (kind === "run") svg("circle", { cx: 11, cy: 5, r: 2.4, fill: color, "fill-opacity": 0.6 }, s);
  }
  function entry(parent, kind, color, text, title) {
    var span = html("span", null, parent, "entry");
    swatch(span, kind, color);
    html("span", text, span, "name");
    span.title = title;
    return span;
  }
  function legend(parent, ls, withBefore, withBand) {
    var box = html("div", null, parent, "legend");
    var key = html("div", null, box, "styles");
    var Y = yAxis(), grey = "#6b7280";
    entry(key, "line", grey, "mean " + Y.label, "solid line, filled dots: the mean over the " +
      "runs at each point (seeds pooled only within a line)");
    if (withBefore) {
      entry(key, "dash", grey, "before recovery", "dashed line, open dots: mean test accuracy " +
        "right after pruning, before recovery");
    }
    if (withBand) {
      entry(key, "band", grey, Math.round(100 * D.level) + "% CI (n > 1)", "shaded band: " +
        Math.round(100 * D.level) + "% t confidence interval of the mean, where a point has " +
        "more than one run");
    }
    entry(key, "dense", grey, "own dense models", "open circle at the left end of a line: the " +
      "dense models its runs started from");
    entry(key, "run", grey, "one run", "small dot: one run; click it for its per-layer sparsity");
    var names = html("div", null, box, "lines");
    ls.forEach(function (l) {
      var n = l.runs.length;
      entry(names, "line", l.color, l.name, l.name + "\n" + n + " run" + (n > 1 ? "s" : "") +
        "\nconfig:\n" + configOf(l.runs).join("\n")).setAttribute("data-line", l.name);
    });
  }
  function runDot(r, x, y, color) {
    return { x: x, y: y, color: color, tip: function () { return runLines(r); },
      click: function () { state.run = r.id; drawLayers(); } };
  }
  function cardChart(card, g) {
    var X = xAxis(), Y = yAxis(), ls = lines(g), spec = [], dots = [];
    ls.forEach(function (l) {
      spec.push({ name: l.name, color: l.color, band: true, pts: l.pts.map(function (p) {
        return { x: p.x, y: p.y, half: p.half, n: p.n, dense: p.dense,
          tip: function () { return pointLines(l, p); } };
      }) });
      if (l.before.length) spec.push({ name: l.name + " (before recovery)", color: l.color,
        dash: true, pts: l.before });
      l.runs.forEach(function (r) { dots.push(runDot(r, r[X.id], Y.get(r), l.color)); });
    });
    var id = "card-" + g;
    chart(card, { id: id, title: Y.label + " vs " + X.label, xlabel: X.axis,
      ylabel: Y.axis, xlog: X.log, xfmt: X.fmt, lines: spec, dots: dots });
    legend(card, ls, ls.some(function (l) { return l.before.length; }), bands[id] > 0);
  }

  function drawLayers() {
    var card = layersCard;
    card.textContent = "";
    var r = runsById[state.run];
    html("h3", "Per-layer sparsity" + (r ? " of run " + r.id : ""), card);
    if (!r || !Object.keys(r.layers).length) {
      html("p", "Click a run (small dot) in a chart to see its per-layer sparsity.", card, "note");
      counts["layers"] = 0;
      publish();
      return;
    }
    html("p", r.k.series + " \u00b7 " + D.groups[r.g].title + " \u00b7 requested " +
      num(r.sreq, 4) + " \u00b7 achieved " + num(r.sach, 4), card, "note");
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
      label.textContent = n.length > 32 ? "\u2026" + n.slice(-31) : n;
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
    bands = {};
    var shown = D.runs.filter(visible);
    D.groups.forEach(function (grp, g) {
      if (!shown.some(function (r) { return r.g === g; })) return;
      var card = html("div", null, root, "card");
      html("h3", grp.title, card);
      cardChart(card, g);
    });
    var sc = html("div", null, root, "card");
    html("h3", "Requested vs achieved sparsity", sc);
    var strategies = new Set(shown.map(function (r) { return D.series[r.s].strategy; }));
    chart(sc, { id: "sparsity", title: "achieved vs requested (dotted: equal)", diag: true,
      xlabel: "requested sparsity", ylabel: "achieved sparsity", lines: [], count: strategies.size,
      dots: shown.map(function (r) { return runDot(r, r.sreq, r.sach, D.series[r.s].color); }) });
    layersCard = html("div", null, root, "card");
    drawLayers();
    var strategy = state.filters.strategy, data = state.filters.data;
    document.querySelectorAll("tr[data-strategy]").forEach(function (tr) {
      var s = tr.getAttribute("data-strategy");
      tr.style.display = !strategy || s === "dense" || s === "" || strategy.has(s) ? "" : "none";
    });
    document.querySelectorAll("section[data-data]").forEach(function (sec) {
      sec.style.display = !data || data.has(sec.getAttribute("data-data")) ? "" : "none";
    });
    publish();
  }
  // What was drawn and how it fits, in <body> attributes (the end-to-end test reads them).
  function publish() {
    document.body.setAttribute("data-charts", JSON.stringify(counts));
    document.body.setAttribute("data-bands", JSON.stringify(bands));
    document.body.setAttribute("data-state", JSON.stringify({ x: state.x, y: state.y,
      group: state.group }));
    document.body.setAttribute("data-layout", JSON.stringify(layout()));
    document.body.setAttribute("data-ready", "1");
  }
  function layout() {
    var out = { entries: 0, wrapped: 0, truncated: 0, textOutside: 0, cardOverflow: 0,
      pageOverflow: document.documentElement.scrollWidth > document.documentElement.clientWidth };
    document.querySelectorAll(".legend .entry").forEach(function (e) {
      var line = parseFloat(getComputedStyle(e).lineHeight) || 18;
      out.entries += 1;
      if (e.getBoundingClientRect().height > 1.5 * line) out.wrapped += 1;
      var name = e.querySelector(".name");
      if (name.scrollWidth > name.clientWidth + 1) out.truncated += 1;
    });
    document.querySelectorAll("svg.chart").forEach(function (s) {
      var box = s.getBoundingClientRect();
      s.querySelectorAll("text").forEach(function (t) {
        var b = t.getBoundingClientRect();
        if (b.width && (b.left < box.left - 1 || b.right > box.right + 1 ||
          b.top < box.top - 1 || b.bottom > box.bottom + 1)) out.textOutside += 1;
      });
    });
    document.querySelectorAll(".card, #controls, #filters").forEach(function (c) {
      if (c.scrollWidth > c.clientWidth + 1) out.cardOverflow += 1;
    });
    // Wide tables scroll inside their section rather than clip; counted, not an error.
    out.tablesScroll = Array.prototype.filter.call(document.querySelectorAll("section.group"),
      function (s) { return s.scrollWidth > s.clientWidth + 1; }).length;
    return out;
  }
  // The view lives in the URL hash too (#x=size&y=drop&group=recovery&strategy=a,b), so a
  // picked and filtered view can be shared.
  function readHash() {
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      var kv = part.split("=");
      if (kv.length !== 2) return;
      var key = decodeURIComponent(kv[0]), value = decodeURIComponent(kv[1]);
      if (key === "x" && XS.some(function (x) { return x.id === value; })) state.x = value;
      else if (key === "y" && YS.some(function (y) { return y.id === value; })) state.y = value;
      else if (key === "group" && GROUPS.some(function (g) { return g.key === value; })) {
        state.group = value;
      } else if (state.filters[key]) {
        var wanted = kv[1].split(",").map(decodeURIComponent);
        state.filters[key] = new Set(keyInfo[key].values.filter(function (v) {
          return wanted.indexOf(v) >= 0;
        }));
      }
    });
  }
  function writeHash() {
    var parts = ["x=" + state.x, "y=" + state.y, "group=" + encodeURIComponent(state.group)];
    D.keys.forEach(function (k) {
      var set = state.filters[k.key];
      if (set.size === k.values.length) return;
      parts.push(encodeURIComponent(k.key) + "=" + Array.from(set).map(encodeURIComponent).join(","));
    });
    history.replaceState(null, "", "#" + parts.join("&"));
  }
  function picker(id, options, key) {
    var select = document.getElementById(id);
    options.forEach(function (o) {
      var opt = html("option", o.label, select);
      opt.value = o.id;
    });
    select.value = state[key];
    select.addEventListener("change", function () {
      state[key] = select.value;
      writeHash();
      draw();
    });
  }
  function filters() {
    var root = document.getElementById("filters");
    D.keys.forEach(function (k) {
      var set = state.filters[k.key];
      var box = html("fieldset", null, root);
      box.setAttribute("data-key", k.key);
      html("legend", k.key, box);
      k.values.forEach(function (v) {
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
    });
  }
  try {
    readHash();
    picker("pick-x", XS.map(function (x) { return { id: x.id, label: x.label }; }), "x");
    picker("pick-y", YS.map(function (y) { return { id: y.id, label: y.label }; }), "y");
    picker("pick-group", GROUPS.map(function (g) { return { id: g.key, label: g.name }; }),
      "group");
    filters();
    draw();
  } catch (e) {
    errors.push(String(e && e.stack || e));
    flushErrors();
    throw e;
  }
})();
