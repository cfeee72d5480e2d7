/**
 * The dashboard's page and style sheet, kept as strings so that the build ships them with the
 * code. The page has no inline script or style (the server's Content-Security-Policy forbids
 * both); its script is dashboard-script.ts, its graph layout the vendored d3-force.
 *
 * The graph element carries what the page shows as numbers, for tests and scripts:
 * `data-nodes`, `data-links`, `data-msg-rate` (messages per second over all links) and
 * `data-updates` (views received).
 */
import { VENDOR_SCRIPT_PATHS } from './dashboard-assets.js';

const scripts = [...VENDOR_SCRIPT_PATHS, '/dashboard.js']
  .map((src) => `  <script src="${src}" defer></script>\n`)
  .join('');

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="referrer" content="no-referrer">
  <title>aemp dashboard</title>
  <link rel="icon" href="/favicon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="/dashboard.css">
${scripts}</head>
<body>
  <header>
    <h1>aemp</h1>
    <span class="observer">observed from <b id="observer">…</b></span>
    <span id="updated" class="muted"></span>
    <span id="status" class="status" data-state="connecting">connecting…</span>
  </header>
  <main>
    <section class="panel graph-panel">
      <h2>Network <span id="counts" class="muted"></span></h2>
      <svg id="graph" viewBox="0 0 640 400" data-nodes="0" data-links="0" data-msg-rate="0" data-updates="0" role="img" aria-label="nodes and links"></svg>
      <p class="legend">
        <span class="dot aemp"></span> aemp node
        <span class="dot perl"></span> Perl node
        <span class="dot unknown"></span> not answering
        <span class="ring"></span> global
        <span class="bar"></span> send backlog
        <span class="muted">· link labels: messages/s each way</span>
      </p>
    </section>
    <section class="panel log-panel">
      <h2>Log</h2>
      <ol id="logs"></ol>
    </section>
    <section class="panel wide">
      <h2>Nodes</h2>
      <table id="nodes">
        <thead><tr><th>node</th><th>kind</th><th>ports</th><th>heap</th><th>RSS</th><th></th><th>loop delay p50 / max</th><th></th><th>DB keys</th></tr></thead>
        <tbody></tbody>
      </table>
    </section>
    <section class="panel wide">
      <h2>Links</h2>
      <table id="links">
        <thead><tr><th>a</th><th>b</th><th>msgs/s a→b</th><th>msgs/s b→a</th><th>bytes/s a→b</th><th>bytes/s b→a</th><th>backlog</th><th>msgs/s</th></tr></thead>
        <tbody></tbody>
      </table>
    </section>
    <section class="panel wide">
      <h2>Database</h2>
      <div id="families"><p class="muted">no families</p></div>
    </section>
  </main>
</body>
</html>
`;

/** Three linked dots. */
export const DASHBOARD_ICON =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><g stroke="#7d8799" stroke-width="2">' +
  '<line x1="8" y1="24" x2="16" y2="8"/><line x1="16" y1="8" x2="25" y2="22"/></g>' +
  '<circle cx="8" cy="24" r="5" fill="#2f6fdf"/><circle cx="16" cy="8" r="5" fill="#e0a100"/>' +
  '<circle cx="25" cy="22" r="5" fill="#8e44ad"/></svg>';

export const DASHBOARD_CSS = `:root {
  --bg: #f6f7f9; --panel: #fff; --ink: #1d2330; --muted: #6b7385; --line: #dfe3ea;
  --aemp: #2f6fdf; --perl: #8e44ad; --unknown: #9aa3b2; --global: #e0a100; --link: #7d8799; --backlog: #d9622b;
  font: 13px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: var(--bg);
}
body { margin: 0; }
header { display: flex; gap: 1.2em; align-items: baseline; padding: .6em 1.2em; background: #1d2330; color: #fff; }
header h1 { margin: 0; font-size: 1.2em; letter-spacing: .04em; }
header .muted { color: #aab2c2; }
.status { margin-left: auto; padding: .1em .6em; border-radius: 1em; background: #556; }
.status[data-state="live"] { background: #2e8b57; }
.status[data-state="lost"] { background: #b03a2e; }
main { display: grid; grid-template-columns: minmax(420px, 1fr) minmax(420px, 1fr); gap: 1em; padding: 1em; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: .6em .9em; overflow: auto; }
.wide { grid-column: 1 / -1; }
h2 { margin: 0 0 .5em; font-size: 1em; }
.muted { color: var(--muted); font-weight: normal; }
#graph { width: 100%; height: auto; background: #fbfcfd; border-radius: 4px; }
#graph .link { stroke: var(--link); stroke-opacity: .7; }
#graph .link.backlog { stroke: var(--backlog); stroke-opacity: 1; }
#graph .link-label { font-size: 10px; fill: var(--muted); text-anchor: middle; }
#graph .node circle.body { stroke: #fff; stroke-width: 2; }
#graph .node.aemp circle.body { fill: var(--aemp); }
#graph .node.perl circle.body { fill: var(--perl); }
#graph .node.unknown circle.body { fill: var(--unknown); }
#graph .node circle.global { fill: none; stroke: var(--global); stroke-width: 3; }
#graph .node.observer circle.body { stroke: #1d2330; }
#graph .node .badge { fill: #fff; font-size: 11px; font-weight: bold; text-anchor: middle; dominant-baseline: central; }
#graph .node .label { font-size: 11px; fill: var(--ink); text-anchor: middle; }
.legend { margin: .4em 0 0; color: var(--ink); }
.legend .dot, .legend .ring { display: inline-block; width: .9em; height: .9em; border-radius: 50%; vertical-align: -.1em; margin-left: .8em; }
.legend .dot.aemp { background: var(--aemp); } .legend .dot.perl { background: var(--perl); }
.legend .dot.unknown { background: var(--unknown); }
.legend .bar { display: inline-block; width: 1.2em; height: 3px; background: var(--backlog); vertical-align: .2em; margin-left: .8em; }
.legend .ring { border: 3px solid var(--global); width: .5em; height: .5em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .15em .5em; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { color: var(--muted); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.id { max-width: 22em; overflow: hidden; text-overflow: ellipsis; }
.tag { display: inline-block; padding: 0 .4em; border-radius: 3px; font-size: .85em; color: #fff; background: var(--unknown); margin-left: .3em; }
.tag.aemp { background: var(--aemp); } .tag.perl { background: var(--perl); } .tag.global { background: var(--global); }
svg.spark { width: 80px; height: 18px; vertical-align: middle; }
svg.spark polyline { fill: none; stroke: var(--aemp); stroke-width: 1.3; }
#families h3 { font-size: .95em; margin: .6em 0 .2em; }
#families td { white-space: pre-wrap; word-break: break-all; font-family: ui-monospace, monospace; font-size: .92em; }
#logs { list-style: none; margin: 0; padding: 0; max-height: 30em; overflow: auto; font-family: ui-monospace, monospace; font-size: .9em; }
#logs li { white-space: pre-wrap; word-break: break-all; border-bottom: 1px dotted var(--line); }
#logs .lvl-1, #logs .lvl-2, #logs .lvl-3, #logs .lvl-4 { color: #b03a2e; }
#logs .lvl-5 { color: #a66300; }
@media (max-width: 900px) { main { grid-template-columns: 1fr; } }
`;
