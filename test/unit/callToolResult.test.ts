import { SdkError, SdkErrorCode } from '@modelcontextprotocol/client';
import { callToolResult } from '../../src/mcp/session.js';

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
});
