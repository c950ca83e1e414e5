/** The agent's HTTP routes (DESIGN.md §5): which path names which route, and what its handler is given. */
import type { IncomingMessage } from 'node:http';
import { HttpError, shown } from './http-request.js';

export type Route = { name: 'health' | 'statistics' | 'metrics' | 'containers' | 'container'; allow: readonly string[]; id?: string };
const READ = ['GET', 'HEAD'] as const;

export function routeOf(path: string): Route | undefined {
  switch (path) {
    case '/health':
      return { name: 'health', allow: READ };
    case '/monitor/statistics':
      return { name: 'statistics', allow: READ };
    case '/metrics':
      return { name: 'metrics', allow: READ };
    case '/containers':
      return { name: 'containers', allow: [...READ, 'POST'] };
  }
  const m = /^\/containers\/([^/]+)$/.exec(path);
  if (!m) return undefined;
  let id: string;
  try {
    id = decodeURIComponent(m[1]!);
  } catch {
    throw new HttpError(400, `malformed percent-encoding in the path ${shown(path)}`);
  }
  return { name: 'container', allow: [...READ, 'PATCH', 'DELETE'], id };
}

export type Send = (status: number, body: unknown, type?: string, headers?: Record<string, string>) => void;

/** A request as its route's handler sees it: `id` is the container of /containers/ID. */
export interface RouteRequest {
  req: IncomingMessage;
  method: string;
  read: boolean;
  id: string | undefined;
  send: Send;
}
