import { SdkError, SdkErrorCode, specTypeSchemas } from '@modelcontextprotocol/client';
import { callToolResult } from '../../src/mcp/callResult.js';

describe('callToolResult: a 2025-era tools/call answer as the SDK Client returns it', () => {
  it.each([
    ['a text result, kept', { content: [{ type: 'text', text: 'hi' }] }, { content: [{ type: 'text', text: 'hi' }] }],
    ['no content: content [] (the 2025 wire rule)', { structuredContent: { sum: 3 } }, { content: [], structuredContent: { sum: 3 } }],
    ['resultType dropped', { resultType: 'complete', content: [] }, { content: [] }],
    ['isError kept', { content: [{ type: 'text', text: 'bad' }], isError: true }, { content: [{ type: 'text', text: 'bad' }], isError: true }],
    ['unknown fields pass through', { content: [], extra: 1 }, { content: [], extra: 1 }],
  ])('%s', (_n, raw, want) => {
    expect(callToolResult(raw)).toEqual(want);
  });

  it.each([
    ['content not an array', { content: 'text' }],
    ['a content block without a type', { content: [{ text: 'x' }] }],
    ['another result family without content', { task: { taskId: 't' } }],
    ['not an object', 'text'],
    ['null', null],
    // The neutral schema takes these; the Client's 2025-era wire schema (a record) does not.
    ['structuredContent an array', { content: [], structuredContent: [1] }],
    ['structuredContent null', { content: [], structuredContent: null }],
  ])('%s → SdkError InvalidResult', (_n, raw) => {
    let err: unknown;
    try {
      callToolResult(raw);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SdkError);
    expect(err).toMatchObject({ code: SdkErrorCode.InvalidResult });
  });

  // The common text answer is checked by hand: what it returns must be what the schema returns.
  it.each([
    ['one text block', { content: [{ type: 'text', text: 'hi' }] }],
    ['no blocks', { content: [] }],
    ['several blocks, isError', { content: [{ type: 'text', text: 'a' }, { type: 'text', text: '' }], isError: true }],
    ['structured content', { content: [{ type: 'text', text: '{"sum":3}' }], structuredContent: { sum: 3, nested: { a: [1, 'x', null] } } }],
    ['isError false', { content: [{ type: 'text', text: 'a' }], isError: false }],
    ['annotations (schema path)', { content: [{ type: 'text', text: 'a', annotations: { audience: ['user'] } }] }],
    ['_meta (schema path)', { content: [{ type: 'text', text: 'a' }], _meta: { k: 1 } }],
    ['an image (schema path)', { content: [{ type: 'image', data: 'AAAA', mimeType: 'image/png' }] }],
  ])('%s: the same value as the SDK schema', (_n, raw) => {
    const schema = specTypeSchemas.CallToolResult['~standard'].validate(raw) as { value: unknown };
    expect(callToolResult(raw)).toEqual(schema.value);
  });

  it.each([
    ['isError not a boolean', { content: [{ type: 'text', text: 'a' }], isError: 'yes' }],
    ['text not a string', { content: [{ type: 'text', text: 5 }] }],
    ['a null block', { content: [null] }],
  ])('%s: refused as the schema refuses it', (_n, raw) => {
    expect(() => callToolResult(raw)).toThrow(SdkError);
  });
});
