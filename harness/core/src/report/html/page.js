// netreach HTML report: builds the grids, the graph view and the detail panel from the JSON in
// #nr-data (see harness/core/src/report/html/data.rs for its layout). No network, no library.
(function () {
  'use strict';
  const D = JSON.parse(document.getElementById('nr-data').textContent);
  const CLASS_NAME = ['agrees: allowed', 'agrees: blocked', 'mismatch', 'flaky', 'unsupported', 'error'];
  const GLYPH = ['\u2713', '\u2715', '!', '~', '\u2205', '\u26a0'];
  // Cell fields (data.rs, struct Cell).
  const FROM = 0, TO = 1, GRID = 2, CLS = 3, STATUS = 4, EXP = 5, ORIGIN = 6, ORIGIN_LINE = 7,
    OBS = 8, WHY = 9, OUTCOME = 10, SPEC = 11, SPEC_WHY = 12, THREE_WAY = 13, CMD = 14,
    EXIT = 15, ELAPSED = 16, OUTPUT = 17, PREV = 18, FLAKY = 19;

  const main = document.getElementById('nr-scenarios');
  const panel = document.getElementById('nr-detail');
  const panelBody = document.getElementById('nr-detail-body');
  const state = D.scenarios.map(() => ({ built: false, step: 0, view: 'matrix' }));
  let selected = null;

  const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ESC[c]);
  const plural = (n, one, many) => n + ' ' + (n === 1 ? one : many);
  const str = (sc, i) => (i >= 0 ? sc.strs[i] : null);
  const joined = (sc, i, sep) => (i >= 0 ? sc.lists[i].map((j) => sc.strs[j]).join(sep) : null);
  const ms = (v) => (v >= 1000 ? (v / 1000).toFixed(1) + ' s' : v + ' ms');

  function cellTitle(sc, c) {
    const g = sc.grids[c[GRID]];
    return sc.nodes[c[FROM]][2] + ' \u2192 ' + sc.nodes[c[TO]][2] + (g === 'DNS resolution' ? ' (resolve)' : ' ' + g);
  }

  function tip(sc, c) {
    let t = cellTitle(sc, c) + '\n' + CLASS_NAME[c[CLS]] + ': expected ' + str(sc, c[EXP]) +
      ' (' + str(sc, c[ORIGIN]) + '), observed ' + str(sc, c[OBS]);
    if (c[PREV] >= 0) t += ' (was ' + str(sc, c[PREV]) + ')';
    return t + '\nclick for details and the repro command';
  }

  function defaultStep(sc) {
    let k = sc.steps.findIndex((s) => s.counts.fail > 0);
    if (k < 0) k = sc.steps.findIndex((s) => s.error || s.counts.error > 0);
    if (k < 0) {
      for (let j = sc.steps.length - 1; j >= 0; j--) {
        if (sc.steps[j].cells.length) { k = j; break; }
      }
    }
    return Math.max(k, 0);
  }

  function countsText(c) {
    const parts = [];
    if (c.fail) parts.push(plural(c.fail, 'mismatch', 'mismatches'));
    if (c.error) parts.push(plural(c.error, 'error', 'errors'));
    if (c.unsupported) parts.push(c.unsupported + ' unsupported');
    parts.push(c.pass + ' pass');
    return parts.join(' · ');
  }

  // ---- scenario list: what needs looking at first ------------------------------------------
  const RANK = { failed: 0, error: 1, unsupported: 2, passed: 3 };
  const order = D.scenarios.map((sc, si) => si).sort((a, b) =>
    (RANK[D.scenarios[a].status] - RANK[D.scenarios[b].status]) || a - b);
  order.forEach((si) => {
    const sc = D.scenarios[si];
    const d = document.createElement('details');
    const changed = sc.steps.some((s) => s.changed > 0);
    d.className = 'sc st-' + sc.status + (sc.counts.fail ? ' has-fail' : '') + (changed ? ' has-change' : '');
    d.id = 'nr-sc-' + si;
    d.dataset.si = String(si);
    d.dataset.name = sc.name;
    const total = sc.counts.pass + sc.counts.fail + sc.counts.error + sc.counts.unsupported;
    d.innerHTML = '<summary><span class="badge ' + sc.status + '">' + sc.status.toUpperCase() +
      '</span><span class="name">' + esc(sc.name) + '</span><span class="title">' + esc(sc.title) +
      '</span><span class="counts">' + plural(sc.steps.length, 'step', 'steps') + ' · ' +
      plural(total, 'cell', 'cells') + ': ' + countsText(sc.counts) + ' · ' + ms(sc.duration_ms) +
      '</span></summary><div class="body"></div>';
    d.addEventListener('toggle', () => { if (d.open) build(si); });
    main.appendChild(d);
  });
  if (!D.scenarios.length) main.innerHTML = '<p class="none-note" style="display:block">No scenario ran.</p>';

  function build(si) {
    const st = state[si];
    if (st.built) return;
    st.built = true;
    const sc = D.scenarios[si];
    st.step = defaultStep(sc);
    const body = document.querySelector('#nr-sc-' + si + ' > .body');
    let h = '<p class="scmeta"><span><code>' + esc(sc.path) + '</code></span><span>run ' + esc(sc.run_id || '—') +
      '</span><span>probe timeout ' + sc.probe_timeout_s + ' s</span>';
    if (sc.namespaces.length) {
      h += '<span>namespaces ' + sc.namespaces.map((n) => n[0] === n[1] ? esc(n[0]) : esc(n[0]) + ' = ' + esc(n[1])).join(', ') + '</span>';
    }
    if (sc.pod_nodes) {
      h += '<span class="podnodes">nodes ' + sc.pod_nodes.map((n) => esc(n[0]) + ' (' + n[1].map(esc).join(', ') + ')').join('; ') + '</span>';
    }
    if (sc.kept) h += '<span>kept in the cluster</span>';
    h += '</p>';
    if (sc.error) h += '<div class="err">' + esc(sc.error) + '</div>';
    if (sc.teardown_error) h += '<div class="err">cleanup: ' + esc(sc.teardown_error) + '</div>';
    h += '<div class="steps" role="tablist">';
    sc.steps.forEach((s, k) => {
      h += '<button type="button" role="tab" class="steptab" data-k="' + k + '"><span class="n">' + s.index +
        '</span> ' + esc(s.name) + (s.counts.fail ? ' <span class="mm">!' + s.counts.fail + '</span>' : '') +
        (s.ran ? '' : ' (not run)') + '</button>';
    });
    h += '</div><div class="views"><button type="button" class="view" data-view="matrix">Matrix</button>' +
      '<button type="button" class="view" data-view="graph">Graph</button><span class="sep"></span>' +
      '<button type="button" class="export" title="Download this step\'s graph as a standalone SVG file">Export SVG</button></div>' +
      '<div class="stepview"></div>';
    body.innerHTML = h;
    show(si);
  }

  function show(si) {
    const st = state[si];
    const sc = D.scenarios[si];
    const body = document.querySelector('#nr-sc-' + si + ' > .body');
    body.querySelectorAll('.steptab').forEach((b) => b.setAttribute('aria-selected', String(Number(b.dataset.k) === st.step)));
    body.querySelectorAll('.view').forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.view === st.view)));
    const view = body.querySelector('.stepview');
    const step = sc.steps[st.step];
    if (!step) { view.innerHTML = '<p class="none-note" style="display:block">No steps.</p>'; return; }
    if (st.view === 'graph') showGraph(view, si, st.step);
    else view.innerHTML = matrix(sc, step, st.step);
    if (selected && selected.si === si) markSelected();
  }

  function prevIndex(sc, k) {
    for (let j = k - 1; j >= 0; j--) if (sc.steps[j].ran && sc.steps[j].cells.length) return sc.steps[j].index;
    return null;
  }

  function stepMeta(sc, s, k) {
    const bits = ['step ' + s.index + ' \u201c' + esc(s.name) + '\u201d (line ' + s.line + ')'];
    if (!s.ran) bits.push('did not run');
    else {
      bits.push(plural(s.cells.length, 'cell', 'cells') + ': ' + countsText(s.counts));
      bits.push(plural(s.rounds, 'round', 'rounds'));
      bits.push(s.converge_ms != null ? 'agreed after ' + ms(s.converge_ms) : (s.counts.fail || s.counts.error ? 'did not agree within the deadline' : 'agreed'));
      bits.push(ms(s.duration_ms));
      const p = prevIndex(sc, k);
      if (p != null) bits.push(plural(s.changed, 'cell', 'cells') + ' changed since step ' + p);
      if (s.flaky) bits.push(s.flaky + ' flaky');
    }
    let h = '<p class="stepmeta">' + bits.join(' · ') + '</p>';
    if (s.error) h += '<div class="err">' + esc(s.error) + '</div>';
    return h;
  }

  function matrix(sc, s, k) {
    let h = stepMeta(sc, s, k) + '<div class="matrix">';
    if (!s.cells.length) return h + '<p class="none-note" style="display:block">No cells were judged in this step.</p></div>';
    const N = sc.nodes.length;
    const grids = sc.grids.map(() => ({ rows: new Set(), cols: new Set(), at: new Map(), n: 0 }));
    s.cells.forEach((c, i) => {
      const g = grids[c[GRID]];
      g.rows.add(c[FROM]); g.cols.add(c[TO]); g.at.set(c[FROM] * N + c[TO], i); g.n++;
    });
    const num = (a, b) => a - b;
    grids.forEach((g, gi) => {
      if (!g.n) return;
      const rows = Array.from(g.rows).sort(num), cols = Array.from(g.cols).sort(num);
      const grp = (n) => sc.nodes[n][1];
      const out = [];
      out.push('<div class="grid" data-grid="' + esc(sc.grids[gi]) + '"><h4>' + esc(sc.grids[gi]) +
        ' <span class="cnt">' + plural(g.n, 'cell', 'cells') + '</span></h4><div class="scroll"><table class="m"><thead><tr><th class="corner" rowspan="2">from \u2193 to \u2192</th>');
      for (let j = 0; j < cols.length;) {
        let e = j;
        while (e < cols.length && grp(cols[e]) === grp(cols[j])) e++;
        out.push('<th class="nsh" colspan="' + (e - j) + '">' + esc(sc.groups[grp(cols[j])]) + '</th>');
        j = e;
      }
      out.push('</tr><tr>');
      const gb = cols.map((c, j) => j > 0 && grp(c) !== grp(cols[j - 1]) ? ' gb' : (j === 0 ? ' gb' : ''));
      cols.forEach((c, j) => out.push('<th class="to' + gb[j] + '" title="' + esc(sc.nodes[c][2]) + '"><span>' + esc(sc.nodes[c][0]) + '</span></th>'));
      out.push('</tr></thead>');
      for (let r = 0; r < rows.length;) {
        let e = r;
        while (e < rows.length && grp(rows[e]) === grp(rows[r])) e++;
        out.push('<tbody class="nsg"><tr class="nsrow"><th>' + esc(sc.groups[grp(rows[r])]) + '</th><td colspan="' + cols.length + '"></td></tr>');
        for (let q = r; q < e; q++) {
          const row = rows[q];
          out.push('<tr class="r"><th class="from" title="' + esc(sc.nodes[row][2]) + '">' + esc(sc.nodes[row][0]) + '</th>');
          for (let j = 0; j < cols.length; j++) {
            const i = g.at.get(row * N + cols[j]);
            if (i === undefined) { out.push('<td class="n' + gb[j] + '"></td>'); continue; }
            const c = s.cells[i];
            out.push('<td class="c k' + c[CLS] + ' s' + c[STATUS] + (c[PREV] >= 0 ? ' x' : '') + gb[j] + '" data-i="' + i + '">' + GLYPH[c[CLS]] + '</td>');
          }
          out.push('</tr>');
        }
        out.push('</tbody>');
        r = e;
      }
      out.push('</table></div></div>');
      h += out.join('');
    });
    h += '<p class="none-note mm">No mismatches in this step.</p>';
    const p = prevIndex(sc, k);
    h += '<p class="none-note ch">' + (p == null ? 'This is the first step that ran: nothing to compare with.' : 'No observation changed since step ' + p + '.') + '</p>';
    // Lists: every mismatch (and, in the changed view, every change), one click from its details.
    const mm = [], ch = [];
    s.cells.forEach((c, i) => {
      if (c[STATUS] === 1) mm.push('<li data-i="' + i + '">' + esc(cellTitle(sc, c)) + ': expected ' + esc(str(sc, c[EXP])) + ' (' + esc(str(sc, c[ORIGIN])) + '), observed ' + esc(str(sc, c[OBS])) + (c[FLAKY] ? ' (flaky)' : '') + '</li>');
      if (c[PREV] >= 0) ch.push('<li data-i="' + i + '">' + esc(cellTitle(sc, c)) + ': ' + esc(str(sc, c[PREV])) + ' \u2192 ' + esc(str(sc, c[OBS])) + '</li>');
    });
    h += '<div class="lists">';
    if (mm.length) h += '<h4>' + plural(mm.length, 'mismatch', 'mismatches') + '</h4><ul class="list mmlist">' + mm.join('') + '</ul>';
    if (ch.length) h += '<div class="changes"><h4>' + plural(ch.length, 'change', 'changes') + ' since step ' + p + '</h4><ul class="list chlist">' + ch.join('') + '</ul></div>';
    return h + '</div></div>';
  }

  function showGraph(view, si, k) {
    const sc = D.scenarios[si];
    const t = document.getElementById('nr-g-' + si + '-' + k);
    view.innerHTML = stepMeta(sc, sc.steps[k], k) + '<p class="graphbar">One arrow per source and target: the most important of their cells (hover an arrow for every port). A pod reaching itself is not drawn.</p><div class="graphwrap"></div>';
    const wrap = view.querySelector('.graphwrap');
    if (!t) { wrap.innerHTML = '<p class="none-note" style="display:block">No cells in this step: nothing to draw.</p>'; return; }
    wrap.appendChild(document.importNode(t.content, true));
  }

  function exportSvg(si) {
    const sc = D.scenarios[si];
    const k = state[si].step;
    const t = document.getElementById('nr-g-' + si + '-' + k);
    if (!t) return;
    const text = '<?xml version="1.0" encoding="UTF-8"?>\n' + new XMLSerializer().serializeToString(t.content.firstElementChild) + '\n';
    const a = document.createElement('a');
    a.href = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(text);
    a.download = sc.id + '-step' + sc.steps[k].index + '.svg';
    document.body.appendChild(a);
    a.click();
    a.remove();
  }

  // ---- detail panel -------------------------------------------------------------------------
  function detail(si, k, i) {
    const sc = D.scenarios[si], s = sc.steps[k], c = s.cells[i];
    selected = { si: si, k: k, i: i };
    const row = (dt, dd) => '<dt>' + dt + '</dt><dd>' + dd + '</dd>';
    let h = '<h3>' + esc(cellTitle(sc, c)) + '</h3><span class="cls c k' + c[CLS] + '">' + GLYPH[c[CLS]] + ' ' + CLASS_NAME[c[CLS]] + '</span><dl>';
    h += row('scenario', esc(sc.name) + ' · step ' + s.index + ' \u201c' + esc(s.name) + '\u201d');
    const line = c[ORIGIN_LINE] > 0 ? ' <code>' + esc(sc.path) + ':' + c[ORIGIN_LINE] + '</code>' : '';
    h += row('expected', '<b>' + esc(str(sc, c[EXP])) + '</b> \u2014 decided by the ' + esc(str(sc, c[ORIGIN])) + line);
    h += row('observed', '<b>' + esc(str(sc, c[OBS])) + '</b> \u2014 ' + esc(str(sc, c[WHY])) + '<br><span class="mono">outcome: ' + esc(str(sc, c[OUTCOME])) + '</span>');
    if (c[SPEC] >= 0) {
      // The reasons start with the verdict (`block: egress of …`), shown in bold already.
      const spec = str(sc, c[SPEC]);
      let why = joined(sc, c[SPEC_WHY], '; ') || '';
      if (why.startsWith(spec + ': ')) why = why.slice(spec.length + 2);
      h += row('specification', '<b>' + esc(spec) + '</b> \u2014 ' + esc(why) +
        (c[THREE_WAY] >= 0 ? '<div class="warn">' + esc(str(sc, c[THREE_WAY])) + '</div>' : ''));
    } else {
      h += row('specification', '<span class="unknown">not recorded</span>');
    }
    if (c[FLAKY]) h += row('flaky', 'the answer changed between the round that settled the step and the confirmation round; this is the look that disagreed, if one did');
    if (c[PREV] >= 0) h += row('previous step', esc(str(sc, c[PREV])) + ' \u2192 ' + esc(str(sc, c[OBS])));
    const probe = [];
    if (c[EXIT] != null) probe.push('exit code ' + c[EXIT]);
    if (c[ELAPSED] != null) probe.push(c[ELAPSED] + ' ms');
    if (probe.length) h += row('probe', probe.join(' · '));
    if (c[OUTPUT] >= 0) h += row('output', '<pre>' + esc(str(sc, c[OUTPUT])) + '</pre>');
    if (c[CMD] >= 0) {
      h += row('repro', '<pre id="nr-cmd">' + esc(joined(sc, c[CMD], ' ')) + '</pre><div class="copyrow"><button type="button" id="nr-copy">Copy command</button><span id="nr-copied" role="status"></span></div>');
    } else {
      h += row('repro', '<span class="unknown">no command recorded</span>');
    }
    panelBody.innerHTML = h + '</dl>';
    panel.hidden = false;
    document.body.classList.add('with-panel');
    markSelected();
  }

  function markSelected() {
    document.querySelectorAll('td.sel').forEach((td) => td.classList.remove('sel'));
    if (!selected || state[selected.si].step !== selected.k) return;
    const td = document.querySelector('#nr-sc-' + selected.si + ' td.c[data-i="' + selected.i + '"]');
    if (td) td.classList.add('sel');
  }

  function closePanel() {
    panel.hidden = true;
    selected = null;
    document.body.classList.remove('with-panel');
    markSelected();
  }

  async function copy(text, note) {
    let ok = false;
    try {
      await navigator.clipboard.writeText(text);
      ok = true;
    } catch (e) {
      const ta = document.createElement('textarea');
      ta.value = text;
      document.body.appendChild(ta);
      ta.select();
      try { ok = document.execCommand('copy'); } catch (e2) { ok = false; }
      ta.remove();
    }
    note.textContent = ok ? 'copied' : 'select the command and copy it';
  }

  // ---- events -------------------------------------------------------------------------------
  main.addEventListener('click', (e) => {
    const sc = e.target.closest('details.sc');
    if (!sc) return;
    const si = Number(sc.dataset.si);
    const tab = e.target.closest('.steptab');
    if (tab) { state[si].step = Number(tab.dataset.k); show(si); return; }
    const v = e.target.closest('.view');
    if (v) { state[si].view = v.dataset.view; show(si); return; }
    if (e.target.closest('.export')) { exportSvg(si); return; }
    const cell = e.target.closest('td.c, li[data-i]');
    if (cell) {
      detail(si, state[si].step, Number(cell.dataset.i));
      if (cell.tagName === 'LI') {
        const td = sc.querySelector('td.c[data-i="' + cell.dataset.i + '"]');
        if (td) td.scrollIntoView({ block: 'nearest', inline: 'nearest' });
      }
    }
  });
  main.addEventListener('mouseover', (e) => {
    const td = e.target.closest('td.c');
    if (!td || td.title) return;
    const si = Number(td.closest('details.sc').dataset.si);
    const sc = D.scenarios[si];
    td.title = tip(sc, sc.steps[state[si].step].cells[Number(td.dataset.i)]);
  });
  panel.addEventListener('click', (e) => {
    if (e.target.id === 'nr-copy') copy(document.getElementById('nr-cmd').textContent, document.getElementById('nr-copied'));
  });
  document.getElementById('nr-detail-close').addEventListener('click', closePanel);
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && !panel.hidden) closePanel(); });
  document.querySelectorAll('input[name="nr-filter"]').forEach((r) => r.addEventListener('change', () => {
    document.body.classList.toggle('f-mismatch', r.value === 'mismatch' && r.checked);
    document.body.classList.toggle('f-changed', r.value === 'changed' && r.checked);
    if (r.value === 'changed' && r.checked) {
      // Show, in each open scenario, a step that changed.
      state.forEach((st, si) => {
        const sc = D.scenarios[si];
        if (st.built && !sc.steps[st.step].changed) {
          const k = sc.steps.findIndex((s) => s.changed > 0);
          if (k >= 0) { st.step = k; show(si); }
        }
      });
    }
  }));
  document.getElementById('nr-open-all').addEventListener('click', () => main.querySelectorAll('details.sc').forEach((d) => { d.open = true; }));
  document.getElementById('nr-close-all').addEventListener('click', () => main.querySelectorAll('details.sc').forEach((d) => { d.open = false; }));

  // Open what needs looking at: every scenario that failed or had errors.
  D.scenarios.forEach((sc, si) => {
    if (sc.status === 'failed' || sc.status === 'error') {
      document.getElementById('nr-sc-' + si).open = true;
      build(si);
    }
  });
  window.nrReport = { ready: performance.now(), scenarios: D.scenarios.length };
})();
