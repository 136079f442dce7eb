import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { abortOnClose } from '../src/http/abort.js';

describe('abortOnClose', () => {
  it('a caller gone before the signal is made (e.g. while the server was resolved) still aborts it; a finished answer does not', async () => {
    const signals: AbortSignal[] = [];
    let gone: () => void;
    const closed = new Promise<void>((r) => (gone = r));
    const server = createServer((req, res) => {
      if (req.url === '/ok') {
        res.end('ok');
        res.once('finish', () => setImmediate(() => signals.push(abortOnClose(req as never, res as never))));
        return;
      }
      res.once('close', () => setImmediate(() => (signals.push(abortOnClose(req as never, res as never)), gone())));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const c = request({ host: '127.0.0.1', port, path: '/late', method: 'POST' });
      c.on('error', () => undefined);
      c.end('{}');
      await new Promise((r) => setTimeout(r, 100));
      c.destroy();
      await closed;
      expect(signals[0]!.aborted).toBe(true);
      const ok = await fetch(`http://127.0.0.1:${port}/ok`);
      expect(await ok.text()).toBe('ok');
      await new Promise((r) => setTimeout(r, 50));
      expect(signals[1]!.aborted).toBe(false);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
