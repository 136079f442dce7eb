import { Router, type Response } from 'express';
import type { Logger } from 'pino';
import { InvalidRequestError } from '../../errors/index.js';
import { mintKey, newKeyRecord, replacedSettings, rotated } from '../../keys/keys.js';
import { KeyBodySchema, keyView, RotateBodySchema } from '../../keys/schema.js';
import { unknownKey, type KeyStore } from '../../keys/store.js';
import { parseInput } from '../validate.js';

/** A key is shown once: never cached by anything in between. */
const shownOnce = (res: Response) => res.setHeader('cache-control', 'no-store');

/** SPEC §11: named API keys, managed by admins (mounted under /admin). */
export function keyRoutes(keys: KeyStore, logger?: Logger): Router {
  const r = Router();
  // An audit line per change: the name only, never the key or its hash.
  const audit = (action: string, name: string, extra: Record<string, unknown> = {}) => logger?.info({ key_name: name, ...extra }, `api key ${action}`);

  const keyOr404 = async (name: string) => {
    const rec = await keys.get(name);
    if (!rec) throw unknownKey(name);
    return rec;
  };

  r.get('/keys', async (_req, res) => {
    const all = (await keys.list()).sort((a, b) => (a.name.toLowerCase() < b.name.toLowerCase() ? -1 : 1));
    res.json({ object: 'list', data: all.map(keyView) });
  });

  r.post('/keys', async (req, res) => {
    const body = parseInput(KeyBodySchema, req.body);
    const minted = mintKey();
    const rec = await keys.create(newKeyRecord(body, minted.sha256));
    audit('created', rec.name);
    shownOnce(res);
    res.status(201).json({ ...keyView(rec), key: minted.key });
  });

  r.get('/keys/:name', async (req, res) => {
    res.json(keyView(await keyOr404(req.params.name)));
  });

  r.put('/keys/:name', async (req, res) => {
    const name = req.params.name;
    const raw: unknown = req.body;
    const withName = raw && typeof raw === 'object' && !Array.isArray(raw) ? { name, ...(raw as Record<string, unknown>) } : raw;
    const bodyName = (withName as { name?: unknown } | null | undefined)?.name;
    if (typeof bodyName === 'string' && bodyName.toLowerCase() !== name.toLowerCase()) {
      throw new InvalidRequestError('invalid_value', 'name in the body differs from the one in the path.', { param: 'name' });
    }
    const body = parseInput(KeyBodySchema, withName);
    const rec = await keys.update(name, (cur) => replacedSettings(cur, body));
    audit('updated', rec.name);
    res.json(keyView(rec));
  });

  r.delete('/keys/:name', async (req, res) => {
    const gone = await keys.delete(req.params.name);
    if (!gone) throw unknownKey(req.params.name);
    audit('deleted', gone.name);
    res.json({ name: gone.name, deleted: true });
  });

  r.post('/keys/:name/rotate', async (req, res) => {
    const empty = req.body === undefined || (typeof req.body === 'object' && req.body !== null && !Array.isArray(req.body) && Object.keys(req.body).length === 0);
    const { grace_s } = empty ? { grace_s: 0 } : parseInput(RotateBodySchema, req.body);
    const minted = mintKey();
    const rec = await keys.update(req.params.name, (cur) => rotated(cur, minted.sha256, grace_s));
    audit('rotated', rec.name, { grace_s });
    shownOnce(res);
    res.json({ ...keyView(rec), key: minted.key });
  });

  return r;
}
