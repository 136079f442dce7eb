import type { RequestHandler } from 'express';
import { openApiJson } from '../openapi.js';

/** GET /openapi.json: no auth; the document is built once, on first request. */
export function openapiRoute(): RequestHandler {
  return (_req, res) => {
    res.setHeader('content-type', 'application/json; charset=utf-8');
    res.setHeader('cache-control', 'no-cache');
    res.send(openApiJson());
  };
}
