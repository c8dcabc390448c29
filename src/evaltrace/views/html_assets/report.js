// evaltrace HTML report: renders the data blocks of this file; loads nothing from the network.
// The case list comes from one plain JSON block and is drawn at once; the cases' details and spans are gzipped in
// chunks and inflated (DecompressionStream) only when one of their cases is opened. The views other than the case
// list (trends, comparison, distributions) are drawn when their tab is first shown.
(function () {
  'use strict';
  var C = ETCharts;
  var DATA = JSON.parse(document.getElementById('et-data').textContent);
  var META = DATA.meta || {};
  var CASES = DATA.cases || [];
  var ANAMES = DATA.assertions || [], SNAMES = DATA.scores || [];
  var CHUNK = DATA.chunk || 64;
  var SUITES = META.suites || [];
  var BY_ANCHOR = {}, BY_KEY = {};
  CASES.forEach(function (c) {
    BY_ANCHOR[c.a] = c;
    var key = c.suite + '[' + c.case + ']';
    if (!(key in BY_KEY)) BY_KEY[key] = c;
  });
  var PAGE = 500;  // rows drawn at first; more on demand, so 10,000 cases appear at once
  var state = { tab: 'cases', filter: 'all', suite: '', q: '', sort: 'order', desc: true, open: {}, limit: PAGE };
  var drawn = {};
  var currentColumns = [];

  // --- formatting ---------------------------------------------------------------------------------------------
  function esc(v) {
    return String(v === null || v === undefined ? '' : v).replace(/[&<>"']/g, function (ch) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[ch];
    });
  }
  function json(v) { return typeof v === 'string' ? v : JSON.stringify(v, null, 2); }
  function dur(s) {
    if (s === null || s === undefined) return '';
    return s >= 1 ? s.toFixed(2) + ' s' : (s * 1000).toFixed(s >= 0.001 ? 0 : 2) + ' ms';
  }
  function ms(v) { return v >= 1000 ? (v / 1000).toFixed(2) + ' s' : v >= 1 ? v.toFixed(0) + ' ms' : v.toFixed(2) + ' ms'; }
  function cost(v) {
    if (!v) return '$0';
    return '$' + (Math.abs(v) >= 0.01 ? v.toFixed(4) : v.toPrecision(2));
  }
  function num(v) { return (v || 0).toLocaleString('en-US'); }
  function pct(v) { return v === null || v === undefined ? '–' : (v * 100).toFixed(1) + '%'; }
  function signed(v, digits) { return v === null || v === undefined ? '–' : (v >= 0 ? '+' : '') + v.toFixed(digits); }
  function badge(status) { return '<span class="badge s-' + esc(status) + '">' + esc(status) + '</span>'; }
  function isFailure(c) { return c.status === 'failed' || c.status === 'error'; }
  function suiteFunction(id) { var k = id.indexOf('['); return k < 0 ? id : id.slice(0, k); }
  function suiteParams(id) { var k = id.indexOf('['); return k < 0 ? '' : id.slice(k); }
  function shortDate(iso) { return iso ? String(iso).replace('T', ' ').slice(5, 16) : ''; }
  function caseLink(key, text) {
    var c = BY_KEY[key];
    return c ? '<a href="#' + esc(c.a) + '" class="mono">' + esc(text || key) + '</a>' : '<span class="mono">' + esc(text || key) + '</span>';
  }

  // --- lazy data: gzipped chunks of case details and spans -----------------------------------------------------
  var chunkPromises = {}, loaded = {};
  var SHARED_REF = '__et_ref__';
  function inflate(id) {
    var el = document.getElementById(id);
    if (!el) return Promise.resolve(null);
    if (typeof DecompressionStream === 'undefined') {
      return Promise.reject(new Error('this browser cannot inflate the report\'s data (no DecompressionStream)'));
    }
    var bin = atob(el.textContent), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
    return new Response(stream).text().then(JSON.parse);
  }
  // A chunk holds CHUNK cases and the long values their spans repeat, each once ({__et_ref__: index} in their place).
  function loadCase(i) {
    if (loaded[i]) return Promise.resolve(loaded[i]);
    var k = Math.floor(i / CHUNK);
    if (!chunkPromises[k]) chunkPromises[k] = inflate('et-z' + k);
    return chunkPromises[k].then(function (chunk) {
      chunk = chunk || { shared: [], cases: [] };
      chunk.cases.forEach(function (data, j) {
        var idx = k * CHUNK + j;
        if (loaded[idx]) return;
        (data.spans || []).forEach(function (s) {
          Object.keys(s.a || {}).forEach(function (key) {
            var v = s.a[key];
            if (v && typeof v === 'object' && !Array.isArray(v) && SHARED_REF in v) s.a[key] = chunk.shared[v[SHARED_REF]];
          });
        });
        loaded[idx] = data;
      });
      return loaded[i] || { detail: {}, spans: [] };
    });
  }

  // --- the verdict header --------------------------------------------------------------------------------------
  function gateHtml(g) {
    var text = g.name + ': ' + (g.passed ? 'PASS' : 'FAIL') + ' (actual ' + json(g.actual) + ', threshold ' +
      json(g.threshold) + ')';
    return '<span class="gate ' + (g.passed ? 'ok' : 'ko') + '" title="' + esc(g.detail || '') + '">' + esc(text) + '</span>';
  }
  function allGates() {
    var gates = [];
    SUITES.forEach(function (s) { (s.gates || []).forEach(function (g) { gates.push(g); }); });
    ((META.session || {}).gates || []).forEach(function (g) { gates.push(g); });
    return gates;
  }
  var WORDS = { passed: 'Passed', failed: 'Failed', 'gate failed': 'Gate failed', incomplete: 'Incomplete' };
  function verdictHeader() {
    var v = META.verdict || { word: 'passed', failing: 0, ungated: 0, gated: 0, gates: 0, gates_failed: 0 };
    var s = (META.session || {}).stats || {}, u = s.usage || {};
    var why = [];
    if (v.word === 'incomplete') {
      why.push(((META.merge || {}).problems || ['the run was interrupted, or some expected cases did not run']).join('; '));
    }
    var stopped = [[(META.cancelled || []).length, ' cancelled while running'], [(META.not_started || []).length, ' never started']];
    stopped.forEach(function (k) { if (k[0]) why.push(k[0] + ' case' + (k[0] > 1 ? 's' : '') + k[1]); });
    if (v.ungated) why.push(v.ungated + ' failing case' + (v.ungated > 1 ? 's' : '') + ' outside any gate');
    if (v.gates) {
      why.push(v.gates_failed ? v.gates_failed + ' of ' + v.gates + ' gates failed' : v.gates > 1 ? 'all ' + v.gates + ' gates pass' : 'the gate passes');
    }
    if (v.gated) why.push(v.gated + ' failing case' + (v.gated > 1 ? 's' : '') + ' under gates' + (v.word === 'passed' ? ', tolerated by them' : ''));
    if (!v.failing && v.word === 'passed') why.push('every case passed');
    var gates = allGates().sort(function (a, b) { return a.passed - b.passed; });
    var h = '<header class="verdict v-' + esc(v.word.replace(' ', '-')) + '" id="et-verdict" data-verdict="' + esc(v.word) + '">' +
      '<div class="vword">' + esc(WORDS[v.word] || v.word) + '</div><div class="vbody"><div class="vwhy">' + esc(why.join(' · ')) + '</div>' +
      '<div class="summary-stats"><span>' + num(s.cases) + ' cases</span><span class="ok">' + num(s.passed) + ' passed</span>' +
      '<span class="' + (v.ungated ? 'ko' : 'tolerated') + '">' + num(s.failed) + ' failed</span><span>' + num(s.error) + ' error</span>' +
      '<span>' + num(u.input_tokens) + ' in / ' + num(u.output_tokens) + ' out tokens</span><span>' + cost(u.cost_usd) + '</span>' +
      costNote(u) + '</div>' +
      (gates.length ? '<div class="vgates">' + gates.map(function (g) {
        return '<span class="gate-scope muted">' + esc(g.scope === 'session' ? 'session' : suiteFunction(g.scope).split('::').pop() + suiteParams(g.scope)) + '</span>' + gateHtml(g);
      }).join(' ') + '</div>' : '') + '</div></header>';
    h += '<div class="muted runline">run ' + esc(META.run_id) + ' · started ' + esc(META.started_at) +
      (META.finished_at ? ' · finished ' + esc(META.finished_at) : '') + '</div>';
    if (META.rescored_from) h += '<p class="note">Re-scored from run ' + esc(META.rescored_from) + '. ' + esc(META.rescore_note || '') + '</p>';
    if (DATA.store_note) h += '<p class="note">' + esc(DATA.store_note) + '</p>';
    return h;
  }

  // --- suites (grouped by suite function) and their analyses ---------------------------------------------------
  // A suite run's experiment (report.json `suites[].experiment`): its analyses, report evaluator failures, link.
  function experimentOf(s) { return s.experiment || {}; }
  function analysesOf(s) { return experimentOf(s).analyses || s.analyses || []; }
  function suitesTable() {
    var groups = [], byFn = {};
    SUITES.forEach(function (s) {
      var fn = suiteFunction(s.suite);
      if (!(fn in byFn)) { byFn[fn] = []; groups.push(fn); }
      byFn[fn].push(s);
    });
    var rows = [];
    groups.forEach(function (fn) {
      var runs = byFn[fn];
      if (runs.length > 1 || suiteParams(runs[0].suite)) {
        rows.push('<tr class="suite-fn"><td colspan="9"><b>' + esc(fn.split('::').pop()) + '</b> <span class="muted mono">' + esc(fn) +
          '</span> <span class="muted">· ' + runs.length + ' suite run' + (runs.length > 1 ? 's' : '') + '</span></td></tr>');
      }
      runs.forEach(function (s) {
        var st = s.stats || {}, params = suiteParams(s.suite);
        var scores = Object.keys(st.score_averages || {}).map(function (k) {
          return '<div><span class="mono">' + esc(k) + '</span> ' + C.fmtNum(st.score_averages[k]) + '</div>';
        }).join('');
        // Analyses and report evaluators that raised are counted apart: a failure draws no analysis.
        var na = analysesOf(s).length, nf = (experimentOf(s).report_evaluator_failures || []).length;
        var n = na + nf;
        var label = [na ? na + ' analys' + (na > 1 ? 'es' : 'is') : '', nf ? nf + ' failed report evaluator' + (nf > 1 ? 's' : '') : '']
          .filter(Boolean).join(', ');
        var metrics = experimentOf(s).metric_averages || {};
        scores += Object.keys(metrics).map(function (k) {
          return '<div class="muted"><span class="mono">' + esc(k) + '</span> ' + C.fmtNum(metrics[k]) + ' (metric)</div>';
        }).join('');
        rows.push('<tr data-suite="' + esc(s.suite) + '"' + (params ? ' class="suite-run"' : '') + '><td><a href="#" class="suite-link" data-suite="' +
          esc(s.suite) + '">' + esc(params || s.name) + '</a>' + (params ? '' : '<div class="muted mono">' + esc(s.suite) + '</div>') +
          (n ? ' <a href="#" class="muted analyses-link" data-suite="' + esc(s.suite) + '">' + label + '</a>' : '') +
          '</td><td>' + esc(s.dataset) + '</td><td class="num">' + num(st.cases) + '</td><td class="num">' + num(st.passed) +
          '</td><td class="num">' + num(st.failed) + '</td><td class="num">' + num(st.error) + '</td><td class="num">' +
          C.rateBar(st.pass_rate, st.pass_rate === 1 ? 'full' : '') + ' ' + pct(st.pass_rate) + '</td><td>' + scores +
          '<div class="muted">' + cost((st.usage || {}).cost_usd) + '</div></td><td>' +
          ((s.gates || []).map(gateHtml).join('') || '<span class="muted">no gate</span>') + '</td></tr>');
      });
    });
    return '<h2>Suites</h2><table class="suites"><thead><tr><th>suite</th><th>dataset</th><th class="num">cases</th>' +
      '<th class="num">passed</th><th class="num">failed</th><th class="num">error</th><th class="num">pass rate</th>' +
      '<th>scores · cost</th><th>gates</th></tr></thead><tbody>' + rows.join('') + '</tbody></table>' + analysesSection();
  }

  function analysesSection() {
    var withAnalyses = SUITES.filter(function (s) { return analysesOf(s).length || (experimentOf(s).report_evaluator_failures || []).length; });
    if (!withAnalyses.length) return '';
    return '<h2>Analyses</h2>' + withAnalyses.map(function (s) {
      var x = experimentOf(s);
      var failures = (x.report_evaluator_failures || []).map(function (f) {
        return '<p class="note ko">report evaluator ' + esc(f.name) + ' raised: ' + esc(f.error_message) + '</p>';
      }).join('');
      return '<section class="suite-analyses" id="an-' + esc(s.suite) + '" data-suite="' + esc(s.suite) + '"><h3>' + esc(s.name) +
        ' <span class="muted mono">' + esc(s.suite) + '</span>' + (x.url ? ' <a href="' + esc(x.url) + '">experiment in Logfire</a>' : '') +
        '</h3>' + failures + '<div class="analyses">' + analysesOf(s).map(C.analysis).join('') + '</div></section>';
    }).join('');
  }

  // --- the case list ------------------------------------------------------------------------------------------
  function controls() {
    var failures = CASES.filter(isFailure).length;
    var suiteOptions = '<option value="">all suites</option>' + SUITES.map(function (s) {
      return '<option value="' + esc(s.suite) + '">' + esc(s.name + suiteParams(s.suite)) + '</option>';
    }).join('');
    var scoreOptions = SNAMES.map(function (n, k) { return '<option value="s' + k + '">score ' + esc(n) + '</option>'; }).join('');
    return '<h2>Cases</h2><div class="controls">' +
      '<label><input type="radio" name="et-filter" value="all" checked> all (' + CASES.length + ')</label>' +
      '<label><input type="radio" name="et-filter" value="failures" id="et-failures"> failures (' + failures + ')</label>' +
      '<label>suite <select id="et-suite">' + suiteOptions + '</select></label>' +
      '<label>sort <select id="et-sort"><option value="order">run order</option><option value="cost">cost</option>' +
      '<option value="tok">tokens</option><option value="dur">duration</option>' + scoreOptions + '</select></label>' +
      '<input type="search" id="et-q" placeholder="filter by case, node id or failure">' +
      '<span id="et-count" class="muted"></span></div><table class="cases"><thead id="et-head"></thead>' +
      '<tbody id="et-cases"></tbody></table><div id="et-more"></div>';
  }

  function sortValue(c, key) {
    if (key.charAt(0) === 's' && key !== 'sort') { var v = c.sc[+key.slice(1)]; return v === null || v === undefined ? -Infinity : v; }
    return c[key] || 0;
  }
  function visibleCases() {
    var q = state.q.toLowerCase();
    var list = CASES.filter(function (c) {
      if (state.filter === 'failures' && !isFailure(c)) return false;
      if (state.suite && c.suite !== state.suite) return false;
      if (q && (c.nodeid + ' ' + c.fail).toLowerCase().indexOf(q) < 0) return false;
      return true;
    });
    if (state.sort !== 'order') {
      var key = state.sort, sign = state.desc ? -1 : 1;
      list.sort(function (a, b) { return sign * (sortValue(a, key) - sortValue(b, key)) || a.i - b.i; });
    }
    return list;
  }
  // The score columns: the scores the shown cases have, at most 4 (the rest are in each case's details).
  function scoreColumns(list) {
    var seen = {};
    for (var r = 0; r < list.length; r++) {
      var sc = list[r].sc;
      for (var k = 0; k < sc.length; k++) if (sc[k] !== null && sc[k] !== undefined) seen[k] = true;
    }
    return Object.keys(seen).map(Number).sort(function (a, b) { return a - b; }).slice(0, 4);
  }
  function assertionChips(c) {
    var marks = c.as || '', held = 0, total = 0, chips = '';
    for (var k = 0; k < marks.length; k++) {
      if (marks[k] === '.') continue;
      total += 1; held += marks[k] === '1';
      chips += '<i class="' + (marks[k] === '1' ? 'y' : 'n') + '" title="' + esc(ANAMES[k]) + (marks[k] === '1' ? ' ✔' : ' ✗') + '"></i>';
    }
    return total ? '<span class="chips">' + chips + '</span> <span class="muted">' + held + '/' + total + '</span>' : '<span class="muted">–</span>';
  }
  function caseRow(c, cols) {
    var html = '<tr class="case-row' + (state.open[c.i] ? ' open' : '') + '" id="' + esc(c.a) + '" data-i="' + c.i +
      '"><td>' + badge(c.status) + '</td><td><span class="mono case-name">' + esc(c.case) + '</span><div class="muted mono">' +
      esc(c.nodeid) + '</div></td><td class="assertions">' + assertionChips(c) + '</td>' +
      cols.map(function (k) {
        var v = c.sc[k];
        return '<td class="num score">' + (v === null || v === undefined ? '' : C.rateBar(Math.max(0, Math.min(1, v)), 'score') + ' ' + C.fmtNum(v)) + '</td>';
      }).join('') + '<td class="num">' + dur(c.dur) + '</td><td class="num">' + num(c.tok) +
      '</td><td class="num">' + cost(c.cost) + '</td><td class="fail-text" title="' + esc(c.fail) + '">' +
      esc(c.fail) + (c.nfail > 1 ? ' <span class="muted">(+' + (c.nfail - 1) + ')</span>' : '') + '</td></tr>';
    if (state.open[c.i]) {
      html += '<tr class="detail-row" data-for="' + c.i + '"><td colspan="' + (7 + cols.length) + '"><div class="detail" id="det-' + c.i + '">' +
        (loaded[c.i] ? caseDetail(c, loaded[c.i]) : '<p class="muted">Loading…</p>') + '</div></td></tr>';
    }
    return html;
  }
  function renderCases() {
    var t0 = performance.now();
    var list = visibleCases();
    var cols = currentColumns = scoreColumns(list);
    document.getElementById('et-head').innerHTML = '<tr><th>status</th><th>case</th><th>assertions</th>' +
      cols.map(function (k) { return '<th class="num sortable" data-sort="s' + k + '">' + esc(SNAMES[k]) + '</th>'; }).join('') +
      '<th class="num sortable" data-sort="dur">duration</th><th class="num sortable" data-sort="tok">tokens</th>' +
      '<th class="num sortable" data-sort="cost">cost</th><th>first failure</th></tr>';
    var shown = list.slice(0, state.limit);
    document.getElementById('et-cases').innerHTML = shown.map(function (c) { return caseRow(c, cols); }).join('');
    var rest = list.length - shown.length;
    document.getElementById('et-more').innerHTML = rest > 0 ? '<button id="et-more-btn">show ' + Math.min(rest, PAGE) +
      ' more</button> <button id="et-all-btn">show all ' + num(list.length) + '</button> <span class="muted">' + num(rest) + ' not drawn yet</span>' : '';
    document.getElementById('et-count').textContent = list.length + ' shown';
    document.body.setAttribute('data-shown', String(list.length));
    shown.forEach(function (c) { if (state.open[c.i] && !loaded[c.i]) fillDetail(c); });
    window.__evaltraceRenderMs = performance.now() - t0;  // read by bench/bench_html.py
  }
  // Opens or closes one case's details in place: the rest of the list is not drawn again.
  function toggleCase(row) {
    var c = CASES[+row.getAttribute('data-i')];
    window.__evaltraceOpenAt = performance.now();
    state.open[c.i] = !state.open[c.i];
    row.classList.toggle('open', !!state.open[c.i]);
    var next = row.nextElementSibling;
    if (next && next.classList.contains('detail-row')) next.remove();
    if (!state.open[c.i]) return;
    var tmp = document.createElement('tbody');
    tmp.innerHTML = caseRow(c, currentColumns);
    row.after(tmp.children[1]);
    if (!loaded[c.i]) fillDetail(c);
    else window.__evaltraceDetailMs = performance.now() - window.__evaltraceOpenAt;
  }
  function fillDetail(c) {
    return loadCase(c.i).then(function (data) {
      var el = document.getElementById('det-' + c.i);
      if (el) el.innerHTML = caseDetail(c, data);
      window.__evaltraceDetailMs = performance.now() - (window.__evaltraceOpenAt || 0);  // read by bench_html.py
    }, function (e) {
      var el = document.getElementById('det-' + c.i);
      if (el) el.innerHTML = '<p class="note">' + esc(e.message) + '</p>';
    });
  }

  function evalRows(d) {
    var rows = [];
    function add(kind, obj) {
      Object.keys(obj || {}).forEach(function (name) {
        var r = obj[name] || {}, v = r.value;
        var mark = kind === 'assertion' ? (v === true ? '<span class="ok">✔</span>' : '<span class="ko">✗</span>') : kind;
        rows.push('<tr><td>' + mark + '</td><td class="mono">' + esc(name) + '</td><td class="mono">' +
          (kind === 'assertion' ? '' : esc(json(v))) + '</td><td>' + esc(r.reason || '') + '</td></tr>');
      });
    }
    add('assertion', d.assertions); add('score', d.scores); add('label', d.labels);
    Object.keys(d.metrics || {}).forEach(function (name) {
      rows.push('<tr><td>metric</td><td class="mono">' + esc(name) + '</td><td class="mono">' + esc(C.fmtNum(d.metrics[name])) + '</td><td></td></tr>');
    });
    Object.keys(d.attributes || {}).forEach(function (name) {
      rows.push('<tr><td>attribute</td><td class="mono">' + esc(name) + '</td><td class="mono">' + esc(json(d.attributes[name])) + '</td><td></td></tr>');
    });
    (d.evaluator_failures || []).forEach(function (f) {
      rows.push('<tr><td class="ko">!</td><td class="mono">' + esc(f.name) + '</td><td></td><td>raised: ' + esc(f.error_message || '') + '</td></tr>');
    });
    return rows.length ? '<table class="evals">' + rows.join('') + '</table>' : '<span class="muted">none</span>';
  }
  function usageLine(u) {
    u = u || {};
    return num(u.requests) + ' req · ' + num(u.input_tokens) + ' in / ' + num(u.output_tokens) + ' out · ' + cost(u.cost_usd) +
      costNote(u);
  }

  // What the cost leaves out or stands for, as report.json words it (results/usage.py's `Usage.cost_note`).
  function costNote(u) {
    return u && u.cost_note ? ' <span class="muted priced-note">(' + esc(u.cost_note) + ')</span>' : '';
  }
  function caseDetail(c, data) {
    var d = data.detail || {};
    var h = '<div class="detail-grid"><div><h3>Evaluators</h3>' + evalRows(d);
    if ((d.failures || []).length) {
      h += '<h3>Failures</h3><ul>' + d.failures.map(function (f) { return '<li>' + esc(f) + '</li>'; }).join('') + '</ul>';
    }
    if (d.error) h += '<h3>Error</h3><pre>' + esc(d.error.message || '') + '\n' + esc(d.error.traceback || '') + '</pre>';
    h += '<h3>Usage</h3><div>task: ' + usageLine(d.task_usage) + '</div><div>judge: ' + usageLine(d.judge_usage) +
      '</div><div class="muted">trace ' + esc(d.trace_id || '–') + (d.trace_url ? ' · <span class="mono">' +
      esc(d.trace_url) + '</span>' : '') + '</div></div><div><h3>Inputs</h3><pre>' + esc(json(d.inputs)) + '</pre>';
    if (d.expected_output !== undefined && d.expected_output !== null) {
      h += '<h3>Expected output</h3><pre>' + esc(json(d.expected_output)) + '</pre>';
    }
    h += '<h3>Output</h3><pre>' + esc(json(d.output)) + '</pre></div></div>';
    h += '<h3>Trace</h3>' + (data.left_out && !DATA.store_note ? leftOut(c) : waterfall(c.i, data.spans || []));
    return h;
  }

  // --- the waterfall: spans arrive in tree order (a parent, then its children's subtrees, by start) -------------
  function spanClass(s) {
    if (s.x) return 'exc';
    if (s.u) return 'model';
    var op = (s.a || {})['gen_ai.operation.name'];
    if (op === 'execute_tool' || (s.a || {})['gen_ai.tool.name']) return 'tool';
    if (s.sn.indexOf('evaluator') === 0) return 'eval';
    return '';
  }
  // A passing case's waterfall is left out of the page by default (the html_traces setting); its trace is in the store.
  function leftOut(c) {
    return '<p class="muted wf-left-out">This case passed: its waterfall is not in this page (html_traces = failures). ' +
      'Its trace is in the local trace store: <span class="mono wf-command">evaltrace show' +
      esc((META.show_options || '') + ' ' + shellQuote(c.nodeid)) +
      '</span>. With <span class="mono">--evaltrace-html-traces=all</span> the page holds every case\'s waterfall.</p>';
  }
  function shellQuote(text) { return "'" + String(text).replace(/'/g, "'\\''") + "'"; }
  function waterfall(ci, spans) {
    if (!spans.length) return '<p class="muted">' + esc(DATA.store_note || 'No spans of this trace in the local trace store.') + '</p>';
    var depth = [], total = 0, sums = [];
    spans.forEach(function (s, i) {
      depth[i] = s.p >= 0 && s.p < i ? depth[s.p] + 1 : 0;
      total = Math.max(total, s.s + s.d);
      sums[i] = { tin: 0, tout: 0, cost: 0 };
    });
    // Token sums of each span's subtree: every child comes after its parent, so walk backwards.
    for (var i = spans.length - 1; i >= 0; i--) {
      var u = spans[i].u;
      if (u) { sums[i].tin += u[0]; sums[i].tout += u[1]; sums[i].cost += u[2]; }
      var p = spans[i].p;
      if (p >= 0 && p < i) { sums[p].tin += sums[i].tin; sums[p].tout += sums[i].tout; sums[p].cost += sums[i].cost; }
    }
    total = total || 1;
    var rows = spans.map(function (s, i) {
      var left = (s.s / total) * 100, width = Math.max((s.d / total) * 100, 0.15);
      var tok = '';
      if (sums[i].tin || sums[i].tout) {
        tok = '<span class="wf-tok" title="' + (s.u ? 'this request' : 'sum below') + '">' + (s.u ? '' : 'Σ ') +
          num(sums[i].tin) + '/' + num(sums[i].tout) + (sums[i].cost ? ' ' + cost(sums[i].cost) : '') + '</span>';
      }
      return '<div class="wf-row" data-case="' + ci + '" data-span="' + i + '" data-depth="' + depth[i] + '"><div class="wf-name" style="padding-left:' +
        (6 + depth[i] * 14) + 'px" title="' + esc(s.n) + '">' + (s.x ? '<span class="wf-exc">✗ </span>' : '') +
        esc(s.n) + '</div><div class="wf-track"><div class="wf-bar ' + spanClass(s) + '" style="left:' +
        left.toFixed(3) + '%;width:' + width.toFixed(3) + '%"></div></div><div class="wf-meta">' + ms(s.d) + tok +
        '</div></div><div class="span-detail" id="sd-' + ci + '-' + i + '" hidden></div>';
    });
    return '<div class="waterfall" data-spans="' + spans.length + '">' + rows.join('') + '</div>';
  }

  function parseMaybe(v) {
    if (typeof v !== 'string') return v;
    try { return JSON.parse(v); } catch (e) { return v; }
  }
  function messagesHtml(title, msgs) {
    msgs = parseMaybe(msgs);
    if (!Array.isArray(msgs) || !msgs.length) return '';
    return '<h3>' + esc(title) + '</h3>' + msgs.map(function (m) {
      var parts = (m.parts || []).map(function (p) {
        if (p.type === 'tool_call') return '<div>→ <b class="mono">' + esc(p.name) + '</b><pre>' + esc(json(parseMaybe(p.arguments))) + '</pre></div>';
        if (p.type === 'tool_call_response') return '<div>← <b class="mono">' + esc(p.name || 'tool') + '</b><pre>' + esc(json(p.result)) + '</pre></div>';
        if (p.content !== undefined) return '<pre>' + esc(json(p.content)) + '</pre>';
        return '<pre>' + esc(json(p)) + '</pre>';
      }).join('');
      var role = m.role || '?';
      return '<div class="msg ' + esc(role) + '"><div class="role">' + esc(role) + '</div>' + parts + '</div>';
    }).join('');
  }
  // Attributes the detail draws in their own section; the attribute table leaves them out so nothing shows twice.
  var DRAWN_ATTRIBUTES = ['gen_ai.input.messages', 'gen_ai.output.messages', 'gen_ai.system_instructions',
    'gen_ai.tool.call.arguments', 'gen_ai.tool.call.result', 'tool_arguments', 'tool_response'];
  function spanDetail(s) {
    var a = s.a || {};
    var h = '<div class="mono muted">' + esc(s.sn) + ' · ' + ms(s.d) + ' · starts at +' + ms(s.s) + ' · span ' + esc(s.id) + '</div>';
    if (s.u) h += '<div>tokens: ' + num(s.u[0]) + ' in / ' + num(s.u[1]) + ' out · ' + cost(s.u[2]) + '</div>';
    if (s.x) h += '<h3 class="ko">Exception ' + esc(s.x[0]) + '</h3><pre>' + esc(s.x[1]) + (s.x[2] ? '\n\n' + esc(s.x[2]) : '') + '</pre>';
    if (a['gen_ai.tool.name'] !== undefined) {
      h += '<h3>Tool call ' + esc(a['gen_ai.tool.name']) + '</h3><pre>' +
        esc(json(parseMaybe(a['gen_ai.tool.call.arguments'] !== undefined ? a['gen_ai.tool.call.arguments'] : a.tool_arguments))) +
        '</pre><div class="muted">result</div><pre>' +
        esc(json(parseMaybe(a['gen_ai.tool.call.result'] !== undefined ? a['gen_ai.tool.call.result'] : a.tool_response))) + '</pre>';
    }
    var system = parseMaybe(a['gen_ai.system_instructions']);
    if (system !== undefined) {
      h += '<h3>System instructions</h3>' + (Array.isArray(system) ? system.map(function (p) {
        return '<pre>' + esc(json(p && p.content !== undefined ? p.content : p)) + '</pre>';
      }).join('') : '<pre>' + esc(json(system)) + '</pre>');
    }
    h += messagesHtml('Input messages', a['gen_ai.input.messages']);
    h += messagesHtml('Output messages', a['gen_ai.output.messages']);
    var keys = Object.keys(a).filter(function (k) { return DRAWN_ATTRIBUTES.indexOf(k) < 0; }).sort();
    h += '<h3>Attributes</h3><table class="attrs">' + keys.map(function (k) {
      var v = a[k];
      var text = typeof v === 'object' && v !== null ? JSON.stringify(v, null, 2) : String(v);
      return '<tr><td class="mono">' + esc(k) + '</td><td>' + (text.length > 80 || text.indexOf('\n') >= 0 ?
        '<pre>' + esc(text) + '</pre>' : '<span class="mono">' + esc(text) + '</span>') + '</td></tr>';
    }).join('') + '</table>';
    return h;
  }

  // --- trends over the last runs (history.jsonl) ---------------------------------------------------------------
  function trendsView() {
    var runs = META.history || [];
    if (runs.length < 2) {
      return '<p class="muted">Trends need at least two runs; ' + runs.length + ' recorded so far (each run that writes this ' +
        'report adds one; the last runs are kept, as many as the trace store keeps).</p>';
    }
    var labels = runs.map(function (r) { return shortDate(r.started_at); });
    var tips = runs.map(function (r) { return 'run ' + r.run_id + ' · ' + r.started_at + (r.complete ? '' : ' (incomplete)') + (r.rescored_from ? ' (re-scored)' : ''); });
    var hollow = runs.map(function (r) { return !r.complete; });
    var ids = [], seen = {};
    SUITES.forEach(function (s) { ids.push(s.suite); seen[s.suite] = true; });
    runs.forEach(function (r) { Object.keys(r.suites || {}).forEach(function (id) { if (!seen[id]) { seen[id] = true; ids.push(id); } }); });
    function series(id, pick) {
      return runs.map(function (r, i) { var f = (r.suites || {})[id]; return [i, f ? pick(f) : null]; });
    }
    var out = '<p class="muted">' + runs.length + ' runs, oldest first; hollow points are incomplete runs.</p>';
    ids.forEach(function (id) {
      var names = {};
      runs.forEach(function (r) { var f = (r.suites || {})[id]; Object.keys((f || {}).score_averages || {}).forEach(function (n) { names[n] = true; }); });
      var charts = C.lineChart({
        title: 'pass rate', yMin: 0, yMax: 1, yFmt: function (v) { return (v * 100).toFixed(0) + '%'; }, xLabels: labels, tips: tips,
        series: [
          { name: 'cases', points: series(id, function (f) { return f.pass_rate; }), hollow: hollow },
          { name: 'assertions', points: series(id, function (f) { return f.assertion_pass_rate; }), dashed: true, hollow: hollow },
        ],
      });
      if (Object.keys(names).length) {
        charts += C.lineChart({
          title: 'score averages', xLabels: labels, tips: tips,
          series: Object.keys(names).map(function (n) {
            return { name: n, points: series(id, function (f) { var v = (f.score_averages || {})[n]; return v === undefined ? null : v; }), hollow: hollow };
          }),
        });
      }
      charts += C.lineChart({
        title: 'cost (USD)', xLabels: labels, tips: tips, yFmt: function (v) { return cost(v); },
        series: [{ name: 'cost', points: series(id, function (f) { return f.cost_usd; }), color: C.color(3), hollow: hollow }],
      });
      out += '<section class="trend" data-suite="' + esc(id) + '"><h3>' + esc(id) + '</h3><div class="charts">' + charts + '</div></section>';
    });
    return out;
  }

  // --- the comparison with the baseline -------------------------------------------------------------------------
  function deltaCell(d, rate, higherIsBetter) {
    if (!d || d.baseline === null || d.current === null || d.baseline === undefined) return '<td colspan="2" class="muted">–</td>';
    var good = higherIsBetter ? d.delta >= 0 : d.delta <= 0;
    var text = rate ? pct(d.baseline) + ' → ' + pct(d.current) + ' (' + signed(d.delta * 100, 1) + ' pts)'
      : C.fmtNum(d.baseline) + ' → ' + C.fmtNum(d.current) + ' (' + signed(d.delta, 3) + ')';
    var cls = Math.abs(d.delta) < 1e-9 ? '' : good ? 'ok' : 'ko';
    return '<td class="num ' + cls + '">' + esc(text) + '</td><td>' + C.deltaBar(d.delta, rate ? 0.5 : Math.max(Math.abs(d.baseline), 1e-9), good) + '</td>';
  }
  function comparisonView() {
    var b = META.baseline;
    if (!b) return '<p class="muted">No baseline: <span class="mono">evaltrace baseline save</span> writes one from a run you are happy with.</p>';
    if (b.error) return '<p class="note">baseline ' + esc(b.path) + ': ' + esc(b.error) + '</p>';
    if (b.missing) return '<p class="muted">baseline ' + esc(b.path) + ': not found, nothing compared.</p>';
    var s = b.session || {}, deltas = META.deltas;
    var counts = deltas ? deltas.counts : { regressed: (s.newly_failing || []).length, improved: (s.newly_fixed || []).length,
      'new': (s.added || []).length, removed: (s.removed || []).length, changed: (s.changed || []).length };
    var h = '<p class="muted">against ' + esc(b.path) + ' (run ' + esc(b.run_id) + ', ' + esc(b.created_at) + ')</p><div class="tiles">' +
      [['regressed', 'ko'], ['improved', 'ok'], ['new', ''], ['removed', ''], ['changed', 'muted']].map(function (k) {
        return '<a href="#cmp-' + k[0] + '" class="tile ' + k[1] + '" data-kind="' + k[0] + '"><b>' + num(counts[k[0]]) + '</b> ' + k[0] + '</a>';
      }).join('') + '</div>';
    h += '<h3>Per suite</h3><table class="cmp-suites"><thead><tr><th>suite</th><th class="num">compared</th><th colspan="2">pass rate</th>' +
      '<th colspan="2">assertions</th><th>scores</th><th colspan="2">cost of compared cases</th></tr></thead><tbody>' +
      (b.suites || []).map(function (x) {
        if (!x.in_baseline) return '<tr><td class="mono">' + esc(x.suite) + '</td><td colspan="8" class="muted">not in the baseline</td></tr>';
        var scores = Object.keys(x.score_averages || {}).map(function (n) {
          var d = x.score_averages[n];
          if (d.delta === null || d.delta === undefined) return '';
          return '<div class="' + (Math.abs(d.delta) < 1e-9 ? '' : d.delta > 0 ? 'ok' : 'ko') + '"><span class="mono">' + esc(n) + '</span> ' +
            C.fmtNum(d.baseline) + ' → ' + C.fmtNum(d.current) + ' (' + signed(d.delta, 3) + ')</div>';
        }).join('');
        var c = x.cost_usd || {};
        return '<tr><td class="mono">' + esc(x.suite) + '</td><td class="num">' + num(x.compared) + '</td>' + deltaCell(x.pass_rate, true, true) +
          deltaCell(x.assertion_pass_rate, true, true) + '<td>' + scores + '</td><td class="num ' + (c.delta > 0 ? 'ko' : c.delta < 0 ? 'ok' : '') + '">' +
          cost(c.baseline) + ' → ' + cost(c.current) + (c.delta_pct !== null && c.delta_pct !== undefined ? ' (' + signed(c.delta_pct, 1) + '%)' : '') +
          '</td><td>' + C.deltaBar(c.delta, Math.max(c.baseline || 0, c.current || 0), c.delta <= 0) + '</td></tr>';
      }).join('') + '</tbody></table>';
    function caseList(kind, title, entries, withDeltas) {
      var n = counts[kind] || 0;
      var rows = entries.map(function (e) {
        var key = typeof e === 'string' ? e : e.suite + '[' + e.case + ']';
        var name = typeof e === 'string' ? e : e.case;
        if (!withDeltas) return '<tr><td>' + caseLink(key, typeof e === 'string' ? e : key) + '</td><td>' + (e.status ? badge(e.status) : '') + '</td><td colspan="3"></td></tr>';
        var scores = Object.keys(e.scores || {}).map(function (sn) {
          var v = e.scores[sn], d = v[1] - v[0];
          return '<span class="' + (Math.abs(d) < 1e-9 ? 'muted' : d > 0 ? 'ok' : 'ko') + '"><span class="mono">' + esc(sn) + '</span> ' +
            C.fmtNum(v[0]) + ' → ' + C.fmtNum(v[1]) + '</span>';
        }).join(' · ');
        var asserts = (e.assertions_lost || []).map(function (a) { return '<span class="ko">✗ ' + esc(a) + '</span>'; })
          .concat((e.assertions_gained || []).map(function (a) { return '<span class="ok">✔ ' + esc(a) + '</span>'; })).join(' ');
        return '<tr><td>' + caseLink(key, name) + '<div class="muted mono">' + esc(e.suite) + '</div></td><td>' + badge(e.status[0]) + ' → ' + badge(e.status[1]) +
          '</td><td>' + asserts + '</td><td>' + scores + '</td><td class="num">' + cost(e.cost_usd[0]) + ' → ' + cost(e.cost_usd[1]) + '</td></tr>';
      }).join('');
      return '<section id="cmp-' + kind + '" class="cmp-list" data-kind="' + kind + '"><h3>' + esc(title) + ' (' + num(n) + ')</h3>' + (n ? '<table><thead><tr><th>case</th><th>status</th>' +
        '<th>assertions</th><th>scores</th><th class="num">cost</th></tr></thead><tbody>' + rows + '</tbody></table>' +
        (n > entries.length ? '<p class="muted">and ' + num(n - entries.length) + ' more</p>' : '') : '<p class="muted">none</p>') + '</section>';
    }
    if (deltas) {
      h += caseList('regressed', 'Regressed', deltas.regressed, true) + caseList('improved', 'Improved', deltas.improved, true) +
        caseList('new', 'New (not in the baseline)', deltas['new'], false) + caseList('removed', 'Removed (in the baseline, not run)', deltas.removed, false) +
        caseList('changed', META.changed_label, deltas.changed, false);
    } else {
      h += caseList('regressed', 'Newly failing', (s.newly_failing || []).slice(0, 1000), false) +
        caseList('improved', 'Newly fixed', (s.newly_fixed || []).slice(0, 1000), false) + caseList('new', 'New', (s.added || []).slice(0, 1000), false) +
        caseList('removed', 'Removed', (s.removed || []).slice(0, 1000), false) + caseList('changed', META.changed_label, (s.changed || []).slice(0, 1000), false);
    }
    return h;
  }

  // --- distributions: scores, cost and duration per case, flaky cases --------------------------------------------
  function distributionsView() {
    var out = '';
    SUITES.forEach(function (s) {
      var cases = CASES.filter(function (c) { return c.suite === s.suite && c.status !== 'skipped'; });
      if (!cases.length) return;
      var charts = '';
      SNAMES.forEach(function (n, k) {
        var values = cases.map(function (c) { return c.sc[k]; }).filter(function (v) { return v !== null && v !== undefined; });
        if (!values.length) return;
        var inUnit = values.every(function (v) { return v >= 0 && v <= 1; });
        charts += C.histogram({ title: 'score ' + n + ' (' + values.length + ' cases)', values: values, bins: 10,
          min: inUnit ? 0 : undefined, max: inUnit ? 1 : undefined, color: C.color(k) });
      });
      var priced = cases.some(function (c) { return c.cost > 0; });
      if (!priced) charts += '<p class="muted">No cost recorded for these cases (models without a price): durations only.</p>';
      else charts += C.scatter({
        title: 'cost and duration per case (click a point to open its case)', xTitle: 'duration (s)', yTitle: 'cost (USD)',
        yFmt: function (v) { return cost(v); }, xFmt: function (v) { return C.fmtNum(v); },
        points: cases.map(function (c) { return { x: c.dur, y: c.cost, cls: c.status, key: c.a, tip: c.case + ' · ' + dur(c.dur) + ' · ' + cost(c.cost) + ' · ' + c.status }; }),
      });
      charts += C.histogram({ title: 'duration per case (s)', values: cases.map(function (c) { return c.dur; }), bins: 12, color: C.color(1) });
      var flaky = ((s.stats || {}).flaky || []);
      var flakyHtml = flaky.length ? '<table class="flaky"><thead><tr><th>flaky case</th><th class="num">passed</th><th>pass ratio</th></tr></thead><tbody>' +
        flaky.map(function (f) {
          return '<tr><td>' + caseLink(f.case, f.case) + '</td><td class="num">' + f.passed + '/' + f.runs + '</td><td>' +
            C.rateBar(f.pass_ratio, 'flaky') + ' ' + (f.pass_ratio * 100).toFixed(0) + '%</td></tr>';
        }).join('') + '</tbody></table>' : '';
      out += '<section class="dist" data-suite="' + esc(s.suite) + '"><h3>' + esc(s.name + suiteParams(s.suite)) + ' <span class="muted mono">' + esc(s.suite) +
        '</span></h3><div class="charts">' + charts + '</div>' + flakyHtml + '</section>';
    });
    return out || '<p class="muted">no cases</p>';
  }

  // --- tabs and events -----------------------------------------------------------------------------------------
  var TABS = [['cases', 'Cases'], ['trends', 'Trends'], ['comparison', 'Comparison'], ['distributions', 'Distributions']];
  var VIEWS = { trends: trendsView, comparison: comparisonView, distributions: distributionsView };
  function tabs() {
    var flaky = SUITES.reduce(function (n, s) { return n + ((s.stats || {}).flaky || []).length; }, 0);
    var nRuns = (META.history || []).length;
    var extra = { trends: nRuns + (nRuns === 1 ? ' run' : ' runs'), comparison: META.baseline && !META.baseline.missing && !META.baseline.error ? 'baseline' : 'none',
      distributions: flaky ? flaky + ' flaky' : '' };
    return '<nav class="tabs">' + TABS.map(function (t) {
      return '<button class="tab' + (t[0] === state.tab ? ' on' : '') + '" data-tab="' + t[0] + '">' + t[1] +
        (extra[t[0]] ? ' <span class="muted">' + esc(extra[t[0]]) + '</span>' : '') + '</button>';
    }).join('') + '</nav>';
  }
  function showTab(name) {
    state.tab = name;
    document.querySelectorAll('.tab').forEach(function (b) { b.classList.toggle('on', b.getAttribute('data-tab') === name); });
    document.querySelectorAll('.view').forEach(function (v) { v.hidden = v.getAttribute('data-view') !== name; });
    if (VIEWS[name] && !drawn[name]) {
      document.getElementById('view-' + name).innerHTML = VIEWS[name]();
      drawn[name] = true;
    }
  }
  function openCase(c) {
    showTab('cases');
    var list = visibleCases();
    var pos = list.indexOf(c);
    if (pos < 0) {  // hidden by a filter: show everything so the case is there
      state.filter = 'all'; state.suite = ''; state.q = '';
      document.querySelector('input[name=et-filter][value=all]').checked = true;
      document.getElementById('et-suite').value = ''; document.getElementById('et-q').value = '';
      pos = visibleCases().indexOf(c);
    }
    if (pos >= state.limit) state.limit = pos + 1;
    state.open[c.i] = true;
    window.__evaltraceOpenAt = performance.now();
    renderCases();
    var row = document.getElementById(c.a);
    row.classList.add('flash');
    row.scrollIntoView({ block: 'start' });
  }
  function openAnchor() {
    var c = BY_ANCHOR[decodeURIComponent((location.hash || '').slice(1))];
    if (c) openCase(c);
  }

  function bind() {
    document.querySelector('nav.tabs').addEventListener('click', function (e) {
      var b = e.target.closest('.tab');
      if (b) showTab(b.getAttribute('data-tab'));
    });
    document.querySelectorAll('input[name=et-filter]').forEach(function (el) {
      el.addEventListener('change', function () { state.filter = el.value; state.limit = PAGE; renderCases(); });
    });
    document.getElementById('et-suite').addEventListener('change', function (e) { state.suite = e.target.value; state.limit = PAGE; renderCases(); });
    document.getElementById('et-sort').addEventListener('change', function (e) { state.sort = e.target.value; state.desc = true; renderCases(); });
    var timer = null;
    document.getElementById('et-q').addEventListener('input', function (e) {
      clearTimeout(timer);
      timer = setTimeout(function () { state.q = e.target.value; state.limit = PAGE; renderCases(); }, 120);
    });
    document.getElementById('et-head').addEventListener('click', function (e) {
      var th = e.target.closest('th.sortable');
      if (!th) return;
      var key = th.getAttribute('data-sort');
      state.desc = state.sort === key ? !state.desc : true;
      state.sort = key;
      document.getElementById('et-sort').value = key;
      renderCases();
    });
    document.getElementById('et-more').addEventListener('click', function (e) {
      if (e.target.id === 'et-more-btn') state.limit += PAGE;
      else if (e.target.id === 'et-all-btn') state.limit = Infinity;
      else return;
      renderCases();
    });
    document.getElementById('view-cases').addEventListener('click', function (e) {
      var link = e.target.closest('.suite-link, .analyses-link');
      if (link) {
        e.preventDefault();
        var suite = link.getAttribute('data-suite');
        if (link.classList.contains('analyses-link')) { document.getElementById('an-' + suite).scrollIntoView({ block: 'start' }); return; }
        state.suite = suite; state.limit = PAGE;
        document.getElementById('et-suite').value = suite;
        renderCases();
        document.getElementById('et-cases').scrollIntoView({ block: 'start' });
      }
    });
    document.getElementById('et-cases').addEventListener('click', function (e) {
      var wf = e.target.closest('.wf-row');
      if (wf) {
        var ci = +wf.getAttribute('data-case'), si = +wf.getAttribute('data-span');
        var panel = document.getElementById('sd-' + ci + '-' + si);
        if (panel.hidden) panel.innerHTML = spanDetail(loaded[ci].spans[si]);
        panel.hidden = !panel.hidden;
        wf.classList.toggle('sel', !panel.hidden);
        return;
      }
      var row = e.target.closest('tr.case-row');
      if (row) toggleCase(row);
    });
    document.getElementById('view-distributions').addEventListener('click', function (e) {
      var dot = e.target.closest('[data-key]');
      if (dot && BY_ANCHOR[dot.getAttribute('data-key')]) openCase(BY_ANCHOR[dot.getAttribute('data-key')]);
    });
    window.addEventListener('hashchange', openAnchor);
  }

  document.getElementById('app').innerHTML = verdictHeader() + tabs() +
    '<div class="view" data-view="cases" id="view-cases">' + suitesTable() + controls() + '</div>' +
    TABS.slice(1).map(function (t) { return '<div class="view" data-view="' + t[0] + '" id="view-' + t[0] + '" hidden></div>'; }).join('');
  bind();
  renderCases();
  openAnchor();
  window.__evaltraceReadyAt = performance.now();  // read by bench/bench_html.py
  window.__evaltraceReady = true;
  document.body.setAttribute('data-ready', '1');
})();
