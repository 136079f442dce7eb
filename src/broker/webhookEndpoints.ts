import type { Logger } from 'pino';
import type { EndpointRef } from '../approvals/queue.js';
import type { WebhookEndpoint } from '../approvals/webhooks.js';
import { expandRefs } from '../config/expand.js';
import type { RegistryStore } from '../registry/store.js';

/**
 * Where a webhook event goes, worked out at each attempt (so a queued event holds no
 * secret and follows admin changes): the record's own webhook, else the operator's default.
 */
export function webhookEndpoints(d: { registry: RegistryStore; env: NodeJS.ProcessEnv; defaultWebhook: WebhookEndpoint | undefined; logger: Logger }) {
  return async (ref: EndpointRef): Promise<WebhookEndpoint | undefined> => {
    const record = ref.kind === 'record' ? await d.registry.get(ref.label) : undefined;
    const approval = record?.approval;
    if (record && approval?.webhook_url && approval.webhook_secret) {
      try {
        return { url: approval.webhook_url, secret: expandRefs(approval.webhook_secret, d.env, `approval.webhook_secret of server '${record.server_label}'`) };
      } catch (e) {
        d.logger.error({ server_label: record.server_label, err: (e as Error).message }, 'approval webhook not sent');
        return undefined;
      }
    }
    return d.defaultWebhook;
  };
}
