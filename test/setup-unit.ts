/**
 * The unit tier opens no socket and starts no process: connecting, listening and spawning
 * throw here, and a test during which anything tried fails even if the code under test caught
 * the error. A test that means to try (the one proving this refusal) takes the refusals with
 * `takeRefusals()` before it ends.
 */
import childProcess, { ChildProcess } from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';
import net from 'node:net';
import tls from 'node:tls';
import { afterEach } from 'vitest';

const key = Symbol.for('aemp.test.unit-refusals');
type Refusals = { tried: string[] };
const state: Refusals = ((globalThis as Record<symbol, unknown>)[key] as Refusals | undefined) ?? {
  tried: [],
};
(globalThis as Record<symbol, unknown>)[key] = state;

/** What the test tried so far (and forgets it). */
export function takeRefusals(): string[] {
  return state.tried.splice(0);
}

function refuse(what: string): never {
  state.tried.push(what);
  throw new Error(
    `unit tests open no sockets and start no processes: ${what} (move the test to test/integration or test/multiprocess)`,
  );
}

if (!(globalThis as Record<symbol, unknown>)[Symbol.for('aemp.test.unit-patched')]) {
  (globalThis as Record<symbol, unknown>)[Symbol.for('aemp.test.unit-patched')] = true;
  net.Socket.prototype.connect = function connect() {
    refuse('net.Socket#connect');
  } as never;
  net.Server.prototype.listen = function listen() {
    refuse('net.Server#listen');
  } as never;
  (ChildProcess.prototype as unknown as Record<string, unknown>).spawn = () => refuse('child_process spawn');
  const cp = childProcess as unknown as Record<string, unknown>;
  for (const name of ['spawnSync', 'execSync', 'execFileSync'])
    cp[name] = () => refuse(`child_process.${name}`);
  (tls as unknown as Record<string, unknown>).connect = () => refuse('tls.connect');
  syncBuiltinESMExports();
}

afterEach(() => {
  const tried = takeRefusals();
  if (tried.length > 0)
    throw new Error(`this unit test tried to open a socket or start a process: ${tried.join(', ')}`);
});
