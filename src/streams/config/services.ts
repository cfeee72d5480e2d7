/**
 * Startup work named by the configuration (spec/api.md §4.5): the `services` list and the
 * `eval` code. The node supplies how names are resolved (its function registry).
 */
import { createContext, isContext, runInContext } from 'node:vm';
import { ConfigError } from '../../errors.js';
import type { ServiceEntry } from './schema.js';

/** What `runServices` needs from the node. */
export interface ServiceHost {
  /** Resolves a function name (`"Pkg::func"`, `"./mod.js::func"`). */
  resolveFunction(name: string): Promise<(...args: unknown[]) => unknown>;
  /** Loads a module named by a `"Name::"` entry (given without the trailing `::`). */
  loadModule(name: string): Promise<void>;
}

/**
 * Runs the `services` entries in order, each awaited before the next: `[fname, ...args]`
 * calls `fname(...args)`; a string ending in `::` loads that module; any other string calls
 * the function without arguments. The first failure rejects with ConfigError
 * `service <entry> failed: <message>` (the entry as JSON).
 */
export async function runServices(services: readonly ServiceEntry[], host: ServiceHost): Promise<void> {
  for (const entry of services) {
    try {
      if (Array.isArray(entry)) {
        const [fname, ...args] = entry as readonly [string, ...unknown[]];
        await (await host.resolveFunction(fname))(...args);
      } else if (typeof entry === 'string' && entry.endsWith('::')) {
        await host.loadModule(entry.slice(0, -2));
      } else {
        await (await host.resolveFunction(String(entry)))();
      }
    } catch (err) {
      throw new ConfigError(`service ${JSON.stringify(entry)} failed: ${messageOf(err)}`, { cause: err });
    }
  }
}

/** Options of `runEval`. */
export interface RunEvalOptions {
  /** Milliseconds the synchronous part may run. @default no limit */
  readonly timeoutMs?: number;
  /** File name shown in stack traces. @default "aemp-eval" */
  readonly filename?: string;
}

/**
 * Evaluates the `eval` configuration key as JavaScript with node:vm in `context` (an object
 * the caller fills, e.g. with the node API; it is contextified if it is not yet). A returned
 * promise is awaited. Errors become ConfigError `eval failed: <message>`.
 */
export async function runEval(code: string, context: object, options: RunEvalOptions = {}): Promise<unknown> {
  try {
    const ctx = isContext(context) ? context : createContext(context);
    const result: unknown = runInContext(code, ctx, {
      filename: options.filename ?? 'aemp-eval',
      ...(options.timeoutMs !== undefined ? { timeout: options.timeoutMs } : {}),
    });
    return await result;
  } catch (err) {
    throw new ConfigError(`eval failed: ${messageOf(err)}`, { cause: err });
  }
}

/** The message of an error from any realm (vm errors are not `instanceof Error` here). */
function messageOf(err: unknown): string {
  if (typeof err === 'object' && err !== null && typeof (err as { message?: unknown }).message === 'string')
    return (err as { message: string }).message;
  return String(err);
}
