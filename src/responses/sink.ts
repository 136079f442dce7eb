/** Where a run's events go: a stream, a background run's log, or nowhere (a plain JSON response). */
export interface Sink {
  readonly streaming: boolean;
  emit(type: string, payload: Record<string, unknown>): void;
  close(): void;
}

export const silentSink: Sink = { streaming: false, emit() {}, close() {} };

/** A connection that takes serialized events in order (the HTTP layer's SSE writer). */
export interface EventTarget {
  send(type: string, json: string): void;
  close(): void;
}

/** `{type, ...payload, sequence_number}` with sequence numbers from 0 (wire doc §3). */
export function serializeEvent(type: string, payload: Record<string, unknown>, seq: number): string {
  return JSON.stringify({ type, ...payload, sequence_number: seq });
}

/** A foreground stream: numbered events straight to one connection. */
export class StreamSink implements Sink {
  readonly streaming = true;
  private seq = 0;

  constructor(private readonly target: EventTarget) {}

  emit(type: string, payload: Record<string, unknown>) {
    this.target.send(type, serializeEvent(type, payload, this.seq++));
  }

  close() {
    this.target.close();
  }
}
