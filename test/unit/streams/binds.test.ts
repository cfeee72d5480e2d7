import { describe, expect, it } from 'vitest';
import { AempError } from '../../../src/errors.js';
import {
  formatHostPort,
  type InterfaceAddress,
  localInterfaceAddresses,
  parseTransportItem,
  type ResolveDescriptorOptions,
  type ResolvedAddress,
  resolveBinds,
  resolveDescriptors,
  splitItems,
  transportItemProblem,
} from '../../../src/streams/net/binds.js';
import { within } from '../../helpers/fake-peer.js';

const HOST = 'myhost';
/** Deadline for a resolution with the fake resolver. */
const WAIT = 5000;

const IFACES: NodeJS.Dict<InterfaceAddress[]> = {
  lo: [
    { address: '127.0.0.1', family: 'IPv4' },
    { address: '::1', family: 'IPv6' },
  ],
  eth0: [
    { address: '192.0.2.5', family: 'IPv4' },
    { address: 'fe80::1', family: 'IPv6' },
    { address: '2001:db8::5', family: 'IPv6' },
  ],
  wg0: [
    { address: 'fd00::1', family: 6 },
    { address: '10.0.0.1', family: 4 },
    { address: 'fc00::2', family: 'IPv6' },
    { address: '4000::1', family: 'IPv6' },
    { address: '127.0.1.1', family: 'IPv4' },
  ],
};

const DNS: Record<string, ResolvedAddress[]> = {
  [HOST]: [{ address: '192.0.2.5', family: 4 }],
  multi: [
    { address: '198.51.100.1', family: 4 },
    { address: '2001:DB8:0:0::7', family: 6 },
  ],
  a: [{ address: '203.0.113.1', family: 4 }],
  b: [{ address: '203.0.113.2', family: 4 }],
  dup: [{ address: '203.0.113.1', family: 4 }],
};

function options(
  extra: Partial<ResolveDescriptorOptions> = {},
): ResolveDescriptorOptions & { looked: string[] } {
  const looked: string[] = [];
  return {
    hostname: HOST,
    interfaces: () => IFACES,
    lookup: async (host) => {
      looked.push(host);
      const r = DNS[host];
      if (!r) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
      return r;
    },
    looked,
    ...extra,
  };
}

describe('splitItems', () => {
  it.each<[string, string[]]>([
    ['a', ['a']],
    ['a,b', ['a', 'b']],
    ['a,,b', ['a', '', 'b']],
    ['a,b,,', ['a', 'b']],
    ['', ['']],
    [',a', ['', 'a']],
  ])('%j → %j', (input, expected) => {
    expect(splitItems(input)).toEqual(expected);
  });
});

describe('parseTransportItem', () => {
  it.each<[string, string, number]>([
    ['host:4040', 'host', 4040],
    ['host 4040', 'host', 4040],
    ['host#4040', 'host', 4040],
    ['host', 'host', 0],
    ['host:*', 'host', 0],
    ['10.0.0.1:1', '10.0.0.1', 1],
    ['[::1]:4040', '::1', 4040],
    ['[::1] 4040', '::1', 4040],
    ['[::1]', '::1', 0],
    ['[::1]:*', '::1', 0],
    ['[some.host]:5', 'some.host', 5],
    ['::1', '::1', 0],
    ['2001:db8::1', '2001:db8::1', 0],
    ['::1 4040', '::1', 4040],
    ['fe80::1#4040', 'fe80::1', 4040],
    ['*', '*', 0],
    ['*:*', '*', 0],
    ['*:4040', '*', 4040],
    ['', HOST, 0],
    ['4040', HOST, 4040],
    [' 4041 ', HOST, 4041],
    ['  host:1  ', 'host', 1],
    ['h:65535', 'h', 65535],
  ])('%j → %s port %d', (item, host, port) => {
    expect(parseTransportItem(item, HOST)).toEqual({ host, port });
  });

  it.each<[string, string]>([
    ['a:b:c', 'expected host:port'],
    ['[::1', 'unbalanced brackets'],
    [':4040', 'no host'],
    ['[a:b]:1', 'not an IPv6 address'],
    ['h:65536', 'bad port "65536"'],
    ['h:http', 'bad port "http"'],
    ['h:-1', 'bad port "-1"'],
    ['h:1:2', 'expected host:port'],
    ['h 1 2', 'expected host:port'],
    ['999.1.1.1:5', 'not an IPv4 address'],
    ['1.2.3.256', 'not an IPv4 address'],
    ['010.0.0.1:1', 'not an IPv4 address'],
  ])('rejects %j (%s)', (item, why) => {
    expect(transportItemProblem(item)).toBe(why);
    try {
      parseTransportItem(item, HOST);
      expect.unreachable();
    } catch (err) {
      expect(AempError.is(err) && err.code).toBe('ERR_CONFIG_INVALID');
      expect((err as Error).message).toBe(`"${item}": unparsable transport descriptor (${why})`);
    }
  });
});

