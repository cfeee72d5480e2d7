/**
 * The configuration subcommands (spec/config-and-cli.md §4.3). They change the current target
 * of the rc file in memory (the top level, or the profile chosen with `profile NAME`); the
 * tool writes the file once at exit. Values are stored as given — plain words as strings,
 * JSON arguments as their JSON value — exactly as Perl's `aemp` stores them. Unlike Perl's
 * `aemp`, the file is not written when the result would not be a valid configuration (a value
 * nodes would refuse, a parent profile that does not exist): see `RcEditor.save`.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import {
  builtinDefaults,
  CONFIG_KEY_NAMES,
  CONFIG_KEYS,
  formatRcWarning,
  generateSecret,
  ORIGIN_ARGS,
  perlTruthy,
  profileChain,
  rcMergeData,
  resolveConfig,
  SECRET_LENGTH,
  shortSecretWarning,
  unknownKeyWarnings,
} from '../streams/config/config.js';
import { type ArgQueue, asText, die, formatError } from './args.js';
import { generateCertificate } from './cert.js';
import { pretty } from './json-text.js';
import { splitList } from './rc-editor.js';
import type { Session } from './session.js';

/** A subcommand: what it takes, one line of help, and what it does. */
export interface Command {
  readonly name: string;
  /** Its arguments, e.g. `PORT ARGS…` (empty if none). */
  readonly synopsis: string;
  /** One line of help. */
  readonly summary: string;
  /** More help for `aemp help COMMAND`. */
  readonly details?: string;
  /** Help section. */
  readonly group: 'node' | 'config' | 'attr' | 'help';
  run(s: Session, q: ArgQueue): void | Promise<void>;
}

export { generateSecret, SECRET_LENGTH } from '../streams/config/config.js';

/** Stores `value` under `key` of the current target (checked when the file is saved). */
function store(s: Session, key: string, value: unknown): void {
  s.rc.set(key, value);
  if (key === 'secret' && typeof value === 'string') {
    const weak = shortSecretWarning(value);
    if (weak) s.io.err(`aemp: warning: ${weak}\n`);
  }
}

/** A list argument: JSON arrays and objects as they are, words split on commas. */
function listArgument(v: unknown): unknown {
  return typeof v === 'object' && v !== null ? v : splitList(v);
}

/** Removes every entry of the list `key` equal to `item`; appends it again when `add`. */
function editList(s: Session, key: string, item: unknown, add: boolean): void {
  const current = s.rc.list(key);
  if (current === undefined && !add) return;
  const kept = (current ?? []).filter((x) => !(typeof x === 'string' && x === item));
  if (add) kept.push(item);
  store(s, key, kept);
}

/** `set<key> VALUE` and `del<key>` for a key stored as given. */
function setDel(
  key: string,
  missing: string,
  what: string,
  opts: { group?: Command['group']; synopsis?: string; hint?: string } = {},
): Command[] {
  const group = opts.group ?? 'config';
  return [
    {
      name: `set${key}`,
      synopsis: opts.synopsis ?? 'VALUE',
      summary: `set ${what}${opts.hint ? `: ${opts.hint}` : ''}`,
      group,
      run: (s, q) => store(s, key, q.shift(missing)),
    },
    { name: `del${key}`, synopsis: '', summary: `remove ${what}`, group, run: (s) => s.rc.del(key) },
  ];
}

/** `set<key>s LIST`, `del<key>s`, `add<key> ITEM`, `del<key> ITEM` for a list key. */
function listCommands(key: string, item: string, what: string, missingList: string, missingItem: string) {
  const plural = `${item}s`;
  return [
    {
      name: `set${plural}`,
      synopsis: 'LIST',
      summary: `set ${what} (JSON array or comma-separated)`,
      group: 'config',
      run: (s, q) => store(s, key, listArgument(q.shift(missingList))),
    },
    {
      name: `del${plural}`,
      synopsis: '',
      summary: `remove ${what}`,
      group: 'config',
      run: (s) => s.rc.del(key),
    },
    {
      name: `add${item}`,
      synopsis: item.toUpperCase(),
      summary: `add one to ${what} (replacing equal entries)`,
      group: 'config',
      run: (s, q) => editList(s, key, q.shift(missingItem), true),
    },
    {
      name: `del${item}`,
      synopsis: item.toUpperCase(),
      summary: `remove one from ${what}`,
      group: 'config',
      run: (s, q) => editList(s, key, q.shift(missingItem), false),
    },
  ] satisfies Command[];
}

