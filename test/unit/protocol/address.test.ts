/**
 * Node addresses: parsing, formatting, and which addresses a node agrees to dial (they come
 * from peers). A dialled address that is not dialable stays out of the greeting.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dialable, joinHostPort, MAX_ADDRESS_LENGTH, splitHostPort } from '../../../src/protocol/address.js';
import { parseGreeting } from '../../../src/protocol/greeting.js';
import { createHandshake } from '../../../src/protocol/handshake.js';
import { MAX_TRIED_ADDRESSES, usableAddresses } from '../../../src/streams/net/dialer.js';

describe('dialable', () => {
  it.each(['127.0.0.1:4040', '[::1]:1', 'example.org:65535', '[fe80::1%eth0]:4040', 'bücher.example:80'])(
    'takes %s',
    (a) => {
      expect(dialable(a)).toBe(true);
    },
  );

  it.each([
    '127.0.0.1:5507\n',
    ' 127.0.0.1:5507',
    '127.0.0.1:0',
    '127.0.0.1:65536',
    '127.0.0.1:99999999999999999999',
    'no-port',
    ':4040',
    '[::1:4040',
    '[]:4040',
    '::1:4040',
    'a;b:4040',
    'a b:4040',
    `${'x'.repeat(MAX_ADDRESS_LENGTH)}:1`,
  ])('refuses %j', (a) => {
    expect(dialable(a)).toBe(false);
  });

  it('refuses what is not a string', () => {
    for (const v of [null, undefined, 4040, ['a:1'], { host: 'a' }]) expect(dialable(v)).toBe(false);
  });

  it('every dialable address splits and joins back to itself', () => {
    const host = fc.oneof(
      fc.ipV4(),
      fc.ipV6(),
      fc.domain().filter((d) => d.length <= 250),
    );
    fc.assert(
      fc.property(host, fc.integer({ min: 1, max: 65535 }), (h, port) => {
        const addr = joinHostPort(h, port);
        expect(dialable(addr)).toBe(true);
        expect(splitHostPort(addr)).toEqual({ host: h, port });
      }),
    );
  });
});

describe('usableAddresses', () => {
  it('keeps dialable addresses in order, once each, at most MAX_TRIED_ADDRESSES', () => {
    expect(usableAddresses(['a:1', 7, 'bad', 'b:2', 'a:1', null, 'c:99999'])).toEqual(['a:1', 'b:2']);
    const many = Array.from({ length: 1000 }, (_, i) => `10.0.${i >> 8}.${i & 255}:4040`);
    expect(usableAddresses(many)).toEqual(many.slice(0, MAX_TRIED_ADDRESSES));
  });
});

describe('the dialled address in the greeting', () => {
  const peeraddr = (peerAddr: string) =>
    parseGreeting(createHandshake({ nodeId: 'a', peerAddr, role: 'dialled' }).ownGreeting).keys.get(
      'peeraddr',
    );

  it('is sent when it is dialable', () => {
    expect(peeraddr('127.0.0.1:4040')).toBe('127.0.0.1:4040');
  });

  it('is left out (no throw) when a peer made it up', () => {
    expect(peeraddr('127.0.0.1:5507\n')).toBeUndefined();
    expect(peeraddr('a;b=c:1')).toBeUndefined();
    expect(peeraddr(`${'x'.repeat(70_000)}:1`)).toBeUndefined();
  });
});
