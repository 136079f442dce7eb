import type { Request, Response } from 'express';

/**
 * Aborts when the client goes away before the response is finished — also when it went away
 * before this was called (a handler makes the signal after awaiting, e.g. server resolution).
 */
export function abortOnClose(_req: Request, res: Response): AbortSignal {
  const ac = new AbortController();
  if (res.closed) {
    if (!res.writableFinished) ac.abort();
    return ac.signal;
  }
  res.on('close', () => {
    if (!res.writableFinished) ac.abort();
  });
  return ac.signal;
}
