import { Router } from 'express';
import { ServerRecordSchema } from '../../config/serverRecord.js';
import { InvalidRequestError } from '../../errors/index.js';
import type { Broker } from '../../broker/broker.js';
import { admitRecord } from '../../registry/admission.js';
import { unknownLabel } from '../../registry/fileStore.js';
import { keepRedacted, toView } from '../../registry/view.js';
import { registeredServerKey } from '../../registry/store.js';
import { parseInput } from '../validate.js';
import { UNRESTRICTED } from '../../keys/caller.js';
import type { OAuthManager } from '../../oauth/manager.js';
import { serverUrlKey } from '../../mcp/limits.js';

/** SPEC §2 admin API: registry records, their status, and refresh (re-pin). */
export function adminRoutes(broker: Broker, oauth?: OAuthManager): Router {
  const { registry, catalog, upstreams, settings } = broker.d;
  const r = Router();

  const recordOr404 = async (label: string) => {
    const rec = await registry.get(label);
    if (!rec) throw unknownLabel(label, null);
    return rec;
  };

  r.get('/servers', async (_req, res) => {
    res.json({ object: 'list', data: (await registry.list()).map(toView) });
  });

  r.post('/servers', async (req, res) => {
    const record = keepRedacted(parseInput(ServerRecordSchema, req.body), undefined);
    await admitRecord(record, settings.env);
    oauth?.admit(record);
    res.status(201).json(toView(await registry.create(record)));
  });

  r.get('/servers/:label', async (req, res) => {
    const record = await recordOr404(req.params.label);
    const server = await broker.resolve({ type: 'mcp', server_label: record.server_label }, 'tool', UNRESTRICTED).catch(() => undefined);
    const transport = server ? (upstreams.pool.peek(server.sessionKey)?.transportInUse ?? null) : null;
    const status = catalog.serverStatus(server ?? { serverKey: registeredServerKey(record.server_label), sessionKey: '' }, transport);
    const breaker = upstreams.limits.breakerState(serverUrlKey(new URL(record.server_url)));
    const oauthStatus = record.oauth && oauth ? { oauth: await oauth.status(record) } : {};
    res.json({ ...toView(record), status: { ...status, breaker, ...oauthStatus } });
  });

  r.put('/servers/:label', async (req, res) => {
    const body = req.body && typeof req.body === 'object' && !Array.isArray(req.body) ? req.body : {};
    const label = req.params.label;
    const withLabel = { server_label: label, ...body };
    if (typeof withLabel.server_label === 'string' && withLabel.server_label.toLowerCase() !== label.toLowerCase()) {
      throw new InvalidRequestError('invalid_value', 'server_label in the body differs from the one in the path.', { param: 'server_label' });
    }
    const record = keepRedacted(parseInput(ServerRecordSchema, withLabel), await recordOr404(label));
    await admitRecord(record, settings.env);
    oauth?.admit(record);
    res.json(toView(await registry.replace(label, record)));
  });

  r.delete('/servers/:label', async (req, res) => {
    const record = await recordOr404(req.params.label);
    await registry.delete(record.server_label);
    res.json({ server_label: record.server_label, deleted: true });
  });

  r.post('/servers/:label/refresh', async (req, res) => {
    const record = await recordOr404(req.params.label);
    const server = await broker.resolve({ type: 'mcp', server_label: record.server_label }, 'tool', UNRESTRICTED);
    res.json(await broker.refresh(server));
  });

  return r;
}
