import { AsyncLocalStorage } from 'node:async_hooks';
import { setMaxListeners } from 'node:events';
import { fetch as undiciFetch, type Agent } from 'undici';
import type { FetchLike } from '@modelcontextprotocol/client';

/**
 * The abort signal of the broker request (one tools/list page or tools/call) being sent.
 * The SDK aborts the HTTP request itself only in the 2026-07-28 era; in the legacy era it
 * sends notifications/cancelled and leaves the POST open. Every upstream fetch made inside
 * `requestScope.run(signal, …)` is aborted with that signal (timeout, caller disconnect, done).
 */
export const requestScope = new AsyncLocalStorage<AbortSignal>();

/** JSON-RPC error code the broker synthesizes when an upstream response passes the size cap. */
export const RESPONSE_TOO_LARGE = -32097;

function requestIdOf(body: unknown): string | number | undefined {
  if (typeof body !== 'string' || body.length > 2_000_000) return undefined;
  try {
    const msg = JSON.parse(body) as { id?: unknown; method?: unknown };
    return typeof msg.id === 'string' || typeof msg.id === 'number' ? msg.id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * An answer to the 2026-07-28 negotiation probe that says nothing about the server's era
 * (rate limited, timed out, too early): failing the probe keeps the SDK from reading it as
 * the revision's fallback signal (security.md 35: no downgrade on an unrelated error).
 */
export class ProbeNotAnswered extends Error {
  constructor(readonly status: number) {
    super(`the MCP server answered the protocol negotiation with HTTP ${status}`);
  }
}
const UNRELATED_TO_ERA = new Set([408, 425, 429]);
const isProbe = (body: unknown) => typeof body === 'string' && body.length < 100_000 && body.includes('"server/discover"');

/** subscriptions/listen (2026-07-28) is a POST whose stream stays open by design. */
function isListen(body: unknown): boolean {
  return typeof body === 'string' && body.length < 100_000 && body.includes('"subscriptions/listen"');
}

const tooLargeMessage = (id: string | number, max: number) =>
  JSON.stringify({ jsonrpc: '2.0', id, error: { code: RESPONSE_TOO_LARGE, message: `upstream response exceeded ${max} bytes` } });

/** Whether an SSE event's data is a JSON-RPC response (a result or an error), not a notification. */
function isAnswerEvent(event: Uint8Array): boolean {
  const text = new TextDecoder().decode(event);
  const data = text
    .split(/\r?\n/)
    .filter((l) => l.startsWith('data:'))
    .map((l) => l.slice(5).replace(/^ /, ''))
    .join('\n');
  if (!data) return false;
  try {
    const m = JSON.parse(data) as { id?: unknown; result?: unknown; error?: unknown; method?: unknown };
    return typeof m === 'object' && m !== null && m.method === undefined && m.id !== undefined && ('result' in m || 'error' in m);
  } catch {
    return false;
  }
}

/**
 * Caps an SSE stream: each event at `max` bytes, and with `total` the whole stream. An
 * event over a cap ends the stream; when the request's JSON-RPC id is known the caller gets
 * an error response for it instead of a hang. With `closeOnAnswer` (a POST's stream: it
 * carries one request's answer) the stream ends right after the JSON-RPC answer, and the
 * upstream response is cancelled even if the server keeps it open.
 */
function capSse(max: number, idOf: () => string | number | undefined, o: { total?: number; closeOnAnswer?: boolean } = {}): TransformStream<Uint8Array, Uint8Array> {
  let event: Uint8Array[] = [];
  let size = 0;
  let total = 0;
  let prev = 0;
  let done = false;
  const tooLarge = (controller: TransformStreamDefaultController<Uint8Array>) => {
    done = true;
    const id = idOf();
    if (id === undefined) return controller.error(new Error(`upstream event exceeded ${max} bytes`));
    controller.enqueue(new TextEncoder().encode(`\n\nevent: message\ndata: ${tooLargeMessage(id, max)}\n\n`));
    controller.terminate();
  };
  return new TransformStream({
    transform(chunk, controller) {
      if (done) return;
      let from = 0;
      for (let i = 0; i < chunk.length; i++) {
        const b = chunk[i]!;
        total++;
        // A blank line (\n\n, or \n\r\n) ends an event.
        const boundary = b === 10 && (prev === 10 || prev === 13);
        if (b !== 13) prev = b;
        if (boundary) {
          size = 0;
          if (o.closeOnAnswer) {
            event.push(chunk.subarray(from, i + 1));
            from = i + 1;
            const bytes = Buffer.concat(event);
            event = [];
            controller.enqueue(bytes);
            if (isAnswerEvent(bytes)) {
              done = true;
              return controller.terminate();
            }
          }
          continue;
        }
        if (b !== 13) size++;
        if (size > max || (o.total !== undefined && total > o.total)) {
          if (!o.closeOnAnswer) controller.enqueue(chunk.subarray(from, i));
          return tooLarge(controller);
        }
      }
      if (o.closeOnAnswer) event.push(chunk.slice(from));
      else controller.enqueue(chunk);
    },
    flush(controller) {
      if (!done && event.length) controller.enqueue(Buffer.concat(event));
    },
  });
}

async function readCapped(body: ReadableStream<Uint8Array>, max: number): Promise<Uint8Array | undefined> {
  const reader = body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    parts.push(value);
  }
  return Buffer.concat(parts);
}

/**
 * The transport `fetch` for every MCP request: the egress-guarded dispatcher, a response
 * size cap (the SDK reads bodies without one), and no listener-leak warnings on the SDK's
 * long-lived shared abort signal.
 */
export function createUpstreamFetch(agent: Agent, maxBytes: number): FetchLike {
  return async (url, init) => {
    // Inside a request scope its signal alone will do: the scope ends (and aborts) when the
    // request settles, which a closing transport also makes happen.
    const signal = requestScope.getStore() ?? init?.signal ?? undefined;
    // Not 0: Node 20's getMaxListeners() throws for a limit of 0, and undici 7 calls it.
    if (signal) setMaxListeners(1_000_000, signal);
    const res = (await undiciFetch(url as string, { ...(init as object), signal, dispatcher: agent })) as unknown as Response;
    if (UNRELATED_TO_ERA.has(res.status) && init?.method === 'POST' && isProbe(init.body)) {
      await res.body?.cancel().catch(() => undefined);
      throw new ProbeNotAnswered(res.status);
    }
    if (!res.body) return res;
    // Only an overflowing answer needs the request's JSON-RPC id: parse the body then, not per call.
    const idOf = () => requestIdOf(init?.body);
    const headers = new Headers(res.headers);
    headers.delete('content-encoding');
    const init2 = { status: res.status, statusText: res.statusText, headers };
    // A POST's SSE stream carries one request's answer: it ends at that answer (a server may
    // keep it open), under the cap as a whole. Other streams (the standalone GET, legacy SSE,
    // subscriptions/listen) stay open: each event is capped instead.
    const sse = (res.headers.get('content-type') ?? '').includes('text/event-stream');
    if (sse) {
      const post = init?.method === 'POST' && !isListen(init?.body);
      return new Response(res.body.pipeThrough(capSse(maxBytes, idOf, post ? { total: maxBytes, closeOnAnswer: true } : {})), init2);
    }
    const bytes = await readCapped(res.body, maxBytes);
    if (bytes) return new Response(bytes.byteLength ? (bytes as BodyInit) : null, init2);
    const id = idOf();
    if (id !== undefined && res.ok) {
      headers.delete('content-length');
      headers.set('content-type', 'application/json');
      return new Response(tooLargeMessage(id, maxBytes), init2);
    }
    throw new Error(`upstream response exceeded ${maxBytes} bytes`);
  };
}
