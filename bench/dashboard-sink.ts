/**
 * Child process of the dashboard overhead benchmark: an aemp node with a counting sink port
 * (`ping` counts, `done N REPLY` answers the count and the CPU microseconds this process used
 * since the previous `done` or `mark`, and starts over; `mark REPLY` restarts the CPU count and
 * answers). It answers the dashboard's
 * stats requests like any node. Reports its address and sink over IPC and runs until killed.
 */
import { configure, memoryLogger } from '../src/index.js';

const node = configure({
  nodeid: 'bench-dash-sink/',
  norc: true,
  binds: ['127.0.0.1:0'],
  secret: 'bench-secret',
  logger: memoryLogger(),
});
await node.ready;

let count = 0;
let cpu = process.cpuUsage();
const sink = node.port();
node.rcv(
  sink,
  'ping',
  () => {
    count++;
  },
  'done',
  (expected: number, reply: string) => {
    const used = process.cpuUsage(cpu);
    cpu = process.cpuUsage();
    node.snd(reply, count === expected ? expected : count, used.user + used.system);
    count = 0;
  },
  'mark',
  (reply: string) => {
    cpu = process.cpuUsage();
    node.snd(reply);
  },
);
process.send?.({ addr: node.binds[0], sink });
