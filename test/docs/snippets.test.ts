/**
 * Every TypeScript block of README.md and docs/*.md runs.
 *
 * Conventions of the documentation:
 * - a block fenced as ```ts (or ```typescript) is a complete program: it is written to
 *   test/docs/.snippets/ (inside the package, so `import … from 'aemp'` resolves) and run as
 *   `node --import tsx FILE`; it must exit with status 0 within SNIPPET_DEADLINE_MS, which
 *   means it closes every node it configured;
 * - the `// prints:` comments of a block show its whole standard output, line by line: the
 *   program must print exactly those lines, in the order of the comments, and nothing else (a
 *   block without such comments prints nothing). Standard error is not compared.
 *   - `// prints: TEXT` shows one line; it goes at the end of the statement that prints it, or
 *     on a line of its own after an `await` or at the end of the block;
 *   - more lines follow as whole-line comments indented by at least two spaces, aligned under
 *     the first line's text, e.g. for a loop:
 *         for (const i of [1, 2, 3]) console.log('n', i); // prints: n 1
 *         //                                                        n 2
 *         //                                                        n 3
 *     (a bare `// prints:` may open such a list; alone it shows an empty line);
 *   - TEXT is literal, except for placeholders standing for what varies from run to run:
 *     `<id>` a random node-ID suffix or port name (letters and digits, as in `first#RYKGyU28Cb`),
 *     `<n>` an integer (a TCP port, a count), `<time>` a decimal number, `…` any text within the
 *     line;
 *   - a block whose lines may come in a different order from run to run has a line
 *         // output order varies
 *     and its lines are then compared as a multiset (none does today: prefer awaiting events
 *     in the code so that the order is fixed);
 * - a block fenced as ```ts fragment is not run (an excerpt that needs surrounding code, or a
 *   program that needs a node outside the example);
 * - every block, fragments included, must type-check with the project's strict settings.
 *
 * Blocks that read the rc file see $AEMP_RC pointing at a file that binds to loopback and
 * names no seeds, so no block reaches a node outside its own process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/cli/commands.js';
import { compareOutput, expectedOutput } from './expected-output.js';

const ROOT = join(import.meta.dirname, '..', '..');
const DOCS = join(ROOT, 'docs');
const WORK = join(import.meta.dirname, '.snippets');
/** How long one block may run (they start in parallel, two at a time). */
const SNIPPET_DEADLINE_MS = 20_000;
const PARALLEL = 2;

interface Block {
  file: string;
  line: number;
  code: string;
  fragment: boolean;
}

