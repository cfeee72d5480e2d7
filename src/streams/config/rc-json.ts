/**
 * A small JSON parser in the "relaxed" dialect of Perl's JSON::XS, used for the rc file:
 * - `#` comments (and, for convenience, `//` comments) run to the end of the line;
 * - a trailing comma is allowed before `]` and `}`;
 * - a literal tab character is allowed inside strings.
 * Everything else is strict JSON. Errors name the line and column and never quote the input
 * (the rc file holds the shared secret, and error messages end up in logs).
 */

/** Nesting deeper than this is rejected instead of exhausting the stack. */
const MAX_DEPTH = 256;

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

const ESCAPES: Record<string, string> = {
  '"': '"',
  '\\': '\\',
  '/': '/',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
};

/** Parses relaxed JSON text; throws `SyntaxError` ("… at line L, column C"). */
export function parseRelaxedJsonValue(text: string): unknown {
  const p = new Parser(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  const value = p.value(0);
  p.space();
  if (p.pos < p.src.length) p.fail('unexpected text after the JSON value');
  return value;
}

class Parser {
  pos = 0;
  constructor(readonly src: string) {}

  fail(what: string, at = this.pos): never {
    const before = this.src.slice(0, at);
    const line = before.split('\n').length;
    const column = at - before.lastIndexOf('\n');
    throw new SyntaxError(`${what} at line ${line}, column ${column}`);
  }

  /** Skips whitespace and comments. */
  space(): void {
    const s = this.src;
    for (;;) {
      const c = s[this.pos];
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') this.pos++;
      else if (c === '#' || (c === '/' && s[this.pos + 1] === '/')) {
        while (this.pos < s.length && s[this.pos] !== '\n') this.pos++;
      } else return;
    }
  }

  value(depth: number): unknown {
    if (depth > MAX_DEPTH) this.fail('nesting too deep');
    this.space();
    const c = this.src[this.pos];
    if (c === '{') return this.object(depth);
    if (c === '[') return this.array(depth);
    if (c === '"') return this.string();
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number();
    for (const [word, v] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (this.src.startsWith(word, this.pos)) {
        this.pos += word.length;
        return v;
      }
    }
    return this.fail(c === undefined ? 'unexpected end of input' : `unexpected character ${describe(c)}`);
  }

  object(depth: number): Record<string, unknown> {
    const obj: Record<string, unknown> = {};
    this.pos++; // {
    this.space();
    if (this.src[this.pos] === '}') {
      this.pos++;
      return obj;
    }
    for (;;) {
      this.space();
      if (this.src[this.pos] !== '"') this.fail('expected a string key');
      const key = this.string();
      this.space();
      if (this.src[this.pos] !== ':') this.fail("expected ':' after an object key");
      this.pos++;
      const v = this.value(depth + 1);
      // a key "__proto__" must become an own property, never the prototype
      Object.defineProperty(obj, key, { value: v, enumerable: true, writable: true, configurable: true });
      this.space();
      const c = this.src[this.pos];
      if (c === '}') {
        this.pos++;
        return obj;
      }
      if (c !== ',') this.fail("expected ',' or '}' in an object");
      this.pos++;
      this.space();
      if (this.src[this.pos] === '}') {
        this.pos++;
        return obj;
      }
    }
  }

  array(depth: number): unknown[] {
    const arr: unknown[] = [];
    this.pos++; // [
    this.space();
    if (this.src[this.pos] === ']') {
      this.pos++;
      return arr;
    }
    for (;;) {
      arr.push(this.value(depth + 1));
      this.space();
      const c = this.src[this.pos];
      if (c === ']') {
        this.pos++;
        return arr;
      }
      if (c !== ',') this.fail("expected ',' or ']' in an array");
      this.pos++;
      this.space();
      if (this.src[this.pos] === ']') {
        this.pos++;
        return arr;
      }
    }
  }

  string(): string {
    const s = this.src;
    const start = this.pos;
    this.pos++; // "
    let out = '';
    let run = this.pos;
    for (;;) {
      if (this.pos >= s.length) this.fail('unterminated string', start);
      const c = s[this.pos]!;
      if (c === '"') {
        out += s.slice(run, this.pos);
        this.pos++;
        return out;
      }
      if (c === '\\') {
        out += s.slice(run, this.pos);
        const e = s[this.pos + 1];
        if (e === 'u') {
          const hex = s.slice(this.pos + 2, this.pos + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('bad \\u escape in a string');
          out += String.fromCharCode(Number.parseInt(hex, 16));
          this.pos += 6;
        } else if (e !== undefined && ESCAPES[e] !== undefined) {
          out += ESCAPES[e];
          this.pos += 2;
        } else this.fail('bad escape in a string');
        run = this.pos;
      } else if (c < ' ' && c !== '\t') {
        this.fail('control character in a string');
      } else this.pos++;
    }
  }

  number(): number {
    NUMBER.lastIndex = this.pos;
    const m = NUMBER.exec(this.src);
    if (!m) return this.fail('bad number');
    this.pos += m[0].length;
    return Number(m[0]);
  }
}

function describe(c: string): string {
  const code = c.codePointAt(0)!;
  return code >= 0x20 && code < 0x7f ? `'${c}'` : `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}
