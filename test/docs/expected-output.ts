/**
 * What a documentation block promises to print, and whether its standard output keeps that
 * promise. The conventions are described in snippets.test.ts; this module implements them.
 */

/** The output a block's comments show. */
export interface Expected {
  /** One pattern per line of standard output, in the order of the comments. */
  lines: string[];
  /** The block says `// output order varies`: the lines are compared as a multiset. */
  orderVaries: boolean;
}

/** `// prints: TEXT`, at the end of a line of code or on a line of its own. */
const PRINTS = /\/\/\s*prints:(.*)$/;
/** A continuation: a whole-line comment indented by at least two spaces, right after a `prints:`. */
const CONTINUATION = /^\s*\/\/ {2,}(\S.*)$/;
const ORDER_VARIES = /^\s*\/\/\s*output order varies\s*$/m;

/** The lines a block's `// prints:` comments show, in order. */
export function expectedOutput(code: string): Expected {
  const source = code.split('\n');
  const lines: string[] = [];
  let inPrints = false;
  for (let i = 0; i < source.length; i++) {
    const continued = inPrints ? CONTINUATION.exec(source[i]!) : null;
    if (continued) {
      lines.push(continued[1]!.trimEnd());
      continue;
    }
    const prints = PRINTS.exec(source[i]!);
    inPrints = prints !== null;
    if (!prints) continue;
    const text = prints[1]!.trim();
    // A bare `// prints:` introduces continuation lines; with none after it, it shows an empty line.
    if (text !== '' || !CONTINUATION.test(source[i + 1] ?? '')) lines.push(text);
  }
  return { lines, orderVaries: ORDER_VARIES.test(code) };
}

/** What each placeholder of an expected line stands for. */
export const PLACEHOLDERS: Readonly<Record<string, string>> = {
  '<id>': '[0-9A-Za-z]+',
  '<n>': '-?[0-9]+',
  '<time>': '-?[0-9]+(?:\\.[0-9]+)?(?:e[-+]?[0-9]+)?',
  '…': '.*',
};

const PLACEHOLDER = new RegExp(Object.keys(PLACEHOLDERS).join('|'), 'g');

/** The regular expression an expected line stands for: literal text, except for placeholders. */
export function linePattern(expected: string): RegExp {
  let source = '';
  let from = 0;
  for (const m of expected.matchAll(PLACEHOLDER)) {
    source += literal(expected.slice(from, m.index)) + PLACEHOLDERS[m[0]]!;
    from = m.index + m[0].length;
  }
  source += literal(expected.slice(from));
  return new RegExp(`^${source}$`);
}

function literal(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
}

/** The lines of a program's standard output (a final newline does not start another line). */
export function outputLines(stdout: string): string[] {
  if (stdout === '') return [];
  const lines = stdout.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

/**
 * Compares standard output with what the comments show. Returns the differences, one per
 * line (empty when the output is exactly what the block shows).
 */
export function compareOutput(expected: Expected, stdout: string): string[] {
  const actual = outputLines(stdout);
  return expected.orderVaries
    ? compareUnordered(expected.lines, actual)
    : compareOrdered(expected.lines, actual);
}

function compareOrdered(expected: string[], actual: string[]): string[] {
  const problems: string[] = [];
  for (let i = 0; i < Math.max(expected.length, actual.length); i++) {
    const want = expected[i];
    const got = actual[i];
    if (want === undefined) problems.push(`line ${i + 1}: extra line ${JSON.stringify(got)}`);
    else if (got === undefined) problems.push(`line ${i + 1}: missing line ${JSON.stringify(want)}`);
    else if (!linePattern(want).test(got))
      problems.push(`line ${i + 1}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
  }
  return problems;
}

/** Pairs expected and actual lines as a maximum bipartite matching, so `…` cannot steal a line. */
function compareUnordered(expected: string[], actual: string[]): string[] {
  const patterns = expected.map(linePattern);
  const owner = new Array<number>(actual.length).fill(-1);
  const assign = (e: number, seen: boolean[]): boolean => {
    for (let a = 0; a < actual.length; a++) {
      if (seen[a] || !patterns[e]!.test(actual[a]!)) continue;
      seen[a] = true;
      if (owner[a] === -1 || assign(owner[a]!, seen)) {
        owner[a] = e;
        return true;
      }
    }
    return false;
  };
  const problems: string[] = [];
  for (let e = 0; e < expected.length; e++) {
    if (!assign(e, new Array<boolean>(actual.length).fill(false)))
      problems.push(`missing line ${JSON.stringify(expected[e])} (in any order)`);
  }
  actual.forEach((line, a) => {
    if (owner[a] === -1) problems.push(`extra line ${JSON.stringify(line)} (in any order)`);
  });
  return problems;
}
