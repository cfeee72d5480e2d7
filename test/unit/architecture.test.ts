/**
 * The layers of src/ and what keeps them apart:
 *
 *   src/cli → src/index.ts (the public entry) and src/streams/config/config.ts only
 *   src/index.ts → src/streams, src/protocol, src/errors.ts
 *   src/streams → src/protocol, src/errors.ts (never the CLI, never back to the entry)
 *   src/protocol → src/errors.ts only: no rxjs, no timers (setImmediate is not time),
 *     node:net/node:tls only in the TCP transport (tcp-transport.ts)
 *   src/errors.ts imports nothing of the project
 *
 * Also: no import cycles (type-only imports count: they tie the modules' designs together just
 * the same), and no source file over 500 lines.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..', 'src');

/** Every .ts file of src/, by its path relative to src/ ("streams/node.ts"). */
const files = new Map<string, string>(
  readdirSync(root, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => [f.split('\\').join('/'), readFileSync(join(root, f), 'utf8')]),
);

/** Import specifiers of a module: static imports and re-exports (type-only too), bare imports, `import()`. */
function specifiers(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const found = [
    ...code.matchAll(/^\s*(?:import|export)\b[^'";]*?\bfrom\s*['"]([^'"]+)['"]/gm),
    ...code.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm),
    ...code.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
  ];
  return found.map((m) => m[1]!);
}

/** A relative specifier of `from` as a path relative to src/ (`.js` → `.ts`), or undefined if it leaves src/. */
function resolveSpec(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const p = posix.normalize(posix.join(posix.dirname(from), spec)).replace(/\.js$/, '.ts');
  if (files.has(p)) return p;
  if (files.has(`${p}.ts`)) return `${p}.ts`;
  if (files.has(`${p}/index.ts`)) return `${p}/index.ts`;
  return p;
}

/** The import graph of src/: file → the project files it imports. */
const graph = new Map<string, string[]>(
  [...files].map(([file, text]) => [
    file,
    [...new Set(specifiers(text).flatMap((s) => resolveSpec(file, s) ?? []))].sort(),
  ]),
);

const layer = (f: string) => (f === 'index.ts' || f === 'errors.ts' ? f : f.split('/')[0]!);

/** Every import of the project breaking `allowed`, as "from → to". */
function violations(inLayer: string, allowed: (to: string, from: string) => boolean): string[] {
  const out: string[] = [];
  for (const [from, tos] of graph) {
    if (layer(from) !== inLayer) continue;
    for (const to of tos) if (!allowed(to, from)) out.push(`${from} → ${to}`);
  }
  return out;
}

/**
 * The import cycles of `g`: one path per strongly connected component of more than one file (or
 * a file importing itself), found with Tarjan's algorithm, as "a → b → … → a", followed by the
 * component's other files if the path does not pass them all.
 */
function cycles(g: Map<string, string[]>): string[] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const connect = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!idx.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1 || (g.get(v) ?? []).includes(v)) components.push(c);
    }
  };
  for (const v of [...g.keys()].sort()) if (!idx.has(v)) connect(v);
  return components.map((c) => {
    const path = cyclePath(g, new Set(c));
    const others = c.filter((f) => !path.split(' → ').includes(f)).sort();
    return others.length > 0 ? `${path} (and through ${others.join(', ')})` : path;
  });
}

/** One cycle through the first (sorted) file of a component, by breadth-first search inside it. */
function cyclePath(g: Map<string, string[]>, inside: Set<string>): string {
  const start = [...inside].sort()[0]!;
  const prev = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of g.get(v) ?? []) {
      if (!inside.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let u: string | undefined = v; u !== undefined && u !== start; u = prev.get(u))
          path.splice(1, 0, u);
        return [...path, start].join(' → ');
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return [...inside].join(' ↔ ');
}

describe('architecture', () => {
  it('finds the source files and their imports', () => {
    expect(files.size).toBeGreaterThan(40);
    expect(graph.get('index.ts')).toContain('errors.ts');
    expect(
      specifiers("import type { A } from './a.js';\nexport * from \"./b.js\";\nimport './c.js';"),
    ).toEqual(['./a.js', './b.js', './c.js']);
    expect(
      specifiers('// import { x } from "./commented.js"\nconst m = await import(\'./lazy.js\');'),
    ).toEqual(['./lazy.js']);
  });

  it('every relative import names a file that exists', () => {
    const missing = [...graph].flatMap(([from, tos]) =>
      tos.filter((to) => !files.has(to)).map((to) => `${from} → ${to}`),
    );
    expect(missing).toEqual([]);
  });

  it('src/cli imports only the public entry (src/index.ts) and the config module', () => {
    expect(
      violations(
        'cli',
        (to) => layer(to) === 'cli' || to === 'index.ts' || to === 'streams/config/config.ts',
      ),
    ).toEqual([]);
  });

  it('src/index.ts imports only streams, protocol and errors', () => {
    expect(violations('index.ts', (to) => ['streams', 'protocol', 'errors.ts'].includes(layer(to)))).toEqual(
      [],
    );
  });

  it('src/streams imports only streams, protocol and errors (never the CLI or the entry)', () => {
    expect(violations('streams', (to) => ['streams', 'protocol', 'errors.ts'].includes(layer(to)))).toEqual(
      [],
    );
  });

  it('src/protocol imports only protocol and errors', () => {
    expect(violations('protocol', (to) => ['protocol', 'errors.ts'].includes(layer(to)))).toEqual([]);
  });

  it('src/protocol uses no rxjs and no timers; only the transport implementation uses node:net/node:tls', () => {
    const found: string[] = [];
    for (const [file, text] of files) {
      if (layer(file) !== 'protocol') continue;
      for (const spec of specifiers(text)) {
        if (/^rxjs/.test(spec)) found.push(`${file} imports ${spec}`);
        if (/^(node:)?(net|tls)$/.test(spec) && file !== 'protocol/tcp-transport.ts')
          found.push(`${file} imports ${spec}`);
      }
      // Time is the streams layer's (the node's clock); "later in this turn" (setImmediate) is not time.
      if (/\b(set|clear)(Timeout|Interval)\(/.test(text)) found.push(`${file} uses a timer`);
    }
    expect(found).toEqual([]);
  });

  it('src/errors.ts is a leaf', () => {
    expect(graph.get('errors.ts')).toEqual([]);
  });

  it('has no import cycles, type-only imports included', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('the cycle finder reports a cycle as a path, and only real cycles', () => {
    const g = new Map([
      ['a', ['b']],
      ['b', ['c', 'd']],
      ['c', ['a']],
      ['d', []],
      ['e', ['e']],
    ]);
    expect(cycles(g).sort()).toEqual(['a → b → c → a', 'e → e']);
    expect(
      cycles(
        new Map([
          ['x', ['y']],
          ['y', []],
        ]),
      ),
    ).toEqual([]);
    // Two cycles sharing a file form one component: one path, the other files named.
    const twin = new Map([
      ['p', ['q', 'r']],
      ['q', ['p']],
      ['r', ['p']],
    ]);
    expect(cycles(twin)).toEqual(['p → q → p (and through r)']);
  });

  it('no source file is over 500 lines', () => {
    const long = [...files]
      .map(([file, text]) => ({ file, lines: text.split('\n').length - (text.endsWith('\n') ? 1 : 0) }))
      .filter((f) => f.lines > 500)
      .map((f) => `src/${f.file}: ${f.lines} lines`);
    expect(long).toEqual([]);
  });
});
