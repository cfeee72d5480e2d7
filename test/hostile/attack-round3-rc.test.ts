/**
 * Hostile rc files: whatever the file holds, `aemp` and `configure` answer promptly with a
 * clear message. A parent chain through 100,000 profiles took minutes (every profile's chain
 * was checked, each step searching the names seen so far), and a file of hundreds of MB (or a
 * device that never ends, named by AEMP_RC) was read whole into memory.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_PROFILE_CHAIN, profileChain, rcDataProblems } from '../../src/streams/config/config.js';
import { loadRc, MAX_RC_BYTES } from '../../src/streams/config/rc-file.js';
import { aempHere, cleanUpAfter, tempDir, tempRc } from '../cli/helpers.js';

cleanUpAfter('all');

/** Profiles p0 → p1 → … → p(n-1), the last one without a parent. */
function chainRc(n: number): Record<string, unknown> {
  const profile: Record<string, unknown> = {};
  for (let i = 0; i < n - 1; i++) profile[`p${i}`] = { parent: `p${i + 1}` };
  profile[`p${n - 1}`] = {};
  return { profile };
}

describe('profile parent chains', () => {
  it(`a chain through 100,000 profiles: each profile's chain ends at ${MAX_PROFILE_CHAIN} with one clear error`, {
    timeout: 60_000,
  }, () => {
    const rc = chainRc(100_000);
    expect(() => profileChain(rc, 'p0')).toThrow(
      `profile chain longer than ${MAX_PROFILE_CHAIN} profiles: "p0" -> "p1" -> "p2" -> "p3" -> … -> "p62" -> "p63" -> "p64"`,
    );
    // Near the end of the chain it is short enough.
    expect(profileChain(rc, 'p99990')).toHaveLength(1 + 10);
    const problems = rcDataProblems(rc);
    expect(problems.length).toBe(100_000 - MAX_PROFILE_CHAIN);
  });

  it('a loop of 100,000 profiles and a profile that is its own parent', { timeout: 60_000 }, () => {
    const rc = chainRc(100_000);
    (rc.profile as Record<string, unknown>).p99999 = { parent: 'p0' };
    expect(() => profileChain(rc, 'p5')).toThrow(`profile chain longer than ${MAX_PROFILE_CHAIN} profiles`);
    expect(() => profileChain({ profile: { a: { parent: 'a' } } }, 'a')).toThrow(
      'circular profile parent chain: "a" -> "a"',
    );
  });

  it('aemp showconfig with such a file refuses with the message', { timeout: 60_000 }, async () => {
    const rc = tempRc(chainRc(100_000));
    const r = await aempHere(rc, ['showconfig', 'p0']);
    expect(r.code).not.toBe(0);
    expect(r.err).toContain(`profile chain longer than ${MAX_PROFILE_CHAIN} profiles`);
  });
});

describe('rc files too large to be one', () => {
  it(`a file over ${MAX_RC_BYTES / 1024 / 1024} MiB is ignored like an unreadable one, without reading it`, () => {
    const file = join(tempDir(), 'rc');
    writeFileSync(file, `{"a":"${'x'.repeat(MAX_RC_BYTES)}"}`);
    const state = loadRc(file);
    expect(state.exists).toBe(false);
    expect(state.error).toBe('larger than 4 MiB');
    // One just under the limit is read.
    writeFileSync(file, `{"a":"${'x'.repeat(MAX_RC_BYTES - 16)}"}`);
    expect(loadRc(file).exists).toBe(true);
  });

  it('a device that never ends (AEMP_RC=/dev/zero): ignored after the limit', () => {
    const state = loadRc('/dev/zero');
    expect(state.exists).toBe(false);
    expect(state.error).toBe('larger than 4 MiB');
  });

  it('aemp with AEMP_RC=/dev/zero warns and goes on with the defaults', async () => {
    const r = await aempHere('/dev/zero', ['showconfig']);
    expect(r.code).toBe(0);
    expect(r.err).toContain('ignoring the configuration file /dev/zero: larger than 4 MiB');
  });
});

describe('profile names that are Object.prototype properties', () => {
  for (const name of ['__proto__', 'constructor', 'toString']) {
    it(`aemp profile ${name} setsecure 1: the profile is written, nothing else changes`, async () => {
      const rc = tempRc({ version: 1 });
      const r = await aempHere(rc, ['profile', name, 'setsecure', '1']);
      expect(r.code).toBe(0);
      expect(({} as Record<string, unknown>).secure).toBeUndefined();
      const written = JSON.parse(readFileSync(rc, 'utf8')) as { profile: Record<string, unknown> };
      expect(Object.hasOwn(written.profile, name)).toBe(true);
      expect(Object.getOwnPropertyDescriptor(written.profile, name)!.value).toEqual({ secure: '1' });
    });
  }
});
