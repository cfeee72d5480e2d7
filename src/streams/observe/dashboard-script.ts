/**
 * The dashboard page's script (served as /dashboard.js). It listens to /events and redraws on
 * every `view` event: the force-directed graph (d3-force computes positions, the script draws
 * plain SVG), the node and link tables with sparklines, the DB families and the log tail.
 *
 * Every text that came from the network (node IDs, addresses, DB keys and values, log lines)
 * goes into the document through `textContent` or `<title>` text nodes; nothing is parsed as
 * markup, and attributes are only set to numbers or to this script's own class names.
 */
export const DASHBOARD_JS = String.raw`'use strict';
(() => {
  const SVG = 'http://www.w3.org/2000/svg';
  const W = 640;
  const H = 400;
  const graph = document.getElementById('graph');
  const linkLayer = svgEl('g', { class: 'links' });
  const nodeLayer = svgEl('g', { class: 'nodes' });
  graph.append(linkLayer, nodeLayer);

  /** Layout state by node ID; d3 keeps x, y, vx, vy on these objects. */
  const simNodes = new Map();
  /** SVG group by node ID, SVG parts by link key. */
  const nodeEls = new Map();
  const linkEls = new Map();
  let simLinks = [];
  let updates = 0;
  let history = Object.create(null);

  const sim = d3
    .forceSimulation([])
    .force('link', d3.forceLink([]).id((d) => d.id).distance(150))
    .force('charge', d3.forceManyBody().strength(-500))
    .force('center', d3.forceCenter(W / 2, H / 2))
    .force('collide', d3.forceCollide(46))
    .on('tick', draw);

  function svgEl(name, attrs) {
    const el = document.createElementNS(SVG, name);
    for (const k in attrs) el.setAttribute(k, String(attrs[k]));
    return el;
  }

  function el(name, text, cls) {
    const e = document.createElement(name);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function kindClass(kind) {
    return kind === 'aemp' || kind === 'perl' ? kind : 'unknown';
  }

  function short(id, max) {
    return id.length > max ? id.slice(0, max - 1) + '…' : id;
  }

  function bytes(n) {
    if (n === null || n === undefined) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + ' ' + units[i];
  }

  function rate(n) {
    if (n >= 1e6) return (n / 1e6).toFixed(1) + 'M';
    if (n >= 1e4) return (n / 1e3).toFixed(0) + 'k';
    if (n >= 10) return n.toFixed(0);
    return n.toFixed(1);
  }

  function ms(n) {
    return n === null || n === undefined ? '–' : n.toFixed(1) + ' ms';
  }

  function key(parts) {
    return JSON.stringify(parts);
  }

  /** A small line chart of the metric's history (inline SVG). */
  function spark(parts) {
    const values = history[key(parts)] || [];
    const s = svgEl('svg', { class: 'spark', viewBox: '0 0 80 18', preserveAspectRatio: 'none' });
    if (values.length < 2) return s;
    let max = 0;
    for (const v of values) if (v > max) max = v;
    const step = 80 / (values.length - 1);
    const pts = values.map((v, i) => (i * step).toFixed(1) + ',' + (17 - (max > 0 ? (v / max) * 16 : 0)).toFixed(1));
    s.append(svgEl('polyline', { points: pts.join(' ') }));
    return s;
  }

  function cell(tr, text, cls) {
    const td = el('td', text, cls);
    tr.append(td);
    return td;
  }

  function clamp(v, lo, hi) {
    return v < lo ? lo : v > hi ? hi : v;
  }

  function draw() {
    for (const n of simNodes.values()) {
      n.x = clamp(n.x, 40, W - 40);
      n.y = clamp(n.y, 30, H - 40);
      const g = nodeEls.get(n.id);
      if (g) g.setAttribute('transform', 'translate(' + n.x.toFixed(1) + ',' + n.y.toFixed(1) + ')');
    }
    for (const l of simLinks) {
      const parts = linkEls.get(l.key);
      if (!parts || typeof l.source !== 'object') continue;
      const { line, label } = parts;
      line.setAttribute('x1', l.source.x.toFixed(1));
      line.setAttribute('y1', l.source.y.toFixed(1));
      line.setAttribute('x2', l.target.x.toFixed(1));
      line.setAttribute('y2', l.target.y.toFixed(1));
      label.setAttribute('x', ((l.source.x + l.target.x) / 2).toFixed(1));
      label.setAttribute('y', ((l.source.y + l.target.y) / 2 - 4).toFixed(1));
    }
  }

  function nodeGroup(n, observer) {
    let g = nodeEls.get(n.id);
    if (!g) {
      g = svgEl('g', {});
      g.append(svgEl('circle', { class: 'global', r: 24 }));
      g.append(svgEl('circle', { class: 'body', r: 18 }));
      g.append(svgEl('text', { class: 'badge' }));
      g.append(svgEl('text', { class: 'label', y: 34 }));
      g.append(svgEl('title', {}));
      nodeLayer.append(g);
      nodeEls.set(n.id, g);
    }
    const cls = ['node', kindClass(n.kind)];
    if (n.id === observer) cls.push('observer');
    g.setAttribute('class', cls.join(' '));
    g.dataset.global = n.global ? '1' : '0';
    g.children[0].style.display = n.global ? '' : 'none';
    g.children[2].textContent = n.kind === 'perl' ? 'P' : n.global ? 'G' : '';
    g.children[3].textContent = short(n.id, 28);
    g.children[4].textContent = n.id + (n.global ? ' (global)' : '') + ' — ' + n.kind + '\n' + n.addresses.join(' ');
    return g;
  }

  function updateGraph(v) {
    const seen = new Set();
    const nodes = [];
    for (const n of v.nodes) {
      seen.add(n.id);
      let s = simNodes.get(n.id);
      const fresh = !s;
      if (!s) {
        s = { id: n.id };
        simNodes.set(n.id, s);
      }
      nodes.push(s);
      nodeGroup(n, v.observer);
      if (fresh) s.isNew = true;
    }
    let changed = false;
    for (const [id, g] of nodeEls) {
      if (seen.has(id)) continue;
      g.remove();
      nodeEls.delete(id);
      simNodes.delete(id);
      changed = true;
    }
    const links = [];
    const liveLinks = new Set();
    let total = 0;
    for (const l of v.links) {
      const k = key([l.a, l.b]);
      liveLinks.add(k);
      let parts = linkEls.get(k);
      if (!parts) {
        const line = svgEl('line', { class: 'link' });
        const label = svgEl('text', { class: 'link-label' });
        linkLayer.append(line, label);
        linkEls.set(k, (parts = { line, label }));
        changed = true;
      }
      const r = l.msgRateAB + l.msgRateBA;
      total += r;
      parts.line.setAttribute('stroke-width', (1.5 + Math.log10(1 + r)).toFixed(2));
      parts.line.setAttribute('class', l.queued + l.unsentBytes > 0 ? 'link backlog' : 'link');
      parts.label.textContent = rate(l.msgRateAB) + ' ⇄ ' + rate(l.msgRateBA);
      links.push({ key: k, source: l.a, target: l.b });
    }
    for (const [k, parts] of linkEls) {
      if (liveLinks.has(k)) continue;
      parts.line.remove();
      parts.label.remove();
      linkEls.delete(k);
      changed = true;
    }
    for (const s of nodes) {
      if (s.isNew) changed = true;
      delete s.isNew;
    }
    simLinks = links;
    sim.nodes(nodes);
    sim.force('link').links(links);
    if (changed) sim.alpha(0.9).restart();
    graph.dataset.nodes = String(nodes.length);
    graph.dataset.links = String(links.length);
    graph.dataset.msgRate = total.toFixed(3);
    graph.dataset.updates = String(updates);
    document.getElementById('counts').textContent =
      '· ' + nodes.length + (nodes.length === 1 ? ' node, ' : ' nodes, ') + links.length + (links.length === 1 ? ' link' : ' links');
  }

  function updateNodes(v) {
    const body = document.querySelector('#nodes tbody');
    const rows = [];
    for (const n of v.nodes) {
      const tr = el('tr');
      const id = cell(tr, null, 'id');
      id.append(el('span', short(n.id, 40)));
      id.title = n.id;
      if (n.global) id.append(el('span', 'global', 'tag global'));
      cell(tr).append(el('span', n.kind, 'tag ' + kindClass(n.kind)));
      cell(tr, n.ports === null ? '–' : n.ports, 'num');
      cell(tr, bytes(n.heapUsed), 'num');
      cell(tr, bytes(n.rss), 'num');
      cell(tr).append(spark(['node', n.id, 'rss']));
      cell(tr, ms(n.loopP50) + ' / ' + ms(n.loopMax), 'num');
      cell(tr).append(spark(['node', n.id, 'loop']));
      cell(tr, n.dbKeys === null ? '–' : n.dbKeys, 'num');
      rows.push(tr);
    }
    body.replaceChildren(...rows);
  }

  function updateLinks(v) {
    const body = document.querySelector('#links tbody');
    const rows = [];
    for (const l of v.links) {
      const tr = el('tr');
      cell(tr, short(l.a, 32), 'id').title = l.a;
      cell(tr, short(l.b, 32), 'id').title = l.b;
      cell(tr, rate(l.msgRateAB), 'num');
      cell(tr, rate(l.msgRateBA), 'num');
      cell(tr, bytes(l.byteRateAB), 'num');
      cell(tr, bytes(l.byteRateBA), 'num');
      cell(tr, l.queued + ' msgs, ' + bytes(l.unsentBytes), 'num');
      cell(tr).append(spark(['link', l.a, l.b, 'msgs']));
      rows.push(tr);
    }
    if (rows.length === 0) {
      const tr = el('tr');
      cell(tr, 'no links', 'muted').colSpan = 8;
      rows.push(tr);
    }
    body.replaceChildren(...rows);
  }

  function updateFamilies(v) {
    const box = document.getElementById('families');
    const parts = [];
    for (const f of v.families) {
      parts.push(el('h3', f.family + ' (' + f.entries.length + (f.truncated ? '+' : '') + ')'));
      const table = el('table');
      for (const e of f.entries) {
        const tr = el('tr');
        cell(tr, e.key);
        cell(tr, e.value);
        table.append(tr);
      }
      parts.push(table);
    }
    if (parts.length === 0) parts.push(el('p', 'no families', 'muted'));
    box.replaceChildren(...parts);
  }

  const LEVELS = ['', 'fatal', 'alert', 'crit', 'error', 'warn', 'note', 'info', 'debug', 'trace'];

  function updateLogs(v) {
    const list = document.getElementById('logs');
    const atEnd = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
    const items = v.logs.map((r) => {
      const t = new Date(r.time > 1e11 ? r.time : r.time * 1000);
      const when = isNaN(t.getTime()) ? '' : t.toISOString().slice(11, 23);
      return el('li', when + ' ' + (LEVELS[r.level] || r.level) + ' ' + r.node + ': ' + r.message, 'lvl-' + r.level);
    });
    list.replaceChildren(...items);
    if (atEnd) list.scrollTop = list.scrollHeight;
  }

  function show(v) {
    updates++;
    history = v.history || Object.create(null);
    document.getElementById('observer').textContent = v.observer;
    document.getElementById('updated').textContent = 'updated ' + new Date(v.at).toLocaleTimeString();
    updateGraph(v);
    updateNodes(v);
    updateLinks(v);
    updateFamilies(v);
    updateLogs(v);
  }

  const status = document.getElementById('status');
  function setStatus(state, text) {
    status.dataset.state = state;
    status.textContent = text;
  }

  const events = new EventSource('/events');
  events.addEventListener('open', () => setStatus('live', 'live'));
  events.addEventListener('error', () => setStatus('lost', 'reconnecting…'));
  events.addEventListener('view', (e) => {
    let v;
    try {
      v = JSON.parse(e.data);
    } catch {
      return;
    }
    show(v);
  });
})();
`;
