/**
 * Messages and exit statuses of `aemp` that need no network: a missing argument names the
 * command and its usage (exit 2), a malformed AEMP_TIMEOUT is a usage error. The failures that
 * do need a node (snd, cal, eval timeouts) are in protocol.test.ts.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { aemp } from '../../src/cli/aemp.js';
import { aempHere, cleanUpAfter, tempRc } from './helpers.js';

cleanUpAfter('all');

describe('missing arguments', () => {
  it.each([
    [['snd'], 'aemp snd: port missing (usage: aemp snd PORT ARGS…)'],
    [['cal'], 'aemp cal: port missing (usage: aemp cal PORT ARGS…)'],
    [['mon'], 'aemp mon: port missing (usage: aemp mon PORT)'],
    [['eval'], 'aemp eval: node id missing (usage: aemp eval NODE CODE…)'],
    [['restart'], 'aemp restart: node id missing (usage: aemp restart NODE)'],
    [['trace'], 'aemp trace: node id missing (usage: aemp trace [--dot] NODE)'],
    [['trace', '--dot'], 'aemp trace: node id missing (usage: aemp trace [--dot] NODE)'],
    [['setbinds'], 'aemp setbinds: bind addresses missing (usage: aemp setbinds LIST)'],
    // an alias is named as it was typed
    [['seeds'], 'aemp seeds: seed addresses missing (usage: aemp seeds LIST)'],
  ])('%j: exit 2, "%s"', async (args, message) => {
    const r = await aempHere(tempRc({ version: 1 }), args);
    expect(r).toEqual({ code: 2, out: '', err: `${message}\n` });
  });

  it('in a chain, the command that lacks its argument is named; earlier ones took effect', async () => {
    const rc = tempRc({ version: 1 });
    const r = await aempHere(rc, ['setbinds', '*:4040', 'addseed']);
    expect(r).toEqual({
      code: 2,
      out: '',
      err: 'aemp addseed: seed address missing (usage: aemp addseed SEED)\n',
    });
  });
});

describe('AEMP_TIMEOUT', () => {
  it('a value that is not a positive number of seconds is a usage error', async () => {
    let out = '';
    let err = '';
    const code = await aemp(['eval', 'nosuch/node', '1'], {
      out: (t) => void (out += t),
      err: (t) => void (err += t),
      env: {
        AEMP_RC: tempRc({ version: 1, profile: { aemp: { binds: ['127.0.0.1:0'], seeds: [] } } }),
        AEMP_SECRET_FILE: process.env.AEMP_SECRET_FILE,
        AEMP_TIMEOUT: 'soon',
      },
      stdin: new PassThrough(),
    });
    expect({ code, out, err }).toEqual({
      code: 2,
      out: '',
      err: 'aemp: AEMP_TIMEOUT=soon: expected a number of seconds greater than 0\n',
    });
  });
});
