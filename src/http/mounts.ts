/** Where createApp mounts its routers: one list, which metrics and spans also read. */
export const MOUNT = {
  console: '/console',
  oauth: '/oauth',
  admin: '/admin',
  approvals: '/v1/mcp/approvals',
  mcp: '/v1/mcp',
  responses: '/v1/responses',
} as const;

const LONGEST_FIRST = Object.values(MOUNT).sort((a, b) => b.length - a.length);

/**
 * The mount a request path is under ('' for the app's own routes): once a request left a
 * mounted router (a handler's error, or next() to the 404) express has reset baseUrl, and the
 * prefix must come from this fixed list — never from URL text, so labels and span names stay
 * bounded.
 */
export function mountOf(originalUrl: string): string {
  const actual = (originalUrl.split('?')[0] ?? '').toLowerCase();
  return LONGEST_FIRST.find((m) => actual === m || actual.startsWith(`${m}/`)) ?? '';
}