/** Keys with commands of their own; the others get generated `set<key>`/`del<key>`. */
const SPECIAL_KEYS = new Set(['nodeid', 'secret', 'cert', 'binds', 'seeds', 'services', 'eval', 'parent']);

export const CONFIG_COMMANDS: Command[] = [
  // Perl's aemp says "shared secret missing" here too.
  ...setDel('nodeid', 'shared secret missing', 'the node ID', {
    synopsis: 'ID',
    hint: '%n = host name, %u or a trailing / = random',
  }),
  ...setDel('secret', 'shared secret missing', 'the shared secret', { synopsis: 'SECRET' }),
  {
    name: 'gensecret',
    synopsis: '',
    summary: `set a new random shared secret (${SECRET_LENGTH} characters)`,
    group: 'config',
    run: (s) => s.rc.set('secret', generateSecret()),
  },
  {
    name: 'setcert',
    synopsis: 'FILE',
    summary: 'set the TLS certificate and key from a PEM file',
    details: 'FILE holds the private key, the certificate and optionally CA certificates, in PEM.',
    group: 'config',
    run: (s, q) => {
      const file = q.text('key+certificate pem filename missing');
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        throw die(`${file}: ${osText(err)}`);
      }
      s.rc.set('cert', text);
    },
  },
  {
    name: 'delcert',
    synopsis: '',
    summary: 'remove the TLS certificate',
    group: 'config',
    run: (s) => s.rc.del('cert'),
  },
  {
    name: 'gencert',
    synopsis: '',
    summary: 'set a new self-signed TLS certificate (RSA 2048, 10 years)',
    details: 'The same certificate must be given to every node that should talk TLS with this one.',
    group: 'config',
    run: async (s) => {
      s.rc.touch();
      s.rc.set('cert', await generateCertificate());
    },
  },
  ...listCommands('binds', 'bind', 'the listen addresses', 'bind addresses missing', 'bind address missing'),
  ...listCommands('seeds', 'seed', 'the seed addresses', 'seed addresses missing', 'seed address missing'),
  {
    name: 'setservices',
    synopsis: 'LIST',
    summary: 'set the services started with the node (JSON for [function, args…] entries)',
    group: 'config',
    run: (s, q) => store(s, 'services', listArgument(q.shift('service specifications missing'))),
  },
  {
    name: 'delservices',
    synopsis: '',
    summary: 'remove the services',
    group: 'config',
    run: (s) => s.rc.del('services'),
  },
  {
    name: 'addservice',
    synopsis: 'SERVICE',
    summary: 'append a service (duplicates allowed)',
    group: 'config',
    run: (s, q) => {
      const service = q.shift('service specification missing');
      store(s, 'services', [...(s.rc.list('services') ?? []), service]);
    },
  },
  {
    name: 'delservice',
    synopsis: 'SERVICE',
    summary: 'remove the first service equal to SERVICE',
    group: 'config',
    run: (s, q) => {
      const service = q.shift('service specification missing');
      const list = s.rc.list('services');
      if (list === undefined) return;
      const i = list.findIndex((x) => typeof x === 'string' && x === service);
      store(s, 'services', i < 0 ? list : [...list.slice(0, i), ...list.slice(i + 1)]);
    },
  },
  {
    name: 'seteval',
    synopsis: 'CODE',
    summary: 'set JavaScript evaluated when the node starts',
    group: 'config',
    run: (s, q) => store(s, 'eval', q.shift('eval code missing')),
  },
  {
    name: 'deleval',
    synopsis: '',
    summary: 'remove the start-up code',
    group: 'config',
    run: (s) => s.rc.del('eval'),
  },
  {
    name: 'profile',
    synopsis: 'NAME',
    summary: 'apply the following configuration commands to profile NAME (created if missing)',
    group: 'config',
    run: (s, q) => s.rc.selectProfile(q.text('profile name is missing')),
  },
  {
    name: 'delprofile',
    synopsis: 'NAME',
    summary: 'delete profile NAME',
    group: 'config',
    run: (s, q) => {
      const name = q.text('profile name is missing');
      s.rc.touch();
      const profiles = s.rc.profiles();
      if (profiles[name] === s.rc.target) s.rc.target = {};
      delete profiles[name];
    },
  },
  ...setDel('parent', 'parent profile name is missing', 'the profile to inherit from', { synopsis: 'NAME' }),
  {
    name: 'showprofile',
    synopsis: 'NAME',
    summary: "print profile NAME's own settings as JSON",
    group: 'config',
    run: (s, q) => {
      const name = q.text('profile name is missing');
      const profiles = s.rc.root.profile;
      const p =
        typeof profiles === 'object' && profiles !== null ? (profiles as Record<string, unknown>)[name] : {};
      s.io.out(pretty(perlTruthy(p) ? p : {}));
    },
  },
  {
    name: 'showconfig',
    synopsis: '[NAME [KEY VALUE]…]',
    summary: 'print the effective configuration of profile NAME (default: host name)',
    details:
      'KEY VALUE pairs are configure arguments (rc settings win unless "force" is given). ' +
      'Takes every remaining argument.',
    group: 'config',
    run: (s, q) => showConfig(s, q),
  },
  ...CONFIG_KEY_NAMES.filter((k) => !SPECIAL_KEYS.has(k)).flatMap((key) =>
    setDel(key, `${key} value missing`, key, { group: 'attr', hint: CONFIG_KEYS[key].doc }),
  ),
];

