import { ProtocolError, SdkError, SdkErrorCode, SdkHttpError, SseError } from '@modelcontextprotocol/client';
import { parseEnv, maxInflightPerServer } from '../../src/config/env.js';
import { classifyUpstreamError, isServerFault, stripQueries } from '../../src/mcp/failure.js';
import { isSessionRefusal, ListingTooLargeError } from '../../src/mcp/session.js';
import { BrokerCapacityError } from '../../src/mcp/failure.js';
import { ProbeNotAnswered } from '../../src/mcp/fetch.js';
import { statusText, unsupportedReason } from '../../src/catalog/catalog.js';
import { expandSecrets } from '../../src/util/scrub.js';

const net = (code: string) => new TypeError('fetch failed', { cause: Object.assign(new Error(code), { code }) });
const http = (status: number, text?: string) => new SdkHttpError(SdkErrorCode.ClientHttpNotImplemented, `Error POSTing to endpoint: ${text}`, { status, text });

describe('upstream failures: what reaches the caller, and what counts toward the breaker', () => {
  const cases: Array<[string, unknown, object, boolean]> = [
    ['connection refused', net('ECONNREFUSED'), { kind: 'http', status: 502, code: 'connection_error' }, true],
    ['connection reset', net('ECONNRESET'), { kind: 'http', status: 502, code: 'connection_error' }, true],
    ['an invalid header value fetch refused to send', new TypeError('Headers.append: "a\u0001" is an invalid header value.'), { kind: 'http', status: 400 }, false],
    ['HTTP 500', http(500, 'down'), { kind: 'http', status: 500, message: 'Http status code: 500 (Internal Server Error)' }, true],
    ['HTTP 503', http(503), { kind: 'http', status: 503 }, true],
    ['HTTP 401 (the caller’s credentials)', http(401), { kind: 'http', status: 401 }, false],
    ['HTTP 403', http(403), { kind: 'http', status: 403 }, false],
    ['HTTP 429', http(429), { kind: 'http', status: 429 }, false],
    [
      'HTTP 400 with the server’s JSON-RPC reason',
      http(400, JSON.stringify({ jsonrpc: '2.0', id: 1, error: { code: -32022, message: 'Unsupported protocol version' } })),
      { kind: 'http', status: 400, message: 'Http status code: 400 (Bad Request): Unsupported protocol version' },
      false,
    ],
    ['the SDK timeout', new SdkError(SdkErrorCode.RequestTimeout, 'Request timed out'), { kind: 'http', status: 504, code: 'timeout' }, true],
    ['connection closed', new SdkError(SdkErrorCode.ConnectionClosed, 'Connection closed'), { kind: 'http', status: 502, code: 'connection_error' }, true],
    ['a JSON-RPC error (a healthy server)', new ProtocolError(-32000, 'refused'), { kind: 'protocol', code: -32000, message: 'refused' }, false],
    ['the listing bound', new ListingTooLargeError('over 10 bytes'), { kind: 'http', status: 413, message: 'tool list too large (over 10 bytes)' }, false],
    ['the broker’s own capacity refusal', new BrokerCapacityError(429, 'upstream_busy', 'busy', 1), { kind: 'http', status: 429 }, false],
    ['an SSE stream error with a status', new SseError(502, 'bad gateway', {} as never), { kind: 'http', status: 502 }, true],
    ['a negotiation probe answered 429 (no era signal)', new SdkError(SdkErrorCode.EraNegotiationFailed, 'probe failed', undefined, { cause: new ProbeNotAnswered(429) }), { kind: 'http', status: 429 }, false],
    ['a negotiation probe that could not connect', new SdkError(SdkErrorCode.EraNegotiationFailed, 'probe failed', undefined, { cause: net('ECONNREFUSED') }), { code: 'connection_error' }, true],
  ];
  it.each(cases)('%s', (_n, err, expected, counts) => {
    expect(classifyUpstreamError(err)).toMatchObject(expected);
    expect(isServerFault(err)).toBe(counts);
  });
  it('a caller who went away is never the server’s fault', () => {
    expect(isServerFault(new SdkError(SdkErrorCode.RequestTimeout, 'x'), true)).toBe(false);
  });
  it('the server’s reason is clipped to 500 characters and loses its query strings', () => {
    const long = http(400, JSON.stringify({ error: { code: 1, message: `see https://x.example/a?token=abc ${'E'.repeat(5000)}` } }));
    const f = classifyUpstreamError(long);
    expect(f.message).toContain('https://x.example/a?<redacted>');
    expect(f.message).not.toContain('token=abc');
    expect(f.message.length).toBeLessThan(600);
    expect(stripQueries('http://h/p?q=1#f and https://h2/?a')).toBe('http://h/p?<redacted>#f and https://h2/?<redacted>');
  });
});

