/** One Server-Sent Event, as the WHATWG event-stream grammar defines it. */
export interface SseEvent {
  /** The `event:` field; '' when absent (the spec's default type is "message"). */
  event: string;
  data: string;
  id: string | undefined;
}

export type SsePush = 'more' | 'too_large' | 'stopped';

/** Longest `retry:` value taken (digits): a bigger one cannot be a delay anyone means. */
const MAX_RETRY_DIGITS = 9;

/**
 * An incremental `text/event-stream` parser on raw bytes: no WHATWG streams, no
 * TextDecoder stream. Lines end in LF, CRLF or CR. Each event (its lines, field names
 * included) is bounded by `maxEventBytes`; a bigger one makes `push` answer `too_large`
 * and the parser stops. `onEvent` returning `false` stops it too (`stopped`).
 */
export class SseParser {
  /**
   * The stream's last event ID, as EventSource keeps it for a reconnection's `Last-Event-ID`:
   * set when an event ends, even one with no data (a resumable server's priming event).
   */
  lastEventId: string | undefined;
  /** The server's reconnection time (`retry:`, in ms), if it sent one. */
  retryMs: number | undefined;
  private rest: Buffer | undefined;
  private data: string[] = [];
  private event = '';
  private id: string | undefined;
  private eventBytes = 0;
  private skipLf = false;
  private done = false;

  constructor(
    private readonly maxEventBytes: number,
    private readonly onEvent: (e: SseEvent) => boolean | void,
  ) {}

  push(chunk: Buffer): SsePush {
    if (this.done) return 'stopped';
    let buf = chunk;
    if (this.rest) {
      buf = Buffer.concat([this.rest, chunk]);
      this.rest = undefined;
    }
    let pos = 0;
    if (this.skipLf && buf.length > 0) {
      this.skipLf = false;
      if (buf[0] === 10) pos = 1;
    }
    const len = buf.length;
    let cr = buf.indexOf(13, pos);
    while (pos < len) {
      const lf = buf.indexOf(10, pos);
      if (cr !== -1 && cr < pos) cr = buf.indexOf(13, pos);
      let end: number;
      let next: number;
      if (cr !== -1 && (lf === -1 || cr < lf)) {
        end = cr;
        if (cr + 1 < len) next = buf[cr + 1] === 10 ? cr + 2 : cr + 1;
        else {
          next = cr + 1;
          this.skipLf = true; // a CRLF split across chunks
        }
      } else if (lf !== -1) {
        end = lf;
        next = lf + 1;
      } else break;
      this.eventBytes += end - pos + 1;
      if (this.eventBytes > this.maxEventBytes) return this.stop('too_large');
      if (!this.line(buf, pos, end)) return this.stop('stopped');
      pos = next;
    }
    if (pos < len) {
      if (this.eventBytes + (len - pos) > this.maxEventBytes) return this.stop('too_large');
      this.rest = buf.subarray(pos);
    }
    return 'more';
  }

  private stop(r: SsePush): SsePush {
    this.done = true;
    this.rest = undefined;
    this.data = [];
    return r;
  }

  /** One line `buf[start, end)`; false when the consumer asked to stop. */
  private line(buf: Buffer, start: number, end: number): boolean {
    if (start === end) {
      this.lastEventId = this.id;
      const keep = this.data.length === 0 ? true : this.onEvent({ event: this.event, data: this.data.join('\n'), id: this.id }) !== false;
      this.data = [];
      this.event = '';
      this.eventBytes = 0;
      return keep;
    }
    if (buf[start] === 58) return true; // ':' comment (keep-alive)
    const colon = buf.indexOf(58, start);
    const nameEnd = colon === -1 || colon > end ? end : colon;
    const name = buf.toString('latin1', start, nameEnd);
    let vStart = nameEnd === end ? end : nameEnd + 1;
    if (vStart < end && buf[vStart] === 32) vStart++;
    switch (name) {
      case 'data':
        this.data.push(buf.toString('utf8', vStart, end));
        break;
      case 'event':
        this.event = buf.toString('utf8', vStart, end);
        break;
      case 'id': {
        const v = buf.toString('utf8', vStart, end);
        if (!v.includes('\0')) this.id = v;
        break;
      }
      case 'retry': {
        // Only ASCII digits count (the WHATWG rule); anything else is ignored.
        const v = buf.toString('latin1', vStart, end);
        if (v.length > 0 && v.length <= MAX_RETRY_DIGITS && /^[0-9]+$/.test(v)) this.retryMs = Number(v);
        break;
      }
      default: // unknown fields: ignored
    }
    return true;
  }
}