describe('formatHostPort', () => {
  it.each<[string, number, string]>([
    ['10.0.0.1', 1, '10.0.0.1:1'],
    ['::1', 2, '[::1]:2'],
    ['name', 0, 'name:0'],
  ])('%s %d → %s', (host, port, expected) => {
    expect(formatHostPort(host, port)).toBe(expected);
  });
});

describe('localInterfaceAddresses', () => {
  it('IPv4 except 127/8 first, then global unicast and ULA IPv6, in interface order', () => {
    expect(localInterfaceAddresses(IFACES)).toEqual([
      '192.0.2.5',
      '10.0.0.1',
      '2001:db8::5',
      'fd00::1',
      'fc00::2',
    ]);
  });

  it('nothing on a loopback-only machine', () => {
    expect(localInterfaceAddresses({ lo: IFACES.lo })).toEqual([]);
  });
});

describe('resolveDescriptors', () => {
  it('host * becomes every qualifying local address', async () => {
    const o = options();
    expect(await resolveDescriptors(['*:4040'], o)).toEqual([
      '192.0.2.5:4040',
      '10.0.0.1:4040',
      '[2001:db8::5]:4040',
      '[fd00::1]:4040',
      '[fc00::2]:4040',
    ]);
    expect(o.looked).toEqual([]);
  });

  it('host * falls back to 127.0.0.1 when no interface qualifies', async () => {
    const o = options({ interfaces: () => ({ lo: IFACES.lo }) });
    expect(await resolveDescriptors(['*'], o)).toEqual(['127.0.0.1:0']);
  });

  it('IP literals are used as they are (IPv6 normalised), without DNS', async () => {
    const o = options();
    expect(await resolveDescriptors(['127.0.0.1:*', '[2001:DB8:0::1]:5', '::1 6'], o)).toEqual([
      '127.0.0.1:0',
      '[2001:db8::1]:5',
      '[::1]:6',
    ]);
    expect(o.looked).toEqual([]);
  });

  it('names resolve to every address, in resolver order', async () => {
    expect(await resolveDescriptors(['multi:7'], options())).toEqual(['198.51.100.1:7', '[2001:db8::7]:7']);
  });

  it('empty and all-digit items mean the host name', async () => {
    const o = options();
    expect(await resolveDescriptors(['', '4040'], o)).toEqual(['192.0.2.5:0', '192.0.2.5:4040']);
    expect(o.looked).toEqual([HOST, HOST]);
  });

  it('orders by element, then by position inside a comma list', async () => {
    expect(await resolveDescriptors(['b:1,a:2', 'multi:3', 'a:4'], options())).toEqual([
      '203.0.113.2:1',
      '203.0.113.1:2',
      '198.51.100.1:3',
      '[2001:db8::7]:3',
      '203.0.113.1:4',
    ]);
  });

  it('keeps the order even when lookups finish out of order', async () => {
    const slow = options();
    // The lookup of a answers only after that of b has answered.
    let bAnswered!: () => void;
    const bDone = new Promise<void>((resolve) => {
      bAnswered = resolve;
    });
    const finished: string[] = [];
    const o = {
      ...slow,
      lookup: async (host: string) => {
        if (host === 'a') await within(bDone, WAIT, 'the lookup of b, which a waits for');
        const r = await slow.lookup!(host);
        finished.push(host);
        if (host === 'b') bAnswered();
        return r;
      },
    };
    expect(await within(resolveDescriptors(['a:1,b:1'], o), WAIT, 'resolving a:1,b:1')).toEqual([
      '203.0.113.1:1',
      '203.0.113.2:1',
    ]);
    expect(finished).toEqual(['b', 'a']);
  });

  it('drops duplicates across the whole list, keeping the first', async () => {
    expect(await resolveDescriptors(['a:1,dup:1', '203.0.113.1:1', 'b:2', 'b:2'], options())).toEqual([
      '203.0.113.1:1',
      '203.0.113.2:2',
    ]);
  });

  it('accepts a single comma-separated string', async () => {
    expect(await resolveDescriptors('a:1,b:2', options())).toEqual(['203.0.113.1:1', '203.0.113.2:2']);
  });

  it('a name that does not resolve contributes nothing and is reported', async () => {
    const warnings: string[] = [];
    const o = options({ warn: (m) => warnings.push(m) });
    expect(await resolveDescriptors(['nowhere:1', 'a:1'], o)).toEqual(['203.0.113.1:1']);
    expect(warnings).toEqual(['cannot resolve "nowhere": getaddrinfo ENOTFOUND nowhere']);
  });

  it('four dotted numbers that are no IPv4 address are refused, never looked up', async () => {
    const o = options();
    await expect(
      within(resolveDescriptors(['999.1.1.1:5'], o), WAIT, 'resolving 999.1.1.1:5'),
    ).rejects.toThrow('"999.1.1.1:5": unparsable transport descriptor (not an IPv4 address)');
    expect(o.looked).toEqual([]);
  });

  it('an empty list resolves to nothing', async () => {
    expect(await resolveDescriptors([], options())).toEqual([]);
  });

  it('a syntax error rejects with ConfigError before any lookup', async () => {
    const o = options();
    await expect(resolveDescriptors(['a:1', 'x:y:z'], o)).rejects.toThrow(
      '"x:y:z": unparsable transport descriptor (expected host:port)',
    );
    expect(o.looked).toEqual([]);
  });

  it('uses the real resolver and interfaces by default', async () => {
    const r = await resolveDescriptors(['127.0.0.1:1', 'localhost:2', '*:3'], { hostname: 'localhost' });
    expect(r[0]).toBe('127.0.0.1:1');
    expect(r.some((a) => a.endsWith(':2'))).toBe(true);
    expect(r.some((a) => a.endsWith(':3'))).toBe(true);
  });
});

