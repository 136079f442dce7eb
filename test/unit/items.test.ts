import { callItem, listToolsItem, outcomeOfResult, outputOf } from '../../src/broker/items.js';
import { parseArguments } from '../../src/broker/arguments.js';
import { InvalidRequestError } from '../../src/errors/index.js';

describe('output rule', () => {
  const cases: Array<[string, Parameters<typeof outputOf>[0], string]> = [
    ['text blocks joined by newline', { content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }, 'a\nb'],
    ['structuredContent when no text', { content: [], structuredContent: { sum: 3 } }, '{"sum":3}'],
    ['text wins over structuredContent', { content: [{ type: 'text', text: 't' }], structuredContent: { x: 1 } }, 't'],
    ['image placeholder', { content: [{ type: 'image', data: 'x', mimeType: 'image/png' }] }, '[image: image/png]'],
    ['audio placeholder', { content: [{ type: 'audio', data: 'x', mimeType: 'audio/wav' }] }, '[audio: audio/wav]'],
    ['an embedded text resource contributes its text', { content: [{ type: 'resource', resource: { uri: 'file:///a', text: 'x' } }] }, 'x'],
    ['an embedded text resource wins over structuredContent', { content: [{ type: 'resource', resource: { uri: 'file:///a', text: 'x' } }], structuredContent: { y: 1 } }, 'x'],
    ['an embedded blob resource is a placeholder with its mime type', { content: [{ type: 'resource', resource: { uri: 'file:///b', blob: 'AAAA', mimeType: 'application/pdf' } }] }, '[resource: file:///b (application/pdf)]'],
    ['a resource link adds name and mime type', { content: [{ type: 'resource_link', uri: 'u:2', name: 'report', mimeType: 'text/csv' }] }, '[resource: u:2 (name: report, mime type: text/csv)]'],
    ['mixed', { content: [{ type: 'text', text: 'pic' }, { type: 'image', data: 'x', mimeType: 'image/jpeg' }, { type: 'resource_link', uri: 'u:1', name: 'n' }] }, 'pic\n[image: image/jpeg]\n[resource: u:1 (name: n)]'],
    ['empty', { content: [] }, ''],
  ];
  it.each(cases)('%s', (_n, result, expected) => expect(outputOf(result as never)).toBe(expected));
});

describe('items', () => {
  it('a tool error becomes mcp_tool_execution_error with the content blocks and a failed status', () => {
    const outcome = outcomeOfResult({ isError: true, content: [{ type: 'text', text: 'no' }] });
    const item = callItem({ server_label: 's', name: 't', arguments: '{}' }, outcome);
    expect(item).toMatchObject({
      type: 'mcp_call',
      status: 'failed',
      output: null,
      error: { type: 'mcp_tool_execution_error', content: [{ type: 'text', text: 'no' }] },
      approval_request_id: null,
    });
    expect(item.id).toMatch(/^mcp_[0-9a-f]{32}$/);
  });
  it('a success is completed with error null', () => {
    const item = callItem({ server_label: 's', name: 't', arguments: '{"a":1}', approval_request_id: 'mcpr_x' }, { output: 'ok', error: null });
    expect(item).toMatchObject({ status: 'completed', output: 'ok', error: null, approval_request_id: 'mcpr_x' });
  });
  it('listing normalizes annotations to {read_only}', () => {
    const item = listToolsItem('dmcp', [
      { name: 'a', inputSchema: { type: 'object' }, annotations: { readOnlyHint: true, destructiveHint: false } },
      { name: 'b', description: 'B', inputSchema: { type: 'object' } },
    ]);
    expect(item.id).toMatch(/^mcpl_[0-9a-f]{32}$/);
    expect(item.tools).toEqual([
      { name: 'a', description: null, input_schema: { type: 'object' }, annotations: { read_only: true } },
      { name: 'b', description: 'B', input_schema: { type: 'object' }, annotations: { read_only: false } },
    ]);
    expect('error' in item).toBe(false);
  });
});

describe('arguments', () => {
  it('accepts JSON text or an object and hashes canonical JSON', () => {
    const a = parseArguments('{"b":1,"a":[1,2]}');
    const b = parseArguments({ a: [1, 2], b: 1 });
    expect(a.sha256).toBe(b.sha256);
    expect(a.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(parseArguments(undefined).text).toBe('{}');
  });
  it.each([['not json'], ['[1,2]'], ['3'], [[1]], ['x'.repeat(1024 * 1024 + 1)]])('rejects %#', (raw) => {
    expect(() => parseArguments(raw)).toThrow(InvalidRequestError);
  });
});