/** `showconfig [NAME [KEY VALUE…]]`: the configuration `configure` would use, as JSON. */
function showConfig(s: Session, q: ArgQueue): void {
  const host = hostname();
  const name = q.length > 0 ? asText(q.shift('')) : host;
  const extra = q.rest();
  const kv: Record<string, unknown> = {};
  for (let i = 0; i < extra.length; i += 2) kv[asText(extra[i])] = extra[i + 1];
  const rc = s.rc.current();
  const warning = formatRcWarning(rc);
  if (warning) s.io.err(`${warning}\n`);
  let raw: Record<string, unknown>;
  try {
    const resolved = resolveConfig({ ...kv, profile: name }, { rc, hostname: host, env: s.io.env });
    raw = { ...resolved.raw };
    for (const w of resolved.unknownKeys) s.io.err(`aemp: warning: ${w}\n`);
  } catch (err) {
    // Show what would be merged anyway, and why a node would refuse it.
    raw = mergeUnchecked(kv, name, rc, host, (w) => s.io.err(`aemp: warning: ${w}\n`));
    s.io.err(`aemp: warning: ${formatError(err)}\n`);
  }
  delete raw.profile;
  delete raw.parent;
  s.io.out(pretty(raw));
}

/**
 * The merge of spec §3 without validation; tells `warn` about unknown keys. A broken profile
 * chain (a missing parent, a loop) stops the tool: no configuration can be shown for it.
 */
function mergeUnchecked(
  kv: Record<string, unknown>,
  name: string,
  rc: ReturnType<Session['rc']['current']>,
  host: string,
  warn: (text: string) => void,
): Record<string, unknown> {
  const { norc, force, ...args } = kv;
  const base = { ...builtinDefaults(), ...args };
  const argsLayer = { origin: ORIGIN_ARGS, data: args };
  if (perlTruthy(norc)) {
    for (const w of unknownKeyWarnings([argsLayer])) warn(w);
    return base;
  }
  let layers: ReturnType<typeof profileChain>;
  try {
    layers = profileChain(rcMergeData(rc, host), name);
  } catch (err) {
    throw die(`aemp: ${formatError(err)}`);
  }
  for (const w of unknownKeyWarnings([argsLayer, ...layers])) warn(w);
  let fromRc: Record<string, unknown> = {};
  for (const layer of layers) fromRc = { ...fromRc, ...layer.data };
  return perlTruthy(force) ? { ...fromRc, ...base } : { ...base, ...fromRc };
}

/** An OS error as `strerror` would say it ("No such file or directory"). */
function osText(err: unknown): string {
  const msg = formatError(err);
  const m = /^[A-Z0-9_]+: ([^,]*)/.exec(msg);
  const text = m ? m[1]! : msg;
  return text.charAt(0).toUpperCase() + text.slice(1);
}
