/**
 * The matcher behind the documentation test: what `// prints:` comments promise, and how a
 * program's standard output is held to it.
 */
import { describe, expect, it } from 'vitest';
import { compareOutput, expectedOutput, linePattern, outputLines } from './expected-output.js';

const block = (...lines: string[]) => `${lines.join('\n')}\n`;
const check = (code: string, stdout: string) => compareOutput(expectedOutput(code), stdout);

describe('expectedOutput', () => {
  it('collects trailing and whole-line comments in order', () => {
    const code = block(
      "console.log('a', 1); // prints: a 1",
      '// a plain comment is not output',
      'await done;',
      '// prints: b 2',
    );
    expect(expectedOutput(code)).toEqual({ lines: ['a 1', 'b 2'], orderVaries: false });
  });

  it('reads continuation lines after a prints comment, not after other comments', () => {
    const code = block(
      'loop(); // prints: one',
      '//                 two',
      '// prints:',
      '//   three',
      '//   four',
      '// 1. a numbered note',
      '//    that goes on',
    );
    expect(expectedOutput(code).lines).toEqual(['one', 'two', 'three', 'four']);
  });

  it('a bare prints comment without continuation shows an empty line', () => {
    expect(expectedOutput(block('console.log(); // prints:')).lines).toEqual(['']);
  });

  it('a block without prints comments promises no output', () => {
    expect(expectedOutput(block('const x = 1;')).lines).toEqual([]);
    expect(check(block('const x = 1;'), '')).toEqual([]);
    expect(check(block('const x = 1;'), 'surprise\n')).toEqual(['line 1: extra line "surprise"']);
  });

  it('notices the order-varies declaration', () => {
    expect(expectedOutput(block('// output order varies', 'x(); // prints: x')).orderVaries).toBe(true);
  });
});

describe('linePattern', () => {
  it('takes everything but placeholders literally', () => {
    const p = linePattern('got ["add",2,3] (a.b) * + ? $ ^ | {1} \\ /');
    expect(p.test('got ["add",2,3] (a.b) * + ? $ ^ | {1} \\ /')).toBe(true);
    expect(p.test('got ["add",2,3] (aXb) * + ? $ ^ | {1} \\ /')).toBe(false);
  });

  it('matches whole lines only', () => {
    expect(linePattern('my port is first#').test('my port is first#RYKGyU28Cb')).toBe(false);
    expect(linePattern('sum 5').test('the sum 5')).toBe(false);
  });

  it('<id> stands for a random ID or port name, nothing more', () => {
    const p = linePattern('my port is first#<id>');
    expect(p.test('my port is first#RYKGyU28Cb')).toBe(true);
    expect(p.test('my port is first#')).toBe(false);
    expect(p.test('my port is first#RYKG/yU28Cb')).toBe(false);
    expect(p.test('my port is other#RYKGyU28Cb')).toBe(false);
  });

  it('<n> is an integer, <time> any decimal number', () => {
    expect(linePattern("[ '127.0.0.1:<n>' ]").test("[ '127.0.0.1:46105' ]")).toBe(true);
    expect(linePattern('took <n>').test('took 1.5')).toBe(false);
    expect(linePattern('took <n>').test('took many')).toBe(false);
    expect(linePattern('took <time> s').test('took 1.5 s')).toBe(true);
    expect(linePattern('took <time> s').test('took 2 s')).toBe(true);
    expect(linePattern('took <time> s').test('took - s')).toBe(false);
  });

  it('… is any text within the line', () => {
    const p = linePattern('error: … (code <n>)');
    expect(p.test('error: connection refused (code 111)')).toBe(true);
    expect(p.test('error:  (code 111)')).toBe(true);
    expect(p.test('warning: connection refused (code 111)')).toBe(false);
  });
});

describe('compareOutput, in order', () => {
  const code = block(
    "console.log('my port is', id); // prints: my port is first#<id>",
    'for (const i of [1, 2, 3]) console.log(i); // prints: 1',
    '//                                                   2',
    '//                                                   3',
  );

  it('accepts exactly the promised output', () => {
    expect(check(code, 'my port is first#80QUgATn3b\n1\n2\n3\n')).toEqual([]);
    expect(check(code, 'my port is first#80QUgATn3b\n1\n2\n3')).toEqual([]);
  });

  it('fails for a missing line', () => {
    expect(check(code, 'my port is first#80QUgATn3b\n1\n2\n')).toEqual(['line 4: missing line "3"']);
  });

  it('fails for an extra line', () => {
    expect(check(code, 'my port is first#80QUgATn3b\n1\n2\n3\n4\n')).toEqual(['line 5: extra line "4"']);
  });

  it('fails for a wrong value', () => {
    expect(check(code, 'my port is first#80QUgATn3b\n1\n5\n3\n')).toEqual(['line 3: expected "2", got "5"']);
  });

  it('fails for lines out of order', () => {
    expect(check(code, 'my port is first#80QUgATn3b\n1\n3\n2\n')).toHaveLength(2);
  });

  it('counts an empty line as a line', () => {
    expect(check(code, 'my port is first#80QUgATn3b\n1\n\n2\n3\n')).not.toEqual([]);
  });
});

describe('compareOutput, order varies', () => {
  const code = block(
    '// output order varies',
    'a(); // prints: up …',
    'b(); // prints: up b',
    'c(); // prints: done',
  );

  it('accepts the lines in any order', () => {
    expect(check(code, 'done\nup a\nup b\n')).toEqual([]);
  });

  it('pairs a general pattern with what the specific ones leave', () => {
    // `up …` is tried first and could take "up b"; it must give it up to `up b`.
    expect(check(code, 'up b\nup a\ndone\n')).toEqual([]);
  });

  it('still fails for a missing, an extra or a wrong line', () => {
    expect(check(code, 'up b\ndone\n')).toEqual([expect.stringMatching(/^missing line "up /)]);
    expect(check(code, 'up b\nup a\ndone\ndone\n')).toEqual(['extra line "done" (in any order)']);
    expect(check(code, 'up b\nup a\nfinished\n')).toEqual([
      'missing line "done" (in any order)',
      'extra line "finished" (in any order)',
    ]);
  });

  it('counts repeated lines', () => {
    const twice = block('// output order varies', '// prints: x', '// prints: x');
    expect(check(twice, 'x\nx\n')).toEqual([]);
    expect(check(twice, 'x\n')).toEqual(['missing line "x" (in any order)']);
  });
});

describe('outputLines', () => {
  it('splits on newlines; a final newline ends the last line', () => {
    expect(outputLines('')).toEqual([]);
    expect(outputLines('\n')).toEqual(['']);
    expect(outputLines('a\nb\n')).toEqual(['a', 'b']);
    expect(outputLines('a\nb')).toEqual(['a', 'b']);
  });
});
