import { Client, ProtocolError, SdkError, SdkErrorCode, type CallToolResult, type RequestOptions } from '@modelcontextprotocol/client';
import { untilSignal } from './callDeadline.js';
import { plainResult2026 } from './callResult.js';
import type { UndiciTransport } from './undiciTransport.js';

/** SEP-2243's HeaderMismatch: the server wanted `Mcp-Param-*` headers mirrored from the arguments. */
const HEADER_MISMATCH = -32020;

export const isHeaderMismatch = (err: unknown): boolean => err instanceof ProtocolError && err.code === HEADER_MISMATCH;

/**
 * The SDK Client, with the two protected seams of its own request funnel opened to the
 * broker's 2026-07-28 tools/call (callTool2026): the negotiated era's wire codec, and the
 * Client's multi-round-trip driver for an `input_required` answer.
 */
export class BrokerClient extends Client {
  wire() {
    return this._wireCodec();
  }

  fulfil(decoded: Parameters<Client['_resolveNonCompleteResult']>[0], flow: Parameters<Client['_resolveNonCompleteResult']>[1]): Promise<unknown> {
    return this._resolveNonCompleteResult(decoded, flow);
  }
}

type Decoded = ReturnType<ReturnType<BrokerClient['wire']>['decodeResult']>;

/**
 * tools/call on a 2026-07-28 connection, sent by the broker's transport (UndiciTransport.rpc)
 * instead of through Client.callTool: what the Client's funnel does for one request, minus its
 * bookkeeping. Measured before writing this (2026-12-02, interleaved A/B, same build): the
 * Client's funnel — two zod passes over the result (its wire schema, then the lifted result's),
 * cache probes, its request map — cost 0.5 ms CPU of a 3.1 ms brokered call; this path is
 * 0.83–0.84× the broker's CPU per call and 0.86–0.87× its latency (README, benchmark table).
 *
 * Kept from the Client, exactly:
 * - the request: the envelope the Client's own requests carry on this connection
 *   (`transport.envelope`), the standard headers the transport derives from it, the caller's
 *   timeout and signal; a cancelled request ends its HTTP request (no notifications/cancelled);
 * - the answer: a JSON-RPC error is the same ProtocolError; the common answer (text blocks,
 *   nothing the schemas would change: plainResult2026) is taken as the schemas would return it;
 *   every other answer is decoded and validated by the Client's own wire codec, errors and all;
 * - `input_required`: handed to the Client's driver (its handlers — the broker registers none —,
 *   rounds, pacing), each further leg made here the same way.
 * - SEP-2243 `Mcp-Param-*` headers: the caller passes them (paramHeaders.ts, from the
 *   declarations of the connection's listing), on every leg, as the Client mirrors them from
 *   its listing cache — which the broker, listing page by page, never fills. A HeaderMismatch
 *   answer fails this call; the session walks the listing and sends it once more (session.ts).
 */
export async function callTool2026(
  client: BrokerClient,
  transport: UndiciTransport,
  envelope: Readonly<Record<string, unknown>>,
  name: string,
  args: Record<string, unknown>,
  o: { timeoutMs: number; signal?: AbortSignal; until?: number; headers?: Record<string, string> },
): Promise<CallToolResult> {
  const codec = client.wire();
  const params = { name, arguments: args };
  const options: RequestOptions = { timeout: o.timeoutMs, signal: o.signal };
  const resultSchema = {
    '~standard': {
      version: 1 as const,
      vendor: 'mcp-wire-codec',
      validate: (value: unknown) => {
        const v = codec.validateResult('tools/call', value);
        return v.ok ? { value: v.value } : { issues: [{ message: v.reason === 'invalid' ? v.message : 'not-in-era: tools/call' }] };
      },
    },
  };
  const leg = async (legParams: Record<string, unknown> | undefined, legOptions: RequestOptions): Promise<unknown> => {
    const p = legParams ?? {};
    const raw = await transport.rpc(
      'tools/call',
      { ...p, _meta: { ...envelope, ...(p._meta as Record<string, unknown> | undefined) } },
      { timeoutMs: legOptions.timeout ?? o.timeoutMs, signal: legOptions.signal, headers: o.headers },
    );
    const plain = plainResult2026(raw);
    if (plain) return plain;
    const decoded: Decoded = codec.decodeResult('tools/call', raw);
    if (decoded.kind === 'invalid') throw decoded.error;
    if (decoded.kind === 'input_required') {
      // A later leg of the driver's own flow hands input_required back to the driver.
      if ((legOptions as { allowInputRequired?: boolean }).allowInputRequired === true) {
        const { kind: _kind, ...rest } = decoded;
        return { resultType: 'input_required', ...rest };
      }
      // The driver gives every further round the full timeout: the call's deadline bounds them all.
      const bound = untilSignal(o.until ?? flowStart + o.timeoutMs, o.timeoutMs, o.signal);
      try {
        return await client.fulfil(decoded, { codec, request: { method: 'tools/call', params }, resultSchema, options: { ...options, signal: bound.signal }, flowStartedAt, retry: leg });
      } finally {
        bound.clear();
      }
    }
    const v = codec.validateResult('tools/call', decoded.result);
    if (!v.ok) throw new SdkError(SdkErrorCode.InvalidResult, `Invalid result for tools/call: ${v.reason === 'invalid' ? v.message : 'not-in-era: tools/call'}`);
    return v.value;
  };
  const flowStartedAt = Date.now();
  const flowStart = performance.now();
  return (await leg(params, options)) as CallToolResult;
}
