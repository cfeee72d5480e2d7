/**
 * Layer rules: src/protocol is the wire (no rxjs, no timers, nothing from streams or cli);
 * src/streams never imports the CLI; src/errors.ts imports nothing from the project.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..', 'src');

function sources(dir: string): { file: string; text: string }[] {
  return readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => ({ file: `${dir}/${f}`, text: readFileSync(join(root, dir, f), 'utf8') }));
}

function imports(text: string): string[] {
  return [...text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
}

describe('architecture', () => {
  it('src/protocol uses no rxjs, no timers and nothing from streams or cli', () => {
    const files = sources('protocol');
    expect(files.length).toBeGreaterThan(5);
    for (const { file, text } of files) {
      for (const spec of imports(text)) {
        expect(spec, `${file} imports ${spec}`).not.toMatch(/^rxjs|\/streams\/|\/cli\//);
      }
      expect(text, `${file} uses a timer`).not.toMatch(/\bset(Timeout|Interval|Immediate)\(/);
    }
  });

  it('src/streams never imports the CLI', () => {
    for (const { file, text } of sources('streams')) {
      for (const spec of imports(text)) expect(spec, `${file} imports ${spec}`).not.toMatch(/\/cli\//);
    }
  });

  it('src/errors.ts is a leaf', () => {
    const text = readFileSync(join(root, 'errors.ts'), 'utf8');
    expect(imports(text).filter((s) => s.startsWith('.'))).toEqual([]);
  });
});
