import type { Request, Response } from 'express';

/** Aborts when the client goes away before the response is finished. */
export function abortOnClose(_req: Request, res: Response): AbortSignal {
  const ac = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) ac.abort();
  });
  return ac.signal;
}
