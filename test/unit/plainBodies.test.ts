import { McpToolParamSchema, plainToolParam } from '../../src/broker/toolParam.js';
import { CallBody, ListToolsBody, plainCallBody, plainListToolsBody } from '../../src/http/routes/mcp.js';

/**
 * The direct checks of the common bodies against their schemas: whatever a check accepts, the
 * schema accepts with an equal result (and a result that is not the input object); whatever
 * the schema refuses, the check leaves to it. Every combination of the field variants below.
 */
const tools: unknown[] = [
  { type: 'mcp', server_label: 'fx' },
  { type: 'mcp', server_label: 'a-b_C9' },
  { type: 'mcp', server_label: 'x'.repeat(64) },
  { type: 'mcp', server_label: 'x'.repeat(65) },
  { type: 'mcp', server_label: '' },
  { type: 'mcp', server_label: 'has space' },
  { type: 'mcp', server_label: 'dot.ted' },
  { type: 'mcp', server_label: 7 },
  { type: 'mcp' },
  { type: 'function', server_label: 'fx' },
  { server_label: 'fx' },
  { type: 'mcp', server_label: 'fx', require_approval: 'never' },
  { type: 'mcp', server_label: 'fx', require_approval: 'always' },
  { type: 'mcp', server_label: 'fx', require_approval: 'sometimes' },
  { type: 'mcp', server_label: 'fx', require_approval: null },
  { type: 'mcp', server_label: 'fx', require_approval: { never: { tool_names: ['a'] } } },
  { type: 'mcp', server_label: 'fx', server_url: 'https://example.com/mcp' },
  { type: 'mcp', server_label: 'fx', headers: { 'x-a': 'b' } },
  { type: 'mcp', server_label: 'fx', allowed_tools: ['a'] },
  { type: 'mcp', server_label: 'fx', extra: 1 },
  JSON.parse('{"type":"mcp","server_label":"fx","__proto__":{"server_url":"https://evil.example"}}'),
  ['mcp'],
  null,
  'mcp',
  undefined,
];
const names: unknown[] = ['echo', 'x'.repeat(256), 'x'.repeat(257), '', 3, null, undefined];
const args: unknown[] = [
  { text: 'bench' },
  {},
  '{"text":"x"}',
  '',
  null,
  undefined,
  [1],
  3,
  true,
  JSON.parse('{"__proto__":{"a":1},"b":2}'),
  { nested: { deep: [1, { a: null }] } },
];
const approvalIds: unknown[] = ['mcpr_1', 'x'.repeat(128), 'x'.repeat(129), '', null, undefined, 5];

const outcome = (schema: { safeParse(v: unknown): { success: boolean; data?: unknown } }, v: unknown) => {
  const r = schema.safeParse(v);
  return r.success ? { ok: r.data } : { refused: true };
};

function checkAgainst(schema: Parameters<typeof outcome>[0], plain: (v: unknown) => unknown, v: unknown): 'fast' | 'schema' {
  const fast = plain(v);
  if (fast === undefined) return 'schema';
  expect({ input: v, got: { ok: fast } }).toEqual({ input: v, got: outcome(schema, v) });
  if (v !== null && typeof v === 'object') expect(fast).not.toBe(v);
  return 'fast';
}

describe('direct checks of the common request bodies, against their schemas', () => {
  it('the MCP tool param', () => {
    const taken = tools.filter((t) => checkAgainst(McpToolParamSchema, plainToolParam, t) === 'fast');
    expect(taken).toHaveLength(5);
  });

  it('list_tools bodies', () => {
    let fast = 0;
    for (const tool of tools) {
      for (const extra of [{}, { other: 1 }]) {
        const body = tool === undefined ? { ...extra } : { tool, ...extra };
        if (checkAgainst(ListToolsBody, plainListToolsBody, body) === 'fast') fast++;
      }
    }
    for (const odd of [null, [], 'x', 1]) expect(plainListToolsBody(odd)).toBeUndefined();
    expect(fast).toBe(5);
  });

  it('call bodies: every combination of tool, name, arguments and approval_request_id', () => {
    let fast = 0;
    let total = 0;
    for (const tool of tools) {
      for (const name of names) {
        for (const a of args) {
          for (const id of approvalIds) {
            const body: Record<string, unknown> = {};
            if (tool !== undefined) body.tool = tool;
            if (name !== undefined) body.name = name;
            if (a !== undefined) body.arguments = a;
            if (id !== undefined) body.approval_request_id = id;
            total++;
            if (checkAgainst(CallBody, plainCallBody, body) === 'fast') fast++;
          }
        }
      }
    }
    // 5 tools × 2 names × 7 arguments forms (three objects, two strings, null, none; not an
    // array, a number, a boolean or one with a __proto__ key) × 4 ids.
    expect([total, fast]).toEqual([tools.length * names.length * args.length * approvalIds.length, 5 * 2 * 7 * 4]);
  });

  it('a call body with arguments nested past the limit goes to the schema (and parseInput refuses it)', () => {
    let deep: unknown = {};
    for (let i = 0; i < 150; i++) deep = { d: deep };
    expect(plainCallBody({ tool: { type: 'mcp', server_label: 'fx' }, name: 'echo', arguments: deep })).toBeUndefined();
  });
});
