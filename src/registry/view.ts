import type { ServerRecord } from '../config/serverRecord.js';
import { InvalidRequestError } from '../errors/index.js';
import { REDACTED } from '../util/scrub.js';

/** The admin view of a record: full URL, every header value and secret redacted. */
export function toView(record: ServerRecord) {
  const headers = Object.fromEntries(Object.keys(record.headers).map((k) => [k, REDACTED]));
  const approval = { ...record.approval };
  if (approval.webhook_secret !== undefined) approval.webhook_secret = REDACTED;
  const oauth = record.oauth && { ...record.oauth, ...(record.oauth.client_secret !== undefined ? { client_secret: REDACTED } : {}) };
  return { ...record, headers, approval, ...(oauth ? { oauth } : {}) };
}

/**
 * PUT with what a view showed (SPEC §2, console edits): a header value, `approval.webhook_secret`
 * or `oauth.client_secret` that is exactly `"<redacted>"` keeps the stored value. A stored
 * credential is kept only for the same origin: pointing a record elsewhere needs the values
 * typed again (a kept secret would otherwise go to a server the admin never gave it). With no
 * stored record (POST) a `"<redacted>"` value is refused: it is a copied view, not a secret.
 */
export function keepRedacted(next: ServerRecord, stored: ServerRecord | undefined): ServerRecord {
  const sameOrigin = stored !== undefined && new URL(next.server_url).origin === new URL(stored.server_url).origin;
  const kept = (param: string, value: string | undefined): string => {
    if (value === undefined) {
      throw new InvalidRequestError('invalid_value', `'${param}' is "${REDACTED}" but the record has no stored value for it; type the value.`, { param });
    }
    if (!sameOrigin) {
      throw new InvalidRequestError('invalid_value', `'${param}' is "${REDACTED}", but server_url now has another origin: type the value again to send it there.`, { param });
    }
    return value;
  };
  let out = next;
  if (Object.values(next.headers).includes(REDACTED)) {
    const byName = new Map(Object.entries(stored?.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    const headers = Object.fromEntries(
      Object.entries(next.headers).map(([k, v]) => [k, v === REDACTED ? kept(`headers.${k}`, byName.get(k.toLowerCase())) : v]),
    );
    out = { ...out, headers };
  }
  if (next.approval.webhook_secret === REDACTED) {
    // Signatures are not the secret: the webhook secret is kept whatever the origin.
    const secret = stored?.approval.webhook_secret;
    if (secret === undefined) kept('approval.webhook_secret', undefined);
    out = { ...out, approval: { ...out.approval, webhook_secret: secret } };
  }
  if (next.oauth?.client_secret === REDACTED) {
    const secret = kept('oauth.client_secret', stored?.oauth?.client_secret);
    out = { ...out, oauth: { ...next.oauth, client_secret: secret } };
  }
  return out;
}
