import type { Response } from 'express';

/** Where a run's events go: an SSE stream, or nowhere (a plain JSON response). */
export interface Sink {
  readonly streaming: boolean;
  emit(type: string, payload: Record<string, unknown>): void;
  close(): void;
}

export const silentSink: Sink = { streaming: false, emit() {}, close() {} };

/** `event: <type>\ndata: <json>\n\n`, sequence numbers from 0, keep-alive comments while idle. */
export class SseSink implements Sink {
  readonly streaming = true;
  private seq = 0;
  private lastWrite = Date.now();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly res: Response,
    keepAliveMs = 15_000,
  ) {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.flushHeaders();
    this.timer = setInterval(() => {
      if (Date.now() - this.lastWrite >= keepAliveMs) this.write(': keep-alive\n\n');
    }, Math.max(50, Math.floor(keepAliveMs / 2)));
    this.timer.unref();
  }

  emit(type: string, payload: Record<string, unknown>) {
    this.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...payload, sequence_number: this.seq++ })}\n\n`);
  }

  close() {
    clearInterval(this.timer);
    if (!this.res.writableEnded) this.res.end();
  }

  private write(s: string) {
    if (this.res.writableEnded || this.res.destroyed) return;
    this.lastWrite = Date.now();
    this.res.write(s);
  }
}
