/**
 * The `aemp` program (bin/aemp.js runs this file): runs the command line and exits with its
 * status. Everything is closed before that; should anything still hold the process a second
 * later, it exits anyway.
 */
import { aemp } from './aemp.js';
import { processIo } from './session.js';

const code = await aemp(process.argv.slice(2), processIo());
process.exitCode = code;
setTimeout(() => process.exit(code), 1000).unref();
