// Bench child: an instant OpenAI-compatible upstream. After a user message it calls `add`;
// after a tool result it answers with text.
import { startFakeModel } from '../../test/fixtures/fakeModel.js';

void (async () => {
  const model = await startFakeModel();
  model.fallback = (req) => {
    const msgs = req.body.messages as Array<{ role: string }> | undefined;
    const last = msgs?.[msgs.length - 1];
    return last?.role === 'tool' ? { text: 'The sum is 3.' } : { calls: [{ name: 'add', arguments: { a: 1, b: 2 } }] };
  };
  // Keep memory flat over long runs.
  setInterval(() => model.requests.splice(0), 1000).unref();
  process.send!({ url: model.url });
})();
