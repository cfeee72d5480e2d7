/**
 * Node ID expansion (spec/api.md §4.2): `%n` becomes the host name; `%u`, and the end of an
 * ID that ends in `/`, become the per-process random RUNIQ.
 */
import { ConfigError } from '../../errors.js';

/** Inputs of `expandNodeId`. */
export interface NodeIdContext {
  /** Replaces every `%n`. */
  readonly hostname: string;
  /** Replaces every `%u` and is appended to an ID ending in `/` (see `makeRuniq`). */
  readonly runiq: string;
}

/** An expanded node ID. */
export interface ExpandedNodeId {
  readonly nodeId: string;
  /**
   * True if a random part was inserted (`%u` or trailing `/`); the node ID is then unique on
   * its own and ordinary port names get no UNIQ prefix.
   */
  readonly randomised: boolean;
}

/** Why `id` cannot be a node ID (or a node ID template), or undefined if it can. */
export function nodeIdProblem(id: string): string | undefined {
  if (id === '' || id === '0') return 'must not be empty or "0"';
  if (/[#;\r\n]/.test(id)) return 'must not contain "#", ";", CR or LF';
  return undefined;
}

/**
 * Expands a node ID template: first every `%n` → host name, then every `%u` and a trailing
 * `/` → RUNIQ. Throws ConfigError for `""`, `"0"` and IDs containing `#`, `;`, CR or LF.
 */
export function expandNodeId(template: string, ctx: NodeIdContext): ExpandedNodeId {
  const before = nodeIdProblem(template);
  if (before !== undefined) throw new ConfigError(`invalid node ID ${JSON.stringify(template)}: ${before}`);
  const withHost = template.replaceAll('%n', ctx.hostname);
  let randomised = false;
  let nodeId = withHost.replaceAll('%u', () => {
    randomised = true;
    return ctx.runiq;
  });
  if (nodeId.endsWith('/')) {
    nodeId += ctx.runiq;
    randomised = true;
  }
  const after = nodeIdProblem(nodeId);
  if (after !== undefined) throw new ConfigError(`invalid node ID ${JSON.stringify(nodeId)}: ${after}`);
  return { nodeId, randomised };
}