describe('resolveBinds', () => {
  it('resolves like resolveDescriptors when every name resolves', async () => {
    expect(
      await within(resolveBinds(['a:1', '*:2', '127.0.0.1:*'], options()), WAIT, 'resolving binds'),
    ).toEqual([
      '203.0.113.1:1',
      '192.0.2.5:2',
      '10.0.0.1:2',
      '[2001:db8::5]:2',
      '[fd00::1]:2',
      '[fc00::2]:2',
      '127.0.0.1:0',
    ]);
  });

  it.each<[string, string]>([
    ['nonsense', 'cannot listen on "nonsense": cannot resolve "nonsense": getaddrinfo ENOTFOUND nonsense'],
    ['nonsense:*', 'cannot listen on "nonsense": cannot resolve "nonsense": getaddrinfo ENOTFOUND nonsense'],
    [
      'nowhere:4040',
      'cannot listen on "nowhere:4040": cannot resolve "nowhere": getaddrinfo ENOTFOUND nowhere',
    ],
  ])('a bind %j that does not resolve rejects with ERR_BIND_FAILED', async (bind, message) => {
    const err = await within(resolveBinds(['a:1', bind], options()), WAIT, `resolving ${bind}`).catch(
      (e: unknown) => e,
    );
    expect(AempError.is(err) && err.code).toBe('ERR_BIND_FAILED');
    expect((err as Error).message).toBe(message);
    expect((err as Error).cause).toBeInstanceOf(Error);
  });

  it('a name that resolves to no address rejects too', async () => {
    const resolving = resolveBinds(['empty:9'], options({ lookup: async () => [] }));
    const err = await within(resolving, WAIT, 'resolving empty:9').catch((e: unknown) => e);
    expect(AempError.is(err) && err.code).toBe('ERR_BIND_FAILED');
    expect((err as Error).message).toBe('cannot listen on "empty:9": "empty" resolves to no address');
  });

  it('an empty list is no error: no listeners were asked for', async () => {
    expect(await within(resolveBinds([], options()), WAIT, 'resolving no binds')).toEqual([]);
  });
});
