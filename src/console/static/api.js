// The JSON API, always with `Authorization: Bearer`; never a token in a URL or a cookie.

export class ApiError extends Error {
  constructor(status, body) {
    const e = body && typeof body === 'object' && body.error ? body.error : null;
    super(e && typeof e.message === 'string' ? e.message : `The broker answered HTTP ${status}.`);
    this.status = status;
    this.param = e && typeof e.param === 'string' ? e.param : null;
    this.code = e && typeof e.code === 'string' ? e.code : null;
  }
}

/** A request to the broker. `token` is the bearer token; `body` is sent as JSON. */
export async function api(token, method, path, body) {
  const headers = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
      referrerPolicy: 'no-referrer',
    });
  } catch {
    throw new ApiError(0, { error: { message: 'The broker cannot be reached.' } });
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

export const enc = encodeURIComponent;
