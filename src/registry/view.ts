import type { ServerRecord } from '../config/serverRecord.js';

import { REDACTED } from '../util/scrub.js';

/** The admin view of a record: full URL, every header value and secret redacted. */
export function toView(record: ServerRecord) {
  const headers = Object.fromEntries(Object.keys(record.headers).map((k) => [k, REDACTED]));
  const approval = { ...record.approval };
  if (approval.webhook_secret !== undefined) approval.webhook_secret = REDACTED;
  const oauth = record.oauth && { ...record.oauth, ...(record.oauth.client_secret !== undefined ? { client_secret: REDACTED } : {}) };
  return { ...record, headers, approval, ...(oauth ? { oauth } : {}) };
}
