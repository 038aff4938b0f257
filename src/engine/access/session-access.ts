import { splitKey } from '../../registry/namespaces';
import type { WorkerListenerConfig } from '../../config/types';
import type { Json } from '../../protocol/messages';
import { PERMISSIVE, type AuthResult } from './auth-result';
import { anyFilterMatches, type FilterTarget } from './function-filter';

/**
 * Functions every authenticated connection may call whatever its lists say (unless explicitly
 * forbidden): the SDK calls them on its own (iii-modules.md §4.3).
 */
export const INFRASTRUCTURE_FUNCTIONS: ReadonlySet<string> = new Set([
  'engine::channels::create',
  'engine::workers::register',
  'engine::log::info',
  'engine::log::warn',
  'engine::log::error',
  'engine::log::debug',
  'engine::log::trace',
  'engine::baggage::get',
  'engine::baggage::set',
  'engine::baggage::get_all',
]);

export type RegistrationHook = 'function' | 'trigger' | 'triggerType';

/**
 * What one worker connection may do: the listener's RBAC configuration combined with what its
 * auth function answered (iii-protocol.md §3.7). A connection on a port without `rbac` may do
 * everything.
 */
export class SessionAccess {
  constructor(
    readonly listener: WorkerListenerConfig,
    readonly auth: AuthResult,
  ) {}

  static permissive(listener: WorkerListenerConfig): SessionAccess {
    return new SessionAccess(listener, PERMISSIVE);
  }

  get context(): Json {
    return this.auth.context;
  }

  /** The function every non-`engine::` call from this connection is diverted to, if any. */
  get middlewareFunctionId(): string | undefined {
    return this.listener.middlewareFunctionId;
  }

  /** How long an auth function or a registration hook may take, in milliseconds. */
  get hookTimeoutMs(): number {
    return this.listener.handshakeTimeoutMs;
  }

  hookId(hook: RegistrationHook): string | undefined {
    const rbac = this.listener.rbac;
    if (!rbac) return undefined;
    if (hook === 'function') return rbac.on_function_registration_function_id;
    if (hook === 'trigger') return rbac.on_trigger_registration_function_id;
    return rbac.on_trigger_type_registration_function_id;
  }

  /**
   * Why this connection may not call `functionId` (the FORBIDDEN message, as the original words
   * it), or undefined when it may. Order: explicitly forbidden, explicitly allowed,
   * infrastructure, no `rbac` block, then the `expose_functions` filters. `target` looks the
   * function's registration up (for metadata filters) only when needed.
   */
  invokeDenial(functionId: string, target: () => FilterTarget | undefined): string | undefined {
    if (this.auth.forbiddenFunctions.includes(functionId)) {
      return `function '${functionId}' not allowed (remove from rbac.forbidden_functions)`;
    }
    if (this.auth.allowedFunctions.includes(functionId) || INFRASTRUCTURE_FUNCTIONS.has(functionId)) return undefined;
    const rbac = this.listener.rbac;
    if (!rbac) return undefined;
    if (anyFilterMatches(rbac.expose_functions, target() ?? { id: functionId })) return undefined;
    return `function '${functionId}' not allowed (add to rbac.expose_functions)`;
  }

  /** Whether `engine::functions::list/info` show this function to this connection. */
  sees(fn: FilterTarget): boolean {
    // Registry entries carry namespaced keys; the filters see the bare id and its namespace.
    const { namespace, id } = splitKey(fn.id);
    return this.invokeDenial(id, () => ({ ...fn, id, namespace })) === undefined;
  }

  /** Infrastructure ids the auth function forbade (worth a warning: the SDK needs them). */
  forbiddenInfrastructure(): string[] {
    return this.auth.forbiddenFunctions.filter((id) => INFRASTRUCTURE_FUNCTIONS.has(id));
  }

  /** The id a function this connection registers is stored under: `<prefix>::<id>`. */
  prefixed(id: string): string {
    const prefix = this.auth.functionRegistrationPrefix;
    return prefix === undefined ? id : `${prefix}::${id}`;
  }

  /** The id this connection knows a stored function by (the prefix taken off again). */
  unprefixed(id: string): string {
    const prefix = this.auth.functionRegistrationPrefix;
    if (prefix === undefined || !id.startsWith(`${prefix}::`)) return id;
    return id.slice(prefix.length + 2);
  }

  /** Why this connection may not register functions, or undefined. */
  functionRegistrationDenial(): string | undefined {
    return this.auth.allowFunctionRegistration
      ? undefined
      : 'this session may not register functions (allow_function_registration is false)';
  }

  /** Why this connection may not register trigger types, or undefined. */
  triggerTypeRegistrationDenial(): string | undefined {
    return this.auth.allowTriggerTypeRegistration
      ? undefined
      : 'this session may not register trigger types (allow_trigger_type_registration is false)';
  }

  /** Why this connection may not bind a trigger of `triggerType`, or undefined. */
  triggerDenial(triggerType: string): string | undefined {
    const allowed = this.auth.allowedTriggerTypes;
    if (allowed === undefined || allowed.includes(triggerType)) return undefined;
    return `trigger type '${triggerType}' is not in this session's allowed_trigger_types`;
  }
}
