import type { IncomingMessage } from 'node:http';
import type { WorkerListenerConfig } from '../../src/config/types';
import { rawQuery } from '../../src/engine/access/auth-input';
import { AuthResultError, parseAuthResult } from '../../src/engine/access/auth-result';
import { sdkChannelUrl } from '../../src/transport/sdk-channel-url';
import { sameSecret } from '../../src/transport/secret';
import { SessionAccess } from '../../src/engine/access/session-access';
import { checkUpgrade, isLoopbackAddress, openListenerWarning } from '../../src/engine/access/upgrade-gate';

const listener: WorkerListenerConfig = {
  instanceId: 'iii-worker-manager',
  host: '127.0.0.1',
  port: 0,
  handshakeTimeoutMs: 1000,
  protectedMode: true,
};

describe('the auth function result', () => {
  it('takes the original defaults for absent and null fields', () => {
    expect(parseAuthResult({ allowed_functions: null })).toEqual({
      allowedFunctions: [],
      forbiddenFunctions: [],
      allowTriggerTypeRegistration: false,
      allowFunctionRegistration: true,
      context: {},
    });
  });

  it('reads every field', () => {
    const result = parseAuthResult({
      allowed_functions: ['a'],
      forbidden_functions: ['b'],
      allowed_trigger_types: ['cron'],
      allow_trigger_type_registration: true,
      allow_function_registration: false,
      context: { user: 'u1' },
      function_registration_prefix: 'tenant',
      unknown: 1,
    });
    expect(result).toEqual({
      allowedFunctions: ['a'],
      forbiddenFunctions: ['b'],
      allowedTriggerTypes: ['cron'],
      allowTriggerTypeRegistration: true,
      allowFunctionRegistration: false,
      context: { user: 'u1' },
      functionRegistrationPrefix: 'tenant',
    });
  });

  it('ignores an iii v0.23 namespaces: {ns: [grants]} field (namespaces are not implemented)', () => {
    const result = parseAuthResult({
      allowed_functions: ['a'],
      namespaces: { billing: ['billing::*'], default: ['*'] },
    });
    expect(result).toEqual(parseAuthResult({ allowed_functions: ['a'] }));
  });

  it('is an error when missing or of the wrong shape, naming the field', () => {
    expect(() => parseAuthResult(undefined)).toThrow(new AuthResultError('auth function returned no result'));
    expect(() => parseAuthResult(null)).toThrow('auth function returned no result');
    expect(() => parseAuthResult([1])).toThrow('auth function result: expected an object, got a list');
    expect(() => parseAuthResult({ allowed_functions: 'a' })).toThrow(
      'allowed_functions: expected a list of strings, got "a"',
    );
    expect(() => parseAuthResult({ allow_function_registration: 'yes' })).toThrow(
      'allow_function_registration: expected true or false',
    );
    expect(() => parseAuthResult({ function_registration_prefix: 3 })).toThrow(
      'function_registration_prefix: expected a string, got 3',
    );
  });
});

describe('the session of a connection', () => {
  const rbac = { ...listener, rbac: { expose_functions: ['match("public::*")'] } };

  it('decides a call in the original order: forbidden, allowed, infrastructure, filters', () => {
    const access = new SessionAccess(
      rbac,
      parseAuthResult({
        allowed_functions: ['secret::a', 'public::x'],
        forbidden_functions: ['public::x', 'engine::log::info'],
      }),
    );
    const none = () => undefined;
    expect(access.invokeDenial('public::x', none)).toBe(
      "function 'public::x' not allowed (remove from rbac.forbidden_functions)",
    );
    expect(access.invokeDenial('engine::log::info', none)).toMatch(/remove from rbac.forbidden_functions/);
    expect(access.invokeDenial('secret::a', none)).toBeUndefined();
    expect(access.invokeDenial('engine::channels::create', none)).toBeUndefined();
    expect(access.invokeDenial('public::y', none)).toBeUndefined();
    expect(access.invokeDenial('secret::b', none)).toBe(
      "function 'secret::b' not allowed (add to rbac.expose_functions)",
    );
    expect(access.forbiddenInfrastructure()).toEqual(['engine::log::info']);
  });

  it('allows every call on a port without rbac', () => {
    expect(SessionAccess.permissive(listener).invokeDenial('anything', () => undefined)).toBeUndefined();
  });

  it('prefixes registered ids and takes the prefix off again', () => {
    const access = new SessionAccess(rbac, parseAuthResult({ function_registration_prefix: 'p' }));
    expect(access.prefixed('fn')).toBe('p::fn');
    expect(access.unprefixed('p::fn')).toBe('fn');
    expect(access.unprefixed('q::fn')).toBe('q::fn');
    expect(SessionAccess.permissive(listener).prefixed('fn')).toBe('fn');
  });
});

