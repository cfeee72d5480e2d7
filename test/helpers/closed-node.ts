/** Expectations about a closed node's operations (they fail with `ERR_NODE_CLOSED`). */
import { EmptyError } from 'rxjs';
import { expect } from 'vitest';
import { AempError, KilledError } from '../../src/index.js';
import { within } from './fake-peer.js';

/** The error a promise ends with, within `ms` (fails if it resolves instead). */
export function failure(p: Promise<unknown>, what: string, ms = 5000): Promise<unknown> {
  return within(
    p.then(
      (v) => {
        throw new Error(`${what}: expected an error, got ${JSON.stringify(v)}`);
      },
      (e: unknown) => e,
    ),
    ms,
    what,
  );
}

/** The error is the closed node's, not an empty stream's or a killed port's. */
export function expectNodeClosed(err: unknown): void {
  expect(err).not.toBeInstanceOf(EmptyError);
  expect(err).not.toBeInstanceOf(KilledError);
  expect(AempError.is(err) && err.code).toBe('ERR_NODE_CLOSED');
}
