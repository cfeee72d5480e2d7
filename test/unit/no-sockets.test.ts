/** The unit tier refuses sockets and processes (test/setup-unit.ts); this proves the refusal. */
import { execFile, execFileSync, fork, spawn, spawnSync } from 'node:child_process';
import { connect, createConnection, createServer } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { takeRefusals } from '../setup-unit.js';

const attempts: [string, () => unknown][] = [
  ['net.connect', () => connect(9, '127.0.0.1')],
  ['net.createConnection', () => createConnection({ port: 9, host: '127.0.0.1' })],
  ['Server.listen', () => createServer().listen(0, '127.0.0.1')],
  ['tls.connect', () => tlsConnect(9, '127.0.0.1')],
  ['child_process.spawn', () => spawn(process.execPath, ['-e', '0'])],
  ['child_process.fork', () => fork('-e')],
  ['child_process.execFile', () => execFile(process.execPath, ['-e', '0'])],
  ['child_process.spawnSync', () => spawnSync(process.execPath, ['-e', '0'])],
  ['child_process.execFileSync', () => execFileSync(process.execPath, ['-e', '0'])],
];

describe('the unit tier', () => {
  afterEach(() => {
    takeRefusals();
  });

  it.each(attempts)('refuses %s', (_, attempt) => {
    expect(attempt).toThrow(/unit tests open no sockets and start no processes/);
    expect(takeRefusals()).toHaveLength(1);
  });

  it('setup-secret-file.ts ran for this tier too', () => {
    expect(process.env.AEMP_SECRET_FILE).toMatch(/aemp-secret-/);
  });
});