describe('the upgrade gate', () => {
  const request = (remoteAddress: string, headers: Record<string, string> = {}, url = '/') =>
    ({ socket: { remoteAddress }, headers, url }) as unknown as IncomingMessage;
  const open = { ...listener, host: '0.0.0.0' };

  it('lets loopback peers into an unauthenticated non-loopback listener and refuses others (protected mode)', () => {
    expect(checkUpgrade(open, request('127.0.0.1'))).toBeUndefined();
    expect(checkUpgrade(open, request('::ffff:127.0.0.1'))).toBeUndefined();
    expect(checkUpgrade(open, request('::1'))).toBeUndefined();
    expect(checkUpgrade(open, request('203.0.113.5'))).toMatchObject({ status: 403, code: 'FORBIDDEN' });
    expect(checkUpgrade({ ...open, protectedMode: false }, request('203.0.113.5'))).toBeUndefined();
    expect(
      checkUpgrade({ ...open, rbac: { auth_function_id: 'auth', expose_functions: [] } }, request('203.0.113.5')),
    ).toBeUndefined();
    expect(checkUpgrade(listener, request('203.0.113.5'))).toBeUndefined();
  });

  it('asks everyone, loopback included, for the token when one is set', () => {
    const withToken = { ...open, authToken: 's3cret' };
    expect(checkUpgrade(withToken, request('127.0.0.1'))).toMatchObject({
      status: 401,
      code: 'UNAUTHORIZED',
      headers: { 'WWW-Authenticate': 'Bearer' },
    });
    expect(checkUpgrade(withToken, request('203.0.113.5', { authorization: 'Bearer s3cret' }))).toBeUndefined();
    expect(checkUpgrade(withToken, request('203.0.113.5', { authorization: 'bearer  s3cret ' }))).toBeUndefined();
    expect(checkUpgrade(withToken, request('203.0.113.5', {}, '/?a=1&token=s3cret'))).toBeUndefined();
    expect(checkUpgrade(withToken, request('203.0.113.5', {}, '/?token=s3cre'))).toMatchObject({ status: 401 });
    expect(checkUpgrade(withToken, request('203.0.113.5', { authorization: 'Basic s3cret' }))).toMatchObject({
      status: 401,
    });
  });

  it('warns about listeners reachable from other hosts without authentication', () => {
    expect(openListenerWarning(listener)).toBeUndefined();
    expect(openListenerWarning({ ...open, authToken: 't' })).toBeUndefined();
    expect(openListenerWarning(open)).toMatch(/protected mode accepts loopback peers only/);
    expect(openListenerWarning({ ...open, protectedMode: false })).toMatch(/anyone who can reach the port/);
  });

  it('knows loopback addresses', () => {
    expect(['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1'].every(isLoopbackAddress)).toBe(true);
    expect(['10.0.0.1', '0.0.0.0', '::', '::ffff:10.0.0.1', '1270::1', 'localhost'].some(isLoopbackAddress)).toBe(
      false,
    );
  });
});

describe('small pieces', () => {
  it('splits a query on & and = without decoding it', () => {
    expect(rawQuery('/?a=1&a=2&b&c=x%20y&&d=e=f')).toEqual({ a: ['1', '2'], b: [''], c: ['x%20y'], d: ['e=f'] });
    expect(rawQuery('/')).toEqual({});
    expect(Object.getPrototypeOf(rawQuery('/?__proto__=1'))).toBeNull();
  });

  it('finds the channel path iii-sdk puts inside the query of a URL with ?token=', () => {
    expect(sdkChannelUrl('/?token=abc/ws/channels/c1?key=k&dir=read')).toBe('/ws/channels/c1?key=k&dir=read');
    expect(sdkChannelUrl('/?token=abc')).toBeUndefined();
    expect(sdkChannelUrl('/otel?token=abc/ws/channels/c1')).toBeUndefined();
    expect(sdkChannelUrl('/ws/channels/c1?key=k&dir=read')).toBeUndefined();
  });

  it('compares secrets', () => {
    expect(sameSecret('abc', 'abc')).toBe(true);
    expect(sameSecret('abc', 'abd')).toBe(false);
    expect(sameSecret('abc', 'abcd')).toBe(false);
    expect(sameSecret('', 'a')).toBe(false);
  });
});
