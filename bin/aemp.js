#!/usr/bin/env node
// The `aemp` command. An installed package runs the built CLI (dist/) with plain node.
// A checkout of the repository (tsconfig.json is never packed) runs the TypeScript sources
// through tsx instead, so `npx aemp` and the CLI tests there never run a stale build; without
// tsx it falls back to the build.
import { existsSync } from 'node:fs';

const checkout = existsSync(new URL('../tsconfig.json', import.meta.url));
const tsx = checkout ? await import('tsx/esm/api').catch(() => undefined) : undefined;
if (tsx) {
  tsx.register();
  await import('../src/cli/main.ts');
} else {
  await import('../dist/cli/main.js');
}
