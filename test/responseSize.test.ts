import { entrySize, transcriptSize } from '../src/responses/size.js';

describe('store size estimate', () => {
  it('equals the serialized length of the transcript, entry by entry', () => {
    const t = [
      { type: 'message', role: 'user', content: 'héllo "quoted" \n' },
      { type: 'mcp_call', id: 'mcp_1', output: 'y'.repeat(100), error: null },
      { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'ok', annotations: [] }] },
    ];
    expect(transcriptSize(t)).toBe(JSON.stringify(t).length);
    expect(transcriptSize([])).toBe(JSON.stringify([]).length);
  });

  it('measures an entry once: a shared entry keeps its first size', () => {
    const e: { text: string } = { text: 'short' };
    const first = entrySize(e);
    e.text = 'much longer than before';
    expect(entrySize(e)).toBe(first);
    expect(entrySize({ text: 'much longer than before' })).toBeGreaterThan(first);
  });
});
