import dns from 'node:dns/promises';
import net from 'node:net';
import type { ServerRecord } from '../config/serverRecord.js';
import { expandRefs, MissingEnvVarError } from '../config/expand.js';
import { credentialValueProblem } from '../config/headers.js';
import { InvalidRequestError } from '../errors/index.js';
import { isAddressAllowed } from '../mcp/egress.js';

/**
 * Checks an admin write before it is stored: `${NAME}` references resolve, and the URL is
 * not (and does not resolve to) a private address unless the record allows private networks.
 */
export async function admitRecord(record: ServerRecord, env: NodeJS.ProcessEnv): Promise<void> {
  for (const [name, value] of Object.entries(record.headers)) {
    const problem = credentialValueProblem(name, checkRefs(value, env, `headers.${name}`));
    if (problem) throw new InvalidRequestError('invalid_value', `Invalid value for 'headers.${name}' (after \${NAME} expansion): ${problem}.`, { param: `headers.${name}` });
  }
  if (record.approval.webhook_secret) {
    const secret = checkRefs(record.approval.webhook_secret, env, 'approval.webhook_secret');
    if (!secret.startsWith('whsec_')) {
      throw new InvalidRequestError('invalid_value', 'approval.webhook_secret must be a whsec_ secret.', { param: 'approval.webhook_secret' });
    }
  }
  if (record.approval.webhook_url && !record.approval.webhook_secret) {
    throw new InvalidRequestError('missing_required_parameter', 'approval.webhook_url needs approval.webhook_secret.', {
      param: 'approval.webhook_secret',
    });
  }
  if (record.oauth?.client_secret !== undefined) checkRefs(record.oauth.client_secret, env, 'oauth.client_secret');
  const host = new URL(record.server_url).hostname.replace(/^\[|\]$/g, '');
  const policy = { allowPrivate: record.allow_private_network, allowCidrs: [] };
  let addresses: string[];
  if (net.isIP(host)) addresses = [host];
  else {
    // Unresolvable now is not refused: the connect-time guard checks again on every connection.
    addresses = await dns.lookup(host, { all: true }).then((a) => a.map((x) => x.address), () => []);
  }
  const denied = addresses.find((a) => !isAddressAllowed(a, policy));
  if (denied) {
    throw new InvalidRequestError(
      'egress_denied',
      `server_url resolves to a private or reserved address; set allow_private_network to register it.`,
      { param: 'server_url' },
    );
  }
}

function checkRefs(value: string, env: NodeJS.ProcessEnv, param: string): string {
  try {
    return expandRefs(value, env, param);
  } catch (e) {
    if (e instanceof MissingEnvVarError) {
      throw new InvalidRequestError('invalid_value', `${e.message}.`, { param });
    }
    throw e;
  }
}

