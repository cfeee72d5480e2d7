import { describe, expect, it } from 'vitest';
import { untilStopped } from '../../../src/cli/until-stopped.js';
import { within } from '../../helpers/fake-peer.js';

const handlers = () => [process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')];

describe('untilStopped', () => {
  it('SIGTERM ends it normally; the teardown runs once and the signal handlers are gone', async () => {
    const before = handlers();
    let teardowns = 0;
    const done = untilStopped(() => () => teardowns++);
    expect(handlers()).toEqual(before.map((n) => n + 1));
    process.emit('SIGTERM');
    process.emit('SIGINT');
    await within(done, 1000, 'the end after SIGTERM');
    expect(teardowns).toBe(1);
    expect(handlers()).toEqual(before);
  });

  it('an error given to end rejects it, with the teardown run and the handlers gone', async () => {
    const before = handlers();
    let teardowns = 0;
    let end: ((err?: unknown) => void) | undefined;
    const done = untilStopped((e) => {
      end = e;
      return () => teardowns++;
    });
    end!(new Error('stream failed'));
    await expect(within(done, 1000, 'the failed end')).rejects.toThrow('stream failed');
    expect(teardowns).toBe(1);
    expect(handlers()).toEqual(before);
  });

  it('an end during start still runs the teardown start returns, once', async () => {
    const before = handlers();
    let teardowns = 0;
    await within(
      untilStopped((end) => {
        end();
        return () => teardowns++;
      }),
      1000,
      'the end during start',
    );
    expect(teardowns).toBe(1);
    expect(handlers()).toEqual(before);
  });

  it('a start that throws rejects it and leaves no signal handler', async () => {
    const before = handlers();
    await expect(
      within(
        untilStopped(() => {
          throw new Error('cannot start');
        }),
        1000,
        'the failed start',
      ),
    ).rejects.toThrow('cannot start');
    expect(handlers()).toEqual(before);
  });
});
