import type { Json } from '../../protocol/messages';
import type { TriggerEntry } from '../../registry/types';
import { Input } from '../input';
import type { Segment } from './route-trie';

/** The methods an `http` trigger may name (`http_method`, case-insensitive). */
export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

/** One `http` trigger binding, checked and ready for the route table. */
export interface HttpRoute {
  triggerId: string;
  /** The registering connection: a route is removed only by the binding that owns it. */
  ownerWorkerId: string | undefined;
  functionId: string;
  method: HttpMethod;
  /** The registered pattern with its leading `/` (`/users/:id`): the request's `path`. */
  pattern: string;
  segments: Segment[];
  conditionFunctionId: string | undefined;
  middlewareFunctionIds: string[];
  metadata: Json | undefined;
}

/**
 * Reads an `http` binding's config. Throwing refuses the registration: the worker gets a
 * `triggerregistrationresult` carrying the message.
 */
export function parseRoute(trigger: TriggerEntry): HttpRoute {
  const input = new Input(`http trigger ${trigger.id}`, trigger.config ?? {});
  const apiPath = input.optString('api_path');
  if (apiPath === undefined) throw new Error('api_path is required for http triggers');
  const methodText = (input.optString('http_method') ?? 'GET').toUpperCase();
  if (!(HTTP_METHODS as readonly string[]).includes(methodText)) {
    throw new Error(
      `http_method ${JSON.stringify(methodText)} is not supported; use one of ${HTTP_METHODS.join(', ')}`,
    );
  }
  const segments = parsePattern(apiPath);
  return {
    triggerId: trigger.id,
    ownerWorkerId: trigger.ownerWorkerId,
    functionId: trigger.function_id,
    method: methodText as HttpMethod,
    pattern: '/' + stripLeadingSlash(apiPath),
    segments,
    conditionFunctionId: input.optString('condition_function_id'),
    middlewareFunctionIds: input.optStringArray('middleware_function_ids') ?? [],
    metadata: trigger.metadata,
  };
}

/**
 * `/users/:id` -> segments. A leading `/` is optional (`users` and `/users` are one route);
 * `{id}` is read as `:id`.
 */
export function parsePattern(apiPath: string): Segment[] {
  const names = new Set<string>();
  return splitPath(stripLeadingSlash(apiPath)).map((text): Segment => {
    const name = text.startsWith(':')
      ? text.slice(1)
      : text.startsWith('{') && text.endsWith('}')
        ? text.slice(1, -1)
        : undefined;
    if (name === undefined) return { kind: 'static', text };
    if (name === '' || name.includes(':'))
      throw new Error(
        `api_path ${JSON.stringify(apiPath)}: segment ${JSON.stringify(text)} needs a parameter name, as in /users/:id`,
      );
    if (names.has(name))
      throw new Error(`api_path ${JSON.stringify(apiPath)}: parameter ${JSON.stringify(name)} appears twice`);
    names.add(name);
    return { kind: 'param', name };
  });
}

/** The segments of a path without its leading `/`; the root is no segment at all. */
export function splitPath(path: string): string[] {
  return path === '' ? [] : path.split('/');
}

export function stripLeadingSlash(path: string): string {
  return path.startsWith('/') ? path.slice(1) : path;
}