describe('session refusals', () => {
  it.each([
    [404, true, true],
    [400, true, true],
    [410, true, true],
    [400, false, false],
    [404, false, false],
    [500, true, false],
    [401, true, false],
  ])('HTTP %i, session id carried %s → refusal %s', (status, carried, refusal) => {
    expect(isSessionRefusal(http(status), carried)).toBe(refusal);
  });
});

describe('status texts and unsupported tools', () => {
  it('last_error is scrubbed of credential values and queries, ≤ 500 chars', () => {
    const t = statusText(new ProtocolError(-32000, `token Bearer abc-secret-1 at https://h/x?k=v ${'z'.repeat(900)}`), ['Bearer abc-secret-1', 'abc-secret-1']);
    expect(t).not.toContain('abc-secret-1');
    expect(t).not.toContain('k=v');
    expect(t.length).toBeLessThanOrEqual(500);
  });
  it('a secret straddling the 500-character clip is scrubbed before the clip (no half token left)', () => {
    const token = `eyJ${'T'.repeat(200)}.sig`;
    const secrets = expandSecrets([token]);
    const message = `${'p'.repeat(400)} Bearer ${token}`;
    const cases = [
      ['protocol', new ProtocolError(-32603, message)],
      ['http body', http(500, JSON.stringify({ jsonrpc: '2.0', id: 1, error: { code: -32603, message } }))],
      ['sdk', new SdkError(SdkErrorCode.ClientHttpFailedToOpenStream, message)],
      ['other', new Error(message)],
    ] as const;
    for (const [what, err] of cases) {
      expect([what, classifyUpstreamError(err).message.includes('TTTTTTTTTT')]).toEqual([what, true]);
      const m = classifyUpstreamError(err, secrets).message;
      expect([what, m.includes('TTTTTTTTTT'), m.includes('<redacted>')]).toEqual([what, false, true]);
      // A scrubber function works the same (the broker-wide one, applied before the clip).
      const f = classifyUpstreamError(err, (text) => text.split(token).join('<gone>')).message;
      expect([what, f.includes('TTTTTTTTTT'), f.includes('<gone>')]).toEqual([what, false, true]);
    }
    expect(statusText(new ProtocolError(-32603, message), secrets)).not.toContain('TTTTTTTTTT');
  });
  it.each([
    [{ name: 'a', inputSchema: { type: 'object' }, execution: { taskSupport: 'required' } }, /task-based execution/, undefined],
    [{ name: 'b', inputSchema: { type: 'object' }, execution: { taskSupport: 'optional' } }, undefined, undefined],
    [{ name: 'c', inputSchema: { type: 'object' } }, undefined, undefined],
    [{ name: 'd', inputSchema: { type: 'object', properties: { x: { type: 'number', 'x-mcp-header': 'X' } } } }, /invalid x-mcp-header/, 'modern'],
    [{ name: 'e', inputSchema: { type: 'object', properties: { x: { type: 'number', 'x-mcp-header': 'X' } } } }, undefined, 'legacy'],
    [{ name: 'f', inputSchema: { type: 'object', properties: { x: { type: 'string', 'x-mcp-header': 'X' } } } }, undefined, 'modern'],
  ] as const)('%j (%s, %s)', (tool, reason, era) => {
    const r = unsupportedReason(tool as never, era);
    if (reason) expect(r).toMatch(reason);
    else expect(r).toBeUndefined();
  });
});

describe('environment', () => {
  it.each([
    [{}, 64],
    [{ BROKER_MAX_INFLIGHT_PER_ORIGIN: '7' }, 7],
    [{ BROKER_MAX_INFLIGHT_PER_SERVER: '9' }, 9],
    [{ BROKER_MAX_INFLIGHT_PER_SERVER: '9', BROKER_MAX_INFLIGHT_PER_ORIGIN: '7' }, 9],
  ])('%j → %i in flight per server', (env, n) => expect(maxInflightPerServer(parseEnv(env))).toBe(n));
  it('BROKER_MAX_LISTING_BYTES defaults to 8 MiB', () => expect(parseEnv({}).BROKER_MAX_LISTING_BYTES).toBe(8 * 1024 * 1024));
});
