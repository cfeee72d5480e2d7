/**
 * The function registry: what Perl resolves as fully-qualified function names (spawn init
 * functions, `snd_to_func` targets, services) is looked up here (design.md §3).
 *
 * Resolution order for a name `A::B`: a function registered under the exact name; else, when
 * the part before the last `::` looks like a module specifier (`./lib/x.js`, `/abs/x.js`,
 * `pkg`, `@scope/pkg`), that module's export `B` (the module is imported once). Anything else
 * resolves to a function that throws `unable to resolve function '<name>'`, as in Perl.
 */
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';

/** A function callable by name from other nodes or from services; `this` is the node. */
export type NodeFunction = (...args: any[]) => unknown;

/** A loader for a module name used as a service (`"Name::"`). */
export type ModuleLoader = () => unknown;

export class Registry {
  private readonly fns = new Map<string, NodeFunction>();
  private readonly modules = new Map<string, ModuleLoader>();

  /** Registers `fn` under `name` (e.g. `My::Worker::init`). Replaces an earlier entry. */
  register(name: string, fn: NodeFunction): void {
    this.fns.set(name, fn);
  }

  /** Registers a built-in module that the service `"<name>::"` loads. */
  registerModule(name: string, loader: ModuleLoader): void {
    this.modules.set(name, loader);
  }

  /** The registered function, if any (no module loading). */
  lookup(name: string): NodeFunction | undefined {
    return this.fns.get(name);
  }

  /** True if resolving `name` may need to import a module (so it completes asynchronously). */
  needsImport(name: string): boolean {
    const cut = name.lastIndexOf('::');
    return !this.fns.has(name) && cut > 0 && looksImportable(name.slice(0, cut));
  }

  /** Resolves a function name; never rejects: unresolvable names give a throwing function. */
  async resolve(name: string): Promise<NodeFunction> {
    const fn = this.fns.get(name);
    if (fn) return fn;
    const cut = name.lastIndexOf('::');
    if (cut > 0) {
      const mod = await this.importModule(name.slice(0, cut)).catch(() => undefined);
      const exported = mod?.[name.slice(cut + 2)];
      if (typeof exported === 'function') {
        this.fns.set(name, exported as NodeFunction);
        return exported as NodeFunction;
      }
    }
    return unresolvable(name);
  }

  /** Loads a module named by a service entry `"<name>::"`: a built-in or an importable module. */
  async loadModule(name: string): Promise<void> {
    const builtin = this.modules.get(name);
    if (builtin) {
      await builtin();
      return;
    }
    await this.importModule(name);
  }

  private async importModule(spec: string): Promise<Record<string, unknown>> {
    if (!looksImportable(spec)) throw new Error(`cannot load module '${spec}'`);
    const target = spec.startsWith('.') || isAbsolute(spec) ? pathToFileURL(resolvePath(spec)).href : spec;
    return (await import(target)) as Record<string, unknown>;
  }
}

function looksImportable(spec: string): boolean {
  if (spec.startsWith('./') || spec.startsWith('../') || isAbsolute(spec)) return true;
  // A bare npm package name (lower case, as npm requires), never a Perl package name such as
  // `Nope` or `My::Mod`.
  return /^(@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*(\/[\w.-]+)*$/.test(spec);
}

/** The stand-in for a name that resolves to nothing: it throws Perl's error text. */
export function unresolvable(name: string): NodeFunction {
  return () => {
    throw new Error(`unable to resolve function '${name}'`);
  };
}
