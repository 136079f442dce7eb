import { InvalidRequestError } from '../errors/index.js';

/**
 * Checks a caller-supplied server_url before any I/O (security.md A.1): `new URL()` only,
 * https (unless widened), no userinfo, no fragment, at most 2048 characters.
 */
export function checkCallerUrl(raw: string, allowHttp: boolean, param: string): URL {
  const deny = (why: string) =>
    new InvalidRequestError('egress_denied', `server_url is not allowed: ${why}.`, { param });
  if (raw.length > 2048) throw deny('longer than 2048 characters');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InvalidRequestError('invalid_value', 'server_url is not a valid URL.', { param });
  }
  if (url.protocol !== 'https:' && !(allowHttp && url.protocol === 'http:')) {
    throw deny(allowHttp ? 'only http: and https: are allowed' : 'only https: is allowed');
  }
  if (url.username || url.password) throw deny('credentials in the URL are not allowed');
  if (raw.includes('#')) throw deny('fragments are not allowed');
  return url;
}
