import { SdkError, SdkErrorCode } from '@modelcontextprotocol/client';
import { remaining, untilSignal } from '../../src/mcp/callDeadline.js';

describe('one deadline for a whole tool call', () => {
  it('remaining(): what is left; RequestTimeout (with the call’s timeout) once nothing is', () => {
    const now = performance.now();
    expect(remaining(now + 500, 1000)).toBeGreaterThan(400);
    expect(remaining(now + 500, 1000)).toBeLessThanOrEqual(500);
    for (const until of [now, now - 1, now - 10_000]) {
      let err: unknown;
      try {
        remaining(until, 1000);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SdkError);
      expect(err).toMatchObject({ code: SdkErrorCode.RequestTimeout, data: { timeout: 1000 } });
    }
  });

  it('untilSignal(): fires at the deadline with the call’s RequestTimeout', async () => {
    const b = untilSignal(performance.now() + 30, 700);
    expect(b.signal.aborted).toBe(false);
    await new Promise((r) => b.signal.addEventListener('abort', r, { once: true }));
    expect(b.signal.reason).toBeInstanceOf(SdkError);
    expect(b.signal.reason).toMatchObject({ code: SdkErrorCode.RequestTimeout, data: { timeout: 700 } });
    b.clear();
  });

  it('untilSignal(): the caller’s signal, with its reason — already aborted or later; clear() lets go of both', async () => {
    const gone = new AbortController();
    gone.abort('caller left');
    const a = untilSignal(performance.now() + 10_000, 10_000, gone.signal);
    expect(a.signal.reason).toBe('caller left');
    a.clear();

    const caller = new AbortController();
    const b = untilSignal(performance.now() + 10_000, 10_000, caller.signal);
    caller.abort('later');
    expect(b.signal.reason).toBe('later');
    b.clear();

    const c2 = new AbortController();
    const c = untilSignal(performance.now() + 20, 20, c2.signal);
    c.clear();
    await new Promise((r) => setTimeout(r, 40));
    c2.abort('after clear');
    // Neither the timer nor the caller reaches a cleared bound.
    expect(c.signal.aborted).toBe(false);
  });
});
