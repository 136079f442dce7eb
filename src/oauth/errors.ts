/**
 * The upstream needs an admin to (re)authorize the broker: listings and calls of the server
 * answer 424 / `http_error` with status 401 and this message.
 */
export class OAuthAuthorizationRequiredError extends Error {
  readonly status = 401;
  readonly code = 'OAUTH_AUTHORIZATION_REQUIRED';
  constructor(label: string) {
    super(`The MCP server '${label}' requires OAuth authorization: an admin must authorize it (POST /admin/servers/${label}/oauth/authorize).`);
    this.name = 'OAuthAuthorizationRequiredError';
  }
}

/** Getting a token failed (discovery, token endpoint, egress): 424 / `http_error` 401. */
export class OAuthTokenError extends Error {
  readonly status = 401;
  readonly code = 'OAUTH_TOKEN_ERROR';
  constructor(label: string, reason: string) {
    super(`OAuth for MCP server '${label}' failed: ${reason}`);
    this.name = 'OAuthTokenError';
  }
}
