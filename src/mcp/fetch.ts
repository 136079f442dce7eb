import { setMaxListeners } from 'node:events';
import { fetch as undiciFetch, type Agent } from 'undici';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';

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

const tooLargeMessage = (id: string | number, max: number) =>
  JSON.stringify({ jsonrpc: '2.0', id, error: { code: RESPONSE_TOO_LARGE, message: `upstream response exceeded ${max} bytes` } });

/**
 * Caps one SSE event at `max` bytes. An event over the cap ends the stream; when the
 * request's JSON-RPC id is known the caller gets an error response for it instead of a hang.
 */
function capSse(max: number, idOf: () => string | number | undefined): TransformStream<Uint8Array, Uint8Array> {
  let size = 0;
  let prev = 0;
  let done = false;
  return new TransformStream({
    transform(chunk, controller) {
      if (done) return;
      for (let i = 0; i < chunk.length; i++) {
        const b = chunk[i]!;
        // A blank line (\n\n, or \n\r\n) ends an event.
        if (b === 10 && (prev === 10 || prev === 13)) size = 0;
        else if (b !== 13) size++;
        if (b !== 13) prev = b;
        if (size > max) {
          controller.enqueue(chunk.subarray(0, i));
          done = true;
          const id = idOf();
          if (id === undefined) return controller.error(new Error(`upstream event exceeded ${max} bytes`));
          controller.enqueue(new TextEncoder().encode(`\n\nevent: message\ndata: ${tooLargeMessage(id, max)}\n\n`));
          return controller.terminate();
        }
      }
      controller.enqueue(chunk);
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
    // Not 0: Node 20's getMaxListeners() throws for a limit of 0, and undici 7 calls it.
    if (init?.signal) setMaxListeners(1_000_000, init.signal);
    const res = (await undiciFetch(url as string, { ...(init as object), dispatcher: agent })) as unknown as Response;
    if (!res.body) return res;
    // Only an overflowing answer needs the request's JSON-RPC id: parse the body then, not per call.
    const idOf = () => requestIdOf(init?.body);
    const headers = new Headers(res.headers);
    headers.delete('content-encoding');
    const init2 = { status: res.status, statusText: res.statusText, headers };
    // A POST's SSE stream carries one request's answer and ends: read it whole, under the cap.
    // Other streams (the standalone GET, legacy SSE) stay open: each event is capped instead.
    const sse = (res.headers.get('content-type') ?? '').includes('text/event-stream');
    if (sse && init?.method !== 'POST') {
      return new Response(res.body.pipeThrough(capSse(maxBytes, idOf)), init2);
    }
    const bytes = await readCapped(res.body, maxBytes);
    if (bytes) return new Response(bytes.byteLength ? (bytes as BodyInit) : null, init2);
    const id = idOf();
    if (id !== undefined && res.ok) {
      headers.delete('content-length');
      if (sse) return new Response(`event: message\ndata: ${tooLargeMessage(id, maxBytes)}\n\n`, init2);
      headers.set('content-type', 'application/json');
      return new Response(tooLargeMessage(id, maxBytes), init2);
    }
    throw new Error(`upstream response exceeded ${maxBytes} bytes`);
  };
}
