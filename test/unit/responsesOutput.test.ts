import { OutputWriter } from '../../src/responses/output.js';
import type { Sink } from '../../src/responses/sink.js';

function recorder() {
  const events: Array<{ type: string } & Record<string, any>> = [];
  const sink: Sink = { streaming: true, emit: (type, payload) => void events.push({ type, ...payload }), close() {} };
  return { events, writer: new OutputWriter(sink, false) };
}

describe('OutputWriter', () => {
  it.each([
    [
      'text then refusal, both streamed',
      (w: OutputWriter) => {
        w.messageStart('0', 'msg_up');
        w.contentDelta('0', 0, 'output_text', 'a');
        w.contentDelta('0', 0, 'output_text', 'b');
        w.contentDelta('0', 1, 'refusal', 'no');
        w.messageDone('0', { type: 'message', id: 'msg_up', role: 'assistant', content: [{ type: 'output_text', text: 'ab' }, { type: 'refusal', refusal: 'no' }] });
      },
      [
        'response.output_item.added',
        'response.content_part.added',
        'response.output_text.delta',
        'response.output_text.delta',
        'response.output_text.done',
        'response.content_part.done',
        'response.content_part.added',
        'response.refusal.delta',
        'response.refusal.done',
        'response.content_part.done',
        'response.output_item.done',
      ],
    ],
    [
      'a message that did not stream is filled in at done',
      (w: OutputWriter) => {
        w.messageStart('0');
        w.messageDone('0', { type: 'message', id: 'x', role: 'assistant', content: [{ type: 'output_text', text: 'whole' }] });
      },
      ['response.output_item.added', 'response.content_part.added', 'response.output_text.delta', 'response.output_text.done', 'response.content_part.done', 'response.output_item.done'],
    ],
    [
      'a summary that did not stream is filled in at done',
      (w: OutputWriter) => {
        w.reasoningStart('0', 'rs_1');
        w.reasoningDone('0', { type: 'reasoning', id: 'rs_1', summary: [{ type: 'summary_text', text: 's' }], encrypted_content: 'e' });
      },
      [
        'response.output_item.added',
        'response.reasoning_summary_part.added',
        'response.reasoning_summary_text.delta',
        'response.reasoning_summary_text.done',
        'response.reasoning_summary_part.done',
        'response.output_item.done',
      ],
    ],
    [
      'closeOpen ends every open item incomplete, in output order',
      (w: OutputWriter) => {
        w.reasoningStart('r', 'rs_2');
        w.summaryDelta('r', 0, 'half');
        w.messageStart('m');
        w.contentDelta('m', 0, 'output_text', 'par');
        w.closeOpen();
      },
      [
        'response.output_item.added',
        'response.reasoning_summary_part.added',
        'response.reasoning_summary_text.delta',
        'response.output_item.added',
        'response.content_part.added',
        'response.output_text.delta',
        'response.reasoning_summary_text.done',
        'response.reasoning_summary_part.done',
        'response.output_item.done',
        'response.output_text.done',
        'response.content_part.done',
        'response.output_item.done',
      ],
    ],
  ])('%s', (_name, script, expected) => {
    const { events, writer } = recorder();
    script(writer);
    expect(events.map((e) => e.type)).toEqual(expected);
    for (const e of events.filter((x) => x.type === 'response.output_item.done')) expect(e.item.status === undefined || ['completed', 'incomplete'].includes(e.item.status)).toBe(true);
  });

  it('keeps what streamed when closing; a call ended after the close is ignored', () => {
    const { events, writer } = recorder();
    writer.messageStart('m');
    writer.contentDelta('m', 0, 'output_text', 'kept');
    const { index } = writer.startCall({ server_label: 'fx', name: 'slow', approval_request_id: null }, '{"ms":1}');
    writer.closeOpen();
    const before = events.length;
    writer.endCall(index, { id: 'mcp_x', type: 'mcp_call', status: 'completed', server_label: 'fx', name: 'slow', arguments: '{"ms":1}', output: 'late', error: null, approval_request_id: null });
    expect(events.length).toBe(before);
    expect(writer.publicOutput()).toEqual([
      expect.objectContaining({ type: 'message', status: 'incomplete', content: [expect.objectContaining({ text: 'kept' })] }),
      expect.objectContaining({ type: 'mcp_call', status: 'incomplete', arguments: '{"ms":1}', output: null }),
    ]);
  });

  it('does not repeat an upstream message id within one response', () => {
    const { writer } = recorder();
    for (const key of ['a', 'b']) {
      writer.messageStart(key, 'msg_same');
      writer.messageDone(key, { type: 'message', id: 'msg_same', role: 'assistant', content: [] });
    }
    const ids = writer.publicOutput().map((i) => i.id);
    expect(ids[0]).toBe('msg_same');
    expect(ids[1]).not.toBe('msg_same');
  });
});