/** The ```ts blocks of a Markdown text, with the line of their opening fence. */
function tsBlocks(file: string, text: string): Block[] {
  const blocks: Block[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(`{3,})\s*(\S*)(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const fence = open[1]!;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i]!.startsWith(fence); i++) body.push(lines[i]!);
    const lang = open[2]!.toLowerCase();
    if (lang !== 'ts' && lang !== 'typescript') continue;
    const flags = open[3]!.trim().split(/\s+/);
    blocks.push({
      file,
      line: start + 1,
      code: `${body.join('\n')}\n`,
      fragment: flags.includes('fragment'),
    });
  }
  return blocks;
}

function docFiles(): string[] {
  const docs = readdirSync(DOCS)
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => join(DOCS, f));
  return [join(ROOT, 'README.md'), ...docs];
}

const blocks = docFiles().flatMap((f) => tsBlocks(basename(f), readFileSync(f, 'utf8')));
const runnable = blocks.filter((b) => !b.fragment);
const ofDocs = (b: Block) => b.file !== 'README.md';

/* A small semaphore so that at most PARALLEL children run at once. */
let running = 0;
const queue: (() => void)[] = [];
async function slot<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= PARALLEL) await new Promise<void>((r) => queue.push(r));
  running++;
  try {
    return await fn();
  } finally {
    running--;
    queue.shift()?.();
  }
}

const children = new Set<ChildProcess>();

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
  timedOut: boolean;
}

function runFile(path: string, env: NodeJS.ProcessEnv): Promise<Run> {
  return runNode(['--import', 'tsx', path], env);
}

/** Runs `node ARGS…` in the repository, killed after SNIPPET_DEADLINE_MS. */
function runNode(args: string[], env: NodeJS.ProcessEnv, deadlineMs = SNIPPET_DEADLINE_MS): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: 'pipe' });
    children.add(child);
    let out = '';
    let err = '';
    let timedOut = false;
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, deadlineMs);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ status, signal, out, err, timedOut });
    });
  });
}

let env: NodeJS.ProcessEnv;

/** Where a block is written: one file per block, named after its page and line. */
function fileOf(b: Block): string {
  return join(WORK, `${b.file.replace(/[^A-Za-z0-9]+/g, '-')}-${b.line}.ts`);
}

beforeAll(() => {
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  // The generated files are not the project's code: keep linters that walk test/ away from them.
  writeFileSync(
    join(WORK, 'biome.json'),
    '{ "root": false, "linter": { "enabled": false }, "formatter": { "enabled": false }, "assist": { "enabled": false } }\n',
  );
  const rc = join(WORK, 'rc.json');
  writeFileSync(rc, '{ "version": 1, "secret": "docs-snippets", "binds": ["127.0.0.1:*"] }\n');
  env = { ...process.env, AEMP_RC: rc };
  for (const b of blocks) writeFileSync(fileOf(b), b.code);
  // Every block, fragments included, is type-checked with the project's strict settings.
  writeFileSync(
    join(WORK, 'tsconfig.json'),
    '{ "extends": "../../../tsconfig.json", "compilerOptions": { "moduleDetection": "force" }, "include": ["*.ts"] }\n',
  );
  delete env.PERL_ANYEVENT_MP_RC;
  delete env.AEMP_VERBOSE;
  delete env.AE_VERBOSE;
});

afterAll(async () => {
  await Promise.all(
    [...children].map(
      (c) =>
        new Promise<void>((resolve) => {
          c.once('close', () => resolve());
          c.kill('SIGKILL');
        }),
    ),
  );
  rmSync(WORK, { recursive: true, force: true });
});

describe('documentation blocks', () => {
  it('every page has runnable TypeScript, and fragments stay rare', () => {
    for (const f of docFiles().filter((p) => basename(p) !== 'README.md')) {
      expect(runnable.filter((b) => b.file === basename(f)).length, f).toBeGreaterThan(0);
    }
    const docBlocks = blocks.filter(ofDocs);
    expect(docBlocks.filter((b) => b.fragment).length).toBeLessThanOrEqual(Math.ceil(docBlocks.length / 10));
  });

  it('no runnable block uses the fixed port 4040; docs blocks ignore the rc file', () => {
    for (const b of runnable) expect(b.code, `${b.file}:${b.line}`).not.toMatch(/\b4040\b/);
    for (const b of runnable.filter(ofDocs)) {
      const configures = b.code.match(/\bconfigure\(/g)?.length ?? 0;
      const norc = b.code.match(/\bnorc: true\b/g)?.length ?? 0;
      expect(norc, `${b.file}:${b.line}: every configure() passes norc: true`).toBeGreaterThanOrEqual(
        Math.min(configures, 1),
      );
    }
  });
});

describe.concurrent('types', () => {
  it(
    'every block, fragments included, type-checks',
    async () => {
      const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
      // one tsc over every block: it takes the time of several snippets on a busy machine
      const run = await slot(() =>
        runNode([tsc, '-p', join(WORK, 'tsconfig.json')], env, SNIPPET_DEADLINE_MS * 3),
      );
      expect(run.timedOut, 'tsc did not finish in time').toBe(false);
      expect(run.out + run.err).toBe('');
      expect(run.status).toBe(0);
    },
    SNIPPET_DEADLINE_MS * 4,
  );
});

describe.concurrent.each(runnable.map((b) => [`${b.file}:${b.line}`, b] as const))('%s', (name, block) => {
  it(
    'runs to completion and prints exactly what its comments show',
    async () => {
      const run = await slot(() => runFile(fileOf(block), env));
      const report = `${name}\n--- stdout\n${run.out}--- stderr\n${run.err}`;
      expect(run.timedOut, `did not end within ${SNIPPET_DEADLINE_MS} ms: ${report}`).toBe(false);
      expect(run.status, report).toBe(0);
      const expected = expectedOutput(block.code);
      const shown = expected.lines.map((l) => `${l}\n`).join('');
      const problems = compareOutput(expected, run.out);
      expect(problems, `the output differs from what the block shows: ${report}--- shown\n${shown}`).toEqual(
        [],
      );
    },
    SNIPPET_DEADLINE_MS * 4,
  );
});

describe('the AnyEvent::MP mapping page', () => {
  const page = readFileSync(join(DOCS, 'aemp-mapping.md'), 'utf8');
  const perl = [
    'configure',
    'NODE',
    '$NODE',
    '$SELF',
    '$SRCNODE',
    'node_of',
    'port_is_local',
    'port',
    'rcv',
    'snd',
    'kil',
    'mon',
    'mon_guard',
    'cal',
    'spawn',
    'after',
    'peval',
    'psub',
    'snd_to_func',
    'snd_on',
    'eval_on',
    'up_nodes',
    'mon_nodes',
    'node_is_up',
    'db_set',
    'db_del',
    'db_reg',
    'db_family',
    'db_keys',
    'db_values',
    'db_mon',
    'grp_reg',
    'grp_get',
    'grp_mon',
  ];

  it.each(perl)('names AnyEvent::MP %s', (name) => {
    expect(page).toContain(`\`${name}\``);
  });

  it('names every aemp subcommand', () => {
    for (const name of ['run', ...COMMANDS.keys()]) expect(page, name).toMatch(new RegExp(`\\b${name}\\b`));
  });
});
