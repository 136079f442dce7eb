import type { CallToolResult, Tool } from '@modelcontextprotocol/client';
import { z } from 'zod';
import { newId } from '../util/ids.js';

export const McpToolInfoSchema = z.object({
  name: z.string(),
  description: z.string().nullable().optional(),
  input_schema: z.unknown(),
  annotations: z.object({ read_only: z.boolean() }).nullable().optional(),
});

export const McpListToolsItemSchema = z.object({
  id: z.string(),
  type: z.literal('mcp_list_tools'),
  server_label: z.string(),
  tools: z.array(McpToolInfoSchema),
  error: z.string().nullable().optional(),
});
export type McpListToolsItem = z.infer<typeof McpListToolsItemSchema>;

export const McpCallErrorSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('mcp_protocol_error'), code: z.number(), message: z.string() }),
  z.object({ type: z.literal('mcp_tool_execution_error'), content: z.array(z.unknown()) }),
  z.object({ type: z.literal('http_error'), code: z.number(), message: z.string() }),
]);
export type McpCallError = z.infer<typeof McpCallErrorSchema>;

export const McpCallItemSchema = z.object({
  id: z.string(),
  type: z.literal('mcp_call'),
  status: z.enum(['in_progress', 'completed', 'failed', 'incomplete', 'calling']).optional(),
  server_label: z.string(),
  name: z.string(),
  arguments: z.string(),
  output: z.string().nullable().optional(),
  error: McpCallErrorSchema.nullable().optional(),
  approval_request_id: z.string().nullable().optional(),
});
export type McpCallItem = z.infer<typeof McpCallItemSchema>;

export const McpApprovalRequestItemSchema = z.object({
  id: z.string(),
  type: z.literal('mcp_approval_request'),
  server_label: z.string(),
  name: z.string(),
  arguments: z.string(),
});
export type McpApprovalRequestItem = z.infer<typeof McpApprovalRequestItemSchema>;

export const isReadOnly = (tool: Pick<Tool, 'annotations'>) => tool.annotations?.readOnlyHint === true;

export function listToolsItem(server_label: string, tools: readonly Tool[], id = newId('mcpl')): McpListToolsItem {
  return {
    id,
    type: 'mcp_list_tools',
    server_label,
    tools: tools.map((t) => ({
      name: t.name,
      description: t.description ?? null,
      input_schema: t.inputSchema,
      annotations: { read_only: isReadOnly(t) },
    })),
  };
}

/**
 * `output` per SPEC §3: text blocks (and embedded text resources) joined by \n, else
 * structuredContent as JSON; other blocks as placeholders, resource links with their name
 * and mime type. Nothing a model could use is dropped silently.
 */
export function outputOf(result: Pick<CallToolResult, 'content' | 'structuredContent'>): string {
  const parts: string[] = [];
  let text = false;
  for (const block of result.content ?? []) {
    switch (block.type) {
      case 'text':
        text = true;
        parts.push(block.text);
        break;
      case 'image':
      case 'audio':
        parts.push(`[${block.type}: ${block.mimeType}]`);
        break;
      case 'resource': {
        const r = block.resource as { uri: string; text?: unknown; mimeType?: string };
        if (typeof r.text === 'string') {
          text = true;
          parts.push(r.text);
        } else parts.push(`[resource: ${r.uri}${r.mimeType ? ` (${r.mimeType})` : ''}]`);
        break;
      }
      case 'resource_link': {
        const extra = [block.name ? `name: ${block.name}` : '', block.mimeType ? `mime type: ${block.mimeType}` : ''].filter(Boolean).join(', ');
        parts.push(`[resource: ${block.uri}${extra ? ` (${extra})` : ''}]`);
        break;
      }
    }
  }
  if (!text && result.structuredContent !== undefined) return JSON.stringify(result.structuredContent);
  return parts.join('\n');
}

export interface CallOutcome {
  output: string | null;
  error: McpCallError | null;
}

export function outcomeOfResult(result: Pick<CallToolResult, 'content' | 'structuredContent' | 'isError'>): CallOutcome {
  if (result.isError) return { output: null, error: { type: 'mcp_tool_execution_error', content: result.content ?? [] } };
  return { output: outputOf(result), error: null };
}

export function callItem(
  fields: { server_label: string; name: string; arguments: string; approval_request_id?: string | null },
  outcome: CallOutcome,
  id = newId('mcp'),
): McpCallItem {
  return {
    id,
    type: 'mcp_call',
    status: outcome.error ? 'failed' : 'completed',
    server_label: fields.server_label,
    name: fields.name,
    arguments: fields.arguments,
    output: outcome.error ? null : outcome.output,
    error: outcome.error,
    approval_request_id: fields.approval_request_id ?? null,
  };
}

export function approvalRequestItem(
  id: string,
  fields: { server_label: string; name: string; arguments: string },
): McpApprovalRequestItem {
  return { id, type: 'mcp_approval_request', server_label: fields.server_label, name: fields.name, arguments: fields.arguments };
}

export const protocolError = (code: number, message: string): CallOutcome => ({
  output: null,
  error: { type: 'mcp_protocol_error', code, message },
});
