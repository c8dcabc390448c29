// evaltrace HTML report: renders the data blocks of this file; loads nothing from the network.
// The case list is drawn from one small JSON block; a case's details and spans are parsed only when it is opened.
(function () {
  'use strict';
  var DATA = JSON.parse(document.getElementById('et-data').textContent);
  var META = DATA.meta || {};
  var CASES = DATA.cases || [];
  var BY_ANCHOR = {};
  CASES.forEach(function (c) { BY_ANCHOR[c.a] = c; });
  var state = { filter: 'all', suite: '', q: '', sort: 'order', desc: true, open: {} };
  var detailCache = {};
  var SHARED_REF = '__et_ref__';
  var sharedValues = null;
  function shared() {  // long values repeated across spans (tool schemas, prompts), parsed on first use
    if (sharedValues === null) sharedValues = JSON.parse(document.getElementById('et-shared').textContent);
    return sharedValues;
  }

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
    return '$' + (v >= 0.01 ? v.toFixed(4) : v.toPrecision(2));
  }
  function num(v) { return (v || 0).toLocaleString('en-US'); }
  function badge(status) { return '<span class="badge s-' + esc(status) + '">' + esc(status) + '</span>'; }
  function isFailure(c) { return c.status === 'failed' || c.status === 'error'; }

  function gateHtml(g) {
    var text = g.name + ': ' + (g.passed ? 'PASS' : 'FAIL') + ' (actual ' + json(g.actual) + ', threshold ' +
      json(g.threshold) + ')';
    return '<span class="gate ' + (g.passed ? 'ok' : 'ko') + '" title="' + esc(g.detail || '') + '">' + esc(text) +
      '</span>';
  }

  function header() {
    var s = (META.session || {}).stats || {};
    var u = s.usage || {};
    var h = '<h1>evaltrace report</h1><div class="muted">run ' + esc(META.run_id) + ' · started ' +
      esc(META.started_at) + (META.finished_at ? ' · finished ' + esc(META.finished_at) : '') +
      (META.complete === false ? ' · <b>incomplete</b>' : '') + '</div>';
    if (META.rescored_from) {
      h += '<p class="note">Re-scored from run ' + esc(META.rescored_from) + '. ' + esc(META.rescore_note || '') + '</p>';
    }
    h += '<p class="summary-stats"><span>' + num(s.cases) + ' cases</span><span class="ok">' + num(s.passed) +
      ' passed</span><span class="ko">' + num(s.failed) + ' failed</span><span>' + num(s.error) +
      ' error</span><span>' + num(u.input_tokens) + ' in / ' + num(u.output_tokens) + ' out tokens</span><span>' +
      cost(u.cost_usd) + '</span></p>';
    var sg = (META.session || {}).gates || [];
    if (sg.length) h += '<div>session gates: ' + sg.map(gateHtml).join('') + '</div>';
    if (DATA.store_note) h += '<p class="note">' + esc(DATA.store_note) + '</p>';
    return h;
  }

  function suitesTable() {
    var suites = META.suites || [];
    var rows = suites.map(function (s) {
      var st = s.stats || {};
      var rate = st.pass_rate === null || st.pass_rate === undefined ? '' : (st.pass_rate * 100).toFixed(1) + '%';
      var gates = (s.gates || []).map(gateHtml).join('') || '<span class="muted">no gate</span>';
      return '<tr data-suite="' + esc(s.suite) + '"><td><a href="#" class="suite-link" data-suite="' + esc(s.suite) +
        '">' + esc(s.name) + '</a><div class="muted mono">' + esc(s.suite) + '</div></td><td>' + esc(s.dataset) +
        '</td><td class="num">' + num(st.cases) + '</td><td class="num">' + num(st.passed) + '</td><td class="num">' +
        num(st.failed) + '</td><td class="num">' + num(st.error) + '</td><td class="num">' + rate + '</td><td>' +
        gates + '</td></tr>';
    });
    return '<h2>Suites</h2><table class="suites"><thead><tr><th>suite</th><th>dataset</th><th class="num">cases</th>' +
      '<th class="num">passed</th><th class="num">failed</th><th class="num">error</th><th class="num">pass rate</th>' +
      '<th>gates</th></tr></thead><tbody>' + rows.join('') + '</tbody></table>';
  }

  function controls() {
    var failures = CASES.filter(isFailure).length;
    var suiteOptions = '<option value="">all suites</option>' + (META.suites || []).map(function (s) {
      return '<option value="' + esc(s.suite) + '">' + esc(s.name) + '</option>';
    }).join('');
    return '<h2>Cases</h2><div class="controls">' +
      '<label><input type="radio" name="et-filter" value="all" checked> all (' + CASES.length + ')</label>' +
      '<label><input type="radio" name="et-filter" value="failures" id="et-failures"> failures (' + failures +
      ')</label>' +
      '<label>suite <select id="et-suite">' + suiteOptions + '</select></label>' +
      '<label>sort <select id="et-sort"><option value="order">run order</option><option value="cost">cost</option>' +
      '<option value="tok">tokens</option><option value="dur">duration</option></select></label>' +
      '<input type="search" id="et-q" placeholder="filter by case, node id or failure">' +
      '<span id="et-count" class="muted"></span></div>' +
      '<table class="cases"><thead><tr><th>status</th><th>case</th>' +
      '<th class="num sortable" data-sort="dur">duration</th><th class="num sortable" data-sort="tok">tokens</th>' +
      '<th class="num sortable" data-sort="cost">cost</th><th>first failure</th></tr></thead>' +
      '<tbody id="et-cases"></tbody></table>';
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
      var key = state.sort;
      var sign = state.desc ? -1 : 1;
      list.sort(function (a, b) { return sign * ((a[key] || 0) - (b[key] || 0)) || a.i - b.i; });
    }
    return list;
  }

  function caseRow(c) {
    var html = '<tr class="case-row' + (state.open[c.i] ? ' open' : '') + '" id="' + esc(c.a) + '" data-i="' + c.i +
      '"><td>' + badge(c.status) + '</td><td><span class="mono">' + esc(c.case) + '</span><div class="muted mono">' +
      esc(c.nodeid) + '</div></td><td class="num">' + dur(c.dur) + '</td><td class="num">' + num(c.tok) +
      '</td><td class="num">' + cost(c.cost) + '</td><td class="fail-text" title="' + esc(c.fail) + '">' +
      esc(c.fail) + (c.nfail > 1 ? ' <span class="muted">(+' + (c.nfail - 1) + ')</span>' : '') + '</td></tr>';
    if (state.open[c.i]) html += '<tr class="detail-row" data-for="' + c.i + '"><td colspan="6">' + caseDetail(c) + '</td></tr>';
    return html;
  }

  function renderCases() {
    var t0 = performance.now();
    var list = visibleCases();
    document.getElementById('et-cases').innerHTML = list.map(caseRow).join('');
    document.getElementById('et-count').textContent = list.length + ' shown';
    document.body.setAttribute('data-shown', String(list.length));
    window.__evaltraceRenderMs = performance.now() - t0;  // read by bench/bench_html.py
  }

  function loadDetail(i) {
    if (!(i in detailCache)) {
      var el = document.getElementById('et-c' + i);
      var data = el ? JSON.parse(el.textContent) : { detail: {}, spans: [] };
      (data.spans || []).forEach(function (s) {
        Object.keys(s.a || {}).forEach(function (k) {
          var v = s.a[k];
          if (v && typeof v === 'object' && !Array.isArray(v) && SHARED_REF in v) s.a[k] = shared()[v[SHARED_REF]];
        });
      });
      detailCache[i] = data;
    }
    return detailCache[i];
  }

  function evalRows(d) {
    var rows = [];
    function add(kind, obj) {
      Object.keys(obj || {}).forEach(function (name) {
        var r = obj[name] || {};
        var v = r.value;
        var mark = kind === 'assertion' ? (v === true ? '<span class="ok">✔</span>' : '<span class="ko">✗</span>') : kind;
        rows.push('<tr><td>' + mark + '</td><td class="mono">' + esc(name) + '</td><td class="mono">' +
          (kind === 'assertion' ? '' : esc(json(v))) + '</td><td>' + esc(r.reason || '') + '</td></tr>');
      });
    }
    add('assertion', d.assertions); add('score', d.scores); add('label', d.labels);
    (d.evaluator_failures || []).forEach(function (f) {
      rows.push('<tr><td class="ko">!</td><td class="mono">' + esc(f.name) + '</td><td></td><td>raised: ' +
        esc(f.error_message || '') + '</td></tr>');
    });
    return rows.length ? '<table class="evals">' + rows.join('') + '</table>' : '<span class="muted">none</span>';
  }

  function usageLine(u) {
    u = u || {};
    return num(u.requests) + ' req · ' + num(u.input_tokens) + ' in / ' + num(u.output_tokens) + ' out · ' + cost(u.cost_usd);
  }

  function caseDetail(c) {
    var data = loadDetail(c.i);
    var d = data.detail || {};
    var h = '<div class="detail-grid"><div><h3>Evaluators</h3>' + evalRows(d);
    if ((d.failures || []).length) {
      h += '<h3>Failures</h3><ul>' + d.failures.map(function (f) { return '<li>' + esc(f) + '</li>'; }).join('') + '</ul>';
    }
    if (d.error) h += '<h3>Error</h3><pre>' + esc(d.error.message || '') + '\n' + esc(d.error.traceback || '') + '</pre>';
    h += '<h3>Usage</h3><div>task: ' + usageLine(d.task_usage) + '</div><div>judge: ' + usageLine(d.judge_usage) +
      '</div><div class="muted">trace ' + esc(c.trace_id || '–') + (d.trace_url ? ' · <span class="mono">' +
      esc(d.trace_url) + '</span>' : '') + '</div></div><div><h3>Inputs</h3><pre>' + esc(json(d.inputs)) + '</pre>';
    if (d.expected_output !== undefined && d.expected_output !== null) {
      h += '<h3>Expected output</h3><pre>' + esc(json(d.expected_output)) + '</pre>';
    }
    h += '<h3>Output</h3><pre>' + esc(json(d.output)) + '</pre></div></div>';
    h += '<h3>Trace</h3>' + waterfall(c.i, data.spans || []);
    return h;
  }

  function spanClass(s) {
    if (s.x) return 'exc';
    if (s.u) return 'model';
    var op = (s.a || {})['gen_ai.operation.name'];
    if (op === 'execute_tool' || (s.a || {})['gen_ai.tool.name']) return 'tool';
    if (s.sn.indexOf('evaluator') === 0) return 'eval';
    return '';
  }

  function waterfall(ci, spans) {
    if (!spans.length) {
      return '<p class="muted">' + esc(DATA.store_note || 'No spans of this trace in the local trace store.') + '</p>';
    }
    var depth = [], total = 0, sums = [];
    spans.forEach(function (s, i) {
      depth[i] = s.p >= 0 ? depth[s.p] + 1 : 0;
      total = Math.max(total, s.s + s.d);
      sums[i] = { tin: 0, tout: 0, cost: 0 };
    });
    // Token sums of each span's subtree: children come after their parent (start order), so walk backwards.
    for (var i = spans.length - 1; i >= 0; i--) {
      var u = spans[i].u;
      if (u) { sums[i].tin += u[0]; sums[i].tout += u[1]; sums[i].cost += u[2]; }
      var p = spans[i].p;
      if (p >= 0) { sums[p].tin += sums[i].tin; sums[p].tout += sums[i].tout; sums[p].cost += sums[i].cost; }
    }
    total = total || 1;
    var rows = spans.map(function (s, i) {
      var left = (s.s / total) * 100, width = Math.max((s.d / total) * 100, 0.15);
      var tok = '';
      if (sums[i].tin || sums[i].tout) {
        tok = '<span class="wf-tok" title="' + (s.u ? 'this request' : 'sum below') + '">' + (s.u ? '' : 'Σ ') +
          num(sums[i].tin) + '/' + num(sums[i].tout) + (sums[i].cost ? ' ' + cost(sums[i].cost) : '') + '</span>';
      }
      return '<div class="wf-row" data-case="' + ci + '" data-span="' + i + '"><div class="wf-name" style="padding-left:' +
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
    h += messagesHtml('Input messages', a['gen_ai.input.messages']);
    h += messagesHtml('Output messages', a['gen_ai.output.messages']);
    var keys = Object.keys(a).sort();
    h += '<h3>Attributes</h3><table class="attrs">' + keys.map(function (k) {
      var v = a[k];
      var text = typeof v === 'object' && v !== null ? JSON.stringify(v, null, 2) : String(v);
      return '<tr><td class="mono">' + esc(k) + '</td><td>' + (text.length > 80 || text.indexOf('\n') >= 0 ?
        '<pre>' + esc(text) + '</pre>' : '<span class="mono">' + esc(text) + '</span>') + '</td></tr>';
    }).join('') + '</table>';
    return h;
  }

  function toggleCase(i) {
    state.open[i] = !state.open[i];
    renderCases();
  }

  function openAnchor() {
    var anchor = decodeURIComponent((location.hash || '').slice(1));
    var c = BY_ANCHOR[anchor];
    if (!c) return;
    var row = document.getElementById(anchor);
    if (!row) { // hidden by a filter: show everything so the linked case is there
      state.filter = 'all'; state.suite = ''; state.q = '';
      document.querySelector('input[name=et-filter][value=all]').checked = true;
      document.getElementById('et-suite').value = ''; document.getElementById('et-q').value = '';
    }
    state.open[c.i] = true;
    renderCases();
    row = document.getElementById(anchor);
    row.classList.add('flash');
    row.scrollIntoView({ block: 'start' });
  }

  function bind() {
    document.querySelectorAll('input[name=et-filter]').forEach(function (el) {
      el.addEventListener('change', function () { state.filter = el.value; renderCases(); });
    });
    document.getElementById('et-suite').addEventListener('change', function (e) { state.suite = e.target.value; renderCases(); });
    document.getElementById('et-sort').addEventListener('change', function (e) {
      state.sort = e.target.value; state.desc = true; renderCases();
    });
    var timer = null;
    document.getElementById('et-q').addEventListener('input', function (e) {
      clearTimeout(timer);
      timer = setTimeout(function () { state.q = e.target.value; renderCases(); }, 120);
    });
    document.querySelectorAll('th.sortable').forEach(function (th) {
      th.addEventListener('click', function () {
        var key = th.getAttribute('data-sort');
        state.desc = state.sort === key ? !state.desc : true;
        state.sort = key;
        document.getElementById('et-sort').value = key;
        renderCases();
      });
    });
    document.querySelectorAll('.suite-link').forEach(function (a) {
      a.addEventListener('click', function (e) {
        e.preventDefault();
        state.suite = a.getAttribute('data-suite');
        document.getElementById('et-suite').value = state.suite;
        renderCases();
        document.getElementById('et-cases').scrollIntoView({ block: 'start' });
      });
    });
    document.getElementById('et-cases').addEventListener('click', function (e) {
      var wf = e.target.closest('.wf-row');
      if (wf) {
        var ci = +wf.getAttribute('data-case'), si = +wf.getAttribute('data-span');
        var panel = document.getElementById('sd-' + ci + '-' + si);
        if (panel.hidden) { panel.innerHTML = spanDetail(loadDetail(ci).spans[si]); }
        panel.hidden = !panel.hidden;
        wf.classList.toggle('sel', !panel.hidden);
        return;
      }
      var row = e.target.closest('tr.case-row');
      if (row) toggleCase(+row.getAttribute('data-i'));
    });
    window.addEventListener('hashchange', openAnchor);
  }

  document.getElementById('app').innerHTML = header() + suitesTable() + controls();
  bind();
  renderCases();
  openAnchor();
  window.__evaltraceReadyAt = performance.now();  // read by bench/bench_html.py
  window.__evaltraceReady = true;
  document.body.setAttribute('data-ready', '1');
})();
