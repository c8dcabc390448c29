// evaltrace HTML report: the charts, drawn as plain SVG strings (no library, nothing loaded from the network).
// Each function returns markup; report.js puts it in the page. Values are escaped; sizes are in SVG user units and
// the SVG scales to its container's width.
var ETCharts = (function () {
  'use strict';
  var PALETTE = ['#6366f1', '#0ea5e9', '#10b981', '#f59e0b', '#ef4444', '#a855f7', '#14b8a6', '#64748b'];

  function esc(v) {
    return String(v === null || v === undefined ? '' : v).replace(/[&<>"']/g, function (ch) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[ch];
    });
  }
  function color(i) { return PALETTE[i % PALETTE.length]; }
  function fmtNum(v) {
    if (v === null || v === undefined || isNaN(v)) return '';
    var a = Math.abs(v);
    if (a === 0) return '0';
    if (a >= 100) return v.toFixed(0);
    if (a >= 1) return v.toFixed(2).replace(/\.?0+$/, '');
    return v.toPrecision(2);
  }
  function niceMax(v) {
    if (!(v > 0)) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var m = v / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }
  function svgOpen(w, h, cls, label) {
    return '<svg class="chart ' + (cls || '') + '" viewBox="0 0 ' + w + ' ' + h + '" role="img" aria-label="' +
      esc(label || '') + '" preserveAspectRatio="xMidYMid meet">';
  }
  function legend(series, always) {
    if (series.length < (always ? 1 : 2)) return '';
    return '<div class="legend">' + series.map(function (s, i) {
      return '<span><i style="background:' + (s.color || color(i)) + '"></i>' + esc(s.name) + '</span>';
    }).join('') + '</div>';
  }

  // A line chart of numbered points. opts: series [{name, points: [[x, y]], color, dashed}], xLabels (by x, for a
  // categorical axis of runs), xMin/xMax/yMin/yMax, yFmt, xFmt, title, step ('end' for step functions).
  function lineChart(opts) {
    var W = opts.width || 420, H = opts.height || 200, L = 44, R = 10, T = opts.yTitle ? 22 : 10, B = opts.xTitle ? 38 : 26;
    var series = (opts.series || []).filter(function (s) { return s.points && s.points.length; });
    var xs = [], ys = [];
    series.forEach(function (s) { s.points.forEach(function (p) { xs.push(p[0]); if (p[1] !== null) ys.push(p[1]); }); });
    if (!xs.length) return '<p class="muted">no data</p>';
    var xMin = opts.xMin !== undefined ? opts.xMin : Math.min.apply(null, xs);
    var xMax = opts.xMax !== undefined ? opts.xMax : Math.max.apply(null, xs);
    if (xMax === xMin) { xMin -= 0.5; xMax += 0.5; }
    var yMin = opts.yMin !== undefined ? opts.yMin : Math.min(0, Math.min.apply(null, ys));
    var yMax = opts.yMax !== undefined ? opts.yMax : niceMax(Math.max.apply(null, ys));
    if (yMax === yMin) yMax = yMin + 1;
    var yFmt = opts.yFmt || fmtNum, xFmt = opts.xFmt || fmtNum;
    // The left margin fits the longest y label (about 6 px a character at the ticks' size), so none is cut.
    for (var q = 0; q <= 4; q++) L = Math.max(L, 8 + 6 * String(yFmt(yMin + (yMax - yMin) * q / 4)).length);
    function X(v) { return L + (v - xMin) / (xMax - xMin) * (W - L - R); }
    function Y(v) { return T + (1 - (v - yMin) / (yMax - yMin)) * (H - T - B); }
    var out = svgOpen(W, H, 'line', opts.title);
    for (var k = 0; k <= 4; k++) {
      var yv = yMin + (yMax - yMin) * k / 4;
      out += '<line class="grid" x1="' + L + '" x2="' + (W - R) + '" y1="' + Y(yv).toFixed(1) + '" y2="' + Y(yv).toFixed(1) +
        '"/><text class="tick" x="' + (L - 4) + '" y="' + (Y(yv) + 3).toFixed(1) + '" text-anchor="end">' + esc(yFmt(yv)) + '</text>';
    }
    if (opts.xLabels) {
      var every = Math.max(1, Math.ceil(opts.xLabels.length / 6));
      opts.xLabels.forEach(function (label, i) {
        var last = opts.xLabels.length - 1;
        if (i % every && i !== last) return;
        // The first and last labels are anchored inward, so that neither is cut at the chart's edge.
        var anchor = last > 0 && i === last ? 'end' : i === 0 && last > 0 ? 'start' : 'middle';
        out += '<text class="tick" x="' + X(i).toFixed(1) + '" y="' + (H - B + 14) + '" text-anchor="' + anchor + '">' + esc(label) + '</text>';
      });
    } else {
      for (var j = 0; j <= 4; j++) {
        var xv = xMin + (xMax - xMin) * j / 4;
        out += '<text class="tick" x="' + X(xv).toFixed(1) + '" y="' + (H - B + 14) + '" text-anchor="middle">' + esc(xFmt(xv)) + '</text>';
      }
    }
    if (opts.xTitle) out += '<text class="axis" x="' + ((L + W - R) / 2) + '" y="' + (H - 4) + '" text-anchor="middle">' + esc(opts.xTitle) + '</text>';
    if (opts.yTitle) out += '<text class="axis" x="4" y="2" dominant-baseline="hanging">' + esc(opts.yTitle) + '</text>';
    series.forEach(function (s, i) {
      var c = s.color || color(i), d = '', prev = null;
      s.points.forEach(function (p) {
        if (p[1] === null || p[1] === undefined) { prev = null; return; }
        var px = X(p[0]).toFixed(1), py = Y(p[1]).toFixed(1);
        if (prev && opts.step === 'end') d += 'L' + px + ' ' + prev[1];
        d += (prev ? 'L' : 'M') + px + ' ' + py;
        prev = [px, py];
      });
      out += '<path class="series" d="' + d + '" stroke="' + c + '"' + (s.dashed ? ' stroke-dasharray="5 3"' : '') + '/>';
      if (s.points.length <= 60) {
        s.points.forEach(function (p, k2) {
          if (p[1] === null || p[1] === undefined) return;
          var tip = (s.name ? s.name + ': ' : '') + yFmt(p[1]) + (opts.xLabels ? ' · ' + (opts.tips ? opts.tips[p[0]] : opts.xLabels[p[0]]) : '');
          out += '<circle class="pt' + (s.hollow && s.hollow[k2] ? ' hollow' : '') + '" cx="' + X(p[0]).toFixed(1) + '" cy="' + Y(p[1]).toFixed(1) +
            '" r="3" fill="' + c + '" stroke="' + c + '"><title>' + esc(tip) + '</title></circle>';
        });
      }
    });
    return '<figure class="chart-box">' + (opts.title ? '<figcaption>' + esc(opts.title) + '</figcaption>' : '') +
      out + '</svg>' + legend(series, opts.legend) + '</figure>';
  }

  // A histogram of values. opts: values, bins (default 10), min/max (default: the values' range), fmt, title, color.
  function histogram(opts) {
    var values = (opts.values || []).filter(function (v) { return v !== null && v !== undefined && !isNaN(v); });
    if (!values.length) return '';
    var lo = opts.min !== undefined ? opts.min : Math.min.apply(null, values);
    var hi = opts.max !== undefined ? opts.max : Math.max.apply(null, values);
    var n = opts.bins || 10;
    if (hi === lo) { hi = lo + 1; n = 1; }
    var counts = []; for (var b = 0; b < n; b++) counts.push(0);
    values.forEach(function (v) { counts[Math.min(n - 1, Math.max(0, Math.floor((v - lo) / (hi - lo) * n)))] += 1; });
    var W = opts.width || 420, H = opts.height || 160, L = 36, R = 8, T = 8, B = 24;
    var top = niceMax(Math.max.apply(null, counts)), bw = (W - L - R) / n;
    // Bin edges with as many decimals as the range needs (durations of 0.331 and 0.334 s are not all "0.33").
    var digits = Math.max(0, Math.min(6, Math.ceil(-Math.log10((hi - lo) / n)) + 1));
    var fmt = opts.fmt || function (v) { return digits > 3 ? fmtNum(v) : v.toFixed(digits); };
    var out = svgOpen(W, H, 'hist', opts.title);
    (top % 2 ? [0, top] : [0, top / 2, top]).forEach(function (v) {  // counts: whole ticks only
      var y = T + (1 - v / top) * (H - T - B);
      out += '<line class="grid" x1="' + L + '" x2="' + (W - R) + '" y1="' + y.toFixed(1) + '" y2="' + y.toFixed(1) +
        '"/><text class="tick" x="' + (L - 4) + '" y="' + (y + 3).toFixed(1) + '" text-anchor="end">' + fmtNum(v) + '</text>';
    });
    counts.forEach(function (c, i) {
      var h = c / top * (H - T - B), a = lo + (hi - lo) * i / n, z = lo + (hi - lo) * (i + 1) / n;
      out += '<rect class="bar" x="' + (L + i * bw + 1).toFixed(1) + '" y="' + (H - B - h).toFixed(1) + '" width="' +
        Math.max(bw - 2, 1).toFixed(1) + '" height="' + h.toFixed(1) + '" fill="' + (opts.color || color(0)) + '"><title>' +
        esc(fmt(a) + ' – ' + fmt(z) + ': ' + c + ' case(s)') + '</title></rect>';
    });
    [lo, (lo + hi) / 2, hi].forEach(function (v, i) {
      out += '<text class="tick" x="' + (L + (W - L - R) * i / 2).toFixed(1) + '" y="' + (H - 8) + '" text-anchor="' +
        ['start', 'middle', 'end'][i] + '">' + esc(fmt(v)) + '</text>';
    });
    return '<figure class="chart-box">' + (opts.title ? '<figcaption>' + esc(opts.title) + '</figcaption>' : '') +
      out + '</svg></figure>';
  }

  // A scatter plot. opts: points [{x, y, cls, tip, key}], xFmt, yFmt, xTitle, yTitle, title. A point with a key is
  // a link (data-key) that report.js opens.
  function scatter(opts) {
    var pts = opts.points || [];
    if (!pts.length) return '';
    var W = opts.width || 420, H = opts.height || 220, L = 62, R = 10, T = opts.yTitle ? 22 : 10, B = 38;
    var xMax = niceMax(Math.max.apply(null, pts.map(function (p) { return p.x; })));
    var yMax = niceMax(Math.max.apply(null, pts.map(function (p) { return p.y; })));
    var xFmt = opts.xFmt || fmtNum, yFmt = opts.yFmt || fmtNum;
    function X(v) { return L + v / xMax * (W - L - R); }
    function Y(v) { return T + (1 - v / yMax) * (H - T - B); }
    var out = svgOpen(W, H, 'scatter', opts.title);
    for (var k = 0; k <= 4; k++) {
      out += '<line class="grid" x1="' + L + '" x2="' + (W - R) + '" y1="' + Y(yMax * k / 4).toFixed(1) + '" y2="' +
        Y(yMax * k / 4).toFixed(1) + '"/><text class="tick" x="' + (L - 4) + '" y="' + (Y(yMax * k / 4) + 3).toFixed(1) +
        '" text-anchor="end">' + esc(yFmt(yMax * k / 4)) + '</text><text class="tick" x="' + X(xMax * k / 4).toFixed(1) +
        '" y="' + (H - B + 14) + '" text-anchor="middle">' + esc(xFmt(xMax * k / 4)) + '</text>';
    }
    if (opts.xTitle) out += '<text class="axis" x="' + ((L + W - R) / 2) + '" y="' + (H - 4) + '" text-anchor="middle">' + esc(opts.xTitle) + '</text>';
    if (opts.yTitle) out += '<text class="axis" x="4" y="2" dominant-baseline="hanging">' + esc(opts.yTitle) + '</text>';
    pts.forEach(function (p) {
      out += '<circle class="dot ' + esc(p.cls || '') + '" cx="' + X(p.x).toFixed(1) + '" cy="' + Y(p.y).toFixed(1) +
        '" r="3"' + (p.key ? ' data-key="' + esc(p.key) + '"' : '') + '><title>' + esc(p.tip || '') + '</title></circle>';
    });
    return '<figure class="chart-box">' + (opts.title ? '<figcaption>' + esc(opts.title) + '</figcaption>' : '') +
      out + '</svg></figure>';
  }

  // A horizontal bar for a fraction in [0, 1], as inline HTML (tables use it for pass rates and ratios).
  function rateBar(v, cls) {
    if (v === null || v === undefined) return '';
    var w = Math.max(0, Math.min(1, v)) * 100;
    return '<span class="rate-bar ' + (cls || '') + '"><i style="width:' + w.toFixed(1) + '%"></i></span>';
  }

  // A bar centred on zero for a delta, as inline HTML: right and green when `good`, left and red otherwise.
  function deltaBar(delta, scale, good) {
    if (delta === null || delta === undefined || !scale) return '<span class="delta-bar"></span>';
    var w = Math.min(1, Math.abs(delta) / scale) * 50;
    var side = delta >= 0 ? 'left:50%' : 'right:50%';
    return '<span class="delta-bar"><i class="' + (good ? 'up' : 'down') + '" style="' + side + ';width:' + w.toFixed(1) + '%"></i></span>';
  }

  // pydantic-evals' ConfusionMatrix: matrix[expected][predicted], as a table shaded by count; the diagonal green.
  function confusionMatrix(a) {
    var labels = a.class_labels || [], m = a.matrix || [], top = 0;
    m.forEach(function (row) { row.forEach(function (v) { top = Math.max(top, v); }); });
    var head = '<tr><th class="corner">expected ↓ / predicted →</th>' + labels.map(function (l) { return '<th>' + esc(l) + '</th>'; }).join('') + '</tr>';
    var rows = labels.map(function (l, i) {
      return '<tr><th>' + esc(l) + '</th>' + labels.map(function (_, j) {
        var v = (m[i] || [])[j] || 0, alpha = top ? (0.12 + 0.88 * v / top) : 0;
        var hue = i === j ? '16,185,129' : '239,68,68';
        return '<td class="cm-cell' + (i === j ? ' diag' : '') + '" style="background:rgba(' + hue + ',' + (v ? alpha.toFixed(2) : 0) +
          ')" title="expected ' + esc(l) + ', predicted ' + esc(labels[j]) + ': ' + v + '">' + v + '</td>';
      }).join('') + '</tr>';
    });
    return '<table class="confusion">' + head + rows.join('') + '</table>';
  }

  function analysis(a) {
    var body;
    if (a.type === 'confusion_matrix') {
      body = confusionMatrix(a);
    } else if (a.type === 'precision_recall') {
      body = lineChart({
        series: (a.curves || []).map(function (c) {
          return { name: c.name + (c.auc !== null && c.auc !== undefined ? ' (AUC ' + fmtNum(c.auc) + ')' : ''),
            points: (c.points || []).map(function (p) { return [p.recall, p.precision]; }) };
        }),
        xMin: 0, xMax: 1, yMin: 0, yMax: 1, xTitle: 'recall', yTitle: 'precision', legend: true,
      });
    } else if (a.type === 'line_plot') {
      body = lineChart({
        series: (a.curves || []).map(function (c) {
          return { name: c.name, dashed: c.style === 'dashed', points: (c.points || []).map(function (p) { return [p.x, p.y]; }) };
        }),
        xMin: a.x_range ? a.x_range[0] : undefined, xMax: a.x_range ? a.x_range[1] : undefined,
        yMin: a.y_range ? a.y_range[0] : undefined, yMax: a.y_range ? a.y_range[1] : undefined,
        xTitle: a.x_label, yTitle: a.y_label, legend: true,
        step: (a.curves || []).some(function (c) { return c.step; }) ? 'end' : undefined,
      });
    } else if (a.type === 'scalar') {
      body = '<div class="scalar">' + esc(fmtNum(a.value)) + (a.unit ? '<span class="unit">' + esc(a.unit) + '</span>' : '') + '</div>';
    } else if (a.type === 'table') {
      body = '<table class="atable"><tr>' + (a.columns || []).map(function (c) { return '<th>' + esc(c) + '</th>'; }).join('') +
        '</tr>' + (a.rows || []).map(function (r) {
          return '<tr>' + r.map(function (v) { return '<td>' + esc(typeof v === 'number' ? fmtNum(v) : v) + '</td>'; }).join('') + '</tr>';
        }).join('') + '</table>';
    } else {
      body = '<pre>' + esc(JSON.stringify(a, null, 2)) + '</pre>';
    }
    return '<div class="analysis a-' + esc(a.type) + '"><h4>' + esc(a.title || a.type) + '</h4>' +
      (a.description ? '<div class="muted">' + esc(a.description) + '</div>' : '') + body + '</div>';
  }

  return {
    color: color, fmtNum: fmtNum, lineChart: lineChart, histogram: histogram, scatter: scatter, rateBar: rateBar,
    deltaBar: deltaBar, confusionMatrix: confusionMatrix, analysis: analysis,
  };
})();
