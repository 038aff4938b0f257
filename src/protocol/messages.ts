/**
 * The iii v0.22 wire messages, as the official SDKs send and expect them
 * (see docs/PROTOCOL.md and ../shared/reference/iii-protocol.md §2).
 * One JSON object per WebSocket message, discriminated by `type`.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface ErrorBody {
  code: string;
  message: string;
  stacktrace?: string;
}

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export type HttpAuth =
  | { type: 'bearer'; token_key: string }
  | { type: 'hmac'; secret_key: string }
  | { type: 'api_key'; header: string; value_key: string };

/** `registerfunction.invocation`: a function the engine executes by calling a URL. */
export interface HttpInvocation {
  url: string;
  method: HttpMethod;
  timeout_ms?: number;
  headers?: Record<string, string>;
  auth?: HttpAuth;
}

export type InvokeAction = { type: 'void' } | { type: 'enqueue'; queue: string };

export interface RegisterFunction {
  type: 'registerfunction';
  id: string;
  description?: string;
  request_format?: Json;
  response_format?: Json;
  metadata?: Json;
  invocation?: HttpInvocation;
}

export interface UnregisterFunction {
  type: 'unregisterfunction';
  id: string;
}

export interface InvokeFunction {
  type: 'invokefunction';
  invocation_id?: string;
  function_id: string;
  data: Json;
  traceparent?: string;
  baggage?: string;
  action?: InvokeAction;
  metadata?: Json;
  /** iii v0.23: the namespace the call resolves in (absent: `default`). */
  namespace?: string;
}

export interface InvocationResult {
  type: 'invocationresult';
  invocation_id: string;
  function_id: string;
  result?: Json;
  error?: ErrorBody;
  traceparent?: string;
  baggage?: string;
}

export interface RegisterTriggerType {
  type: 'registertriggertype';
  id: string;
  description: string;
  trigger_request_format?: Json;
  call_request_format?: Json;
  /** iii v0.23: the namespace the type serves (absent: the worker's). */
  namespace?: string;
}

export interface UnregisterTriggerType {
  type: 'unregistertriggertype';
  id: string;
  namespace?: string;
}

export interface RegisterTrigger {
  type: 'registertrigger';
  id: string;
  trigger_type: string;
  function_id: string;
  config: Json;
  metadata?: Json;
  /** iii v0.23: the namespace of `function_id` (absent: the worker's). */
  namespace?: string;
  /** iii v0.23: where the trigger type's provider is (absent: the worker's namespace, then `default`). */
  trigger_namespace?: string;
}

export interface UnregisterTrigger {
  type: 'unregistertrigger';
  id: string;
  trigger_type?: string;
}

export interface TriggerRegistrationResult {
  type: 'triggerregistrationresult';
  id: string;
  trigger_type: string;
  function_id: string;
  error?: ErrorBody;
}

export interface WorkerRegistered {
  type: 'workerregistered';
  worker_id: string;
  reattach_token: string;
}

export interface Reattach {
  type: 'reattach';
  previous_worker_id: string;
  reattach_token?: string;
}

export interface RegisterService {
  type: 'registerservice';
  id: string;
  name?: string;
  description?: string;
  parent_service_id?: string;
}

export interface Ping {
  type: 'ping';
}

export interface Pong {
  type: 'pong';
}

/**
 * iii v0.23: a registration refused for a namespace conflict. `FUNCTION_NAMESPACE_CONFLICT`
 * refuses one function and keeps the connection; `WORKER_NAMESPACE_CONFLICT` is followed by the
 * close of the connection (the SDKs then stop reconnecting).
 */
export interface RegistrationRejected {
  type: 'registrationrejected';
  code: 'FUNCTION_NAMESPACE_CONFLICT' | 'WORKER_NAMESPACE_CONFLICT';
  namespace: string;
  function_id?: string;
  worker_name?: string;
  owner_worker_id?: string;
  message: string;
}

export interface ConnectionError {
  type: 'error';
  error: ErrorBody;
}

/** Everything a worker may send the engine. */
export type InboundMessage =
  | RegisterFunction
  | UnregisterFunction
  | InvokeFunction
  | InvocationResult
  | RegisterTriggerType
  | UnregisterTriggerType
  | RegisterTrigger
  | UnregisterTrigger
  | TriggerRegistrationResult
  | WorkerRegistered
  | Reattach
  | RegisterService
  | Ping
  | Pong;

/** Everything the engine may send a worker. */
export type OutboundMessage =
  | InvokeFunction
  | InvocationResult
  | RegisterTrigger
  | UnregisterTrigger
  | TriggerRegistrationResult
  | WorkerRegistered
  | Pong
  | RegistrationRejected
  | ConnectionError;

/** A reference to one end of a data channel, as it travels inside payloads. */
export interface ChannelRef {
  channel_id: string;
  access_key: string;
  direction: 'read' | 'write';
}
