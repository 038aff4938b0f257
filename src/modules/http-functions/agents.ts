import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';

/**
 * Keep-alive pools used only for calls made with guardedLookup. A pooled socket skips the lookup
 * when reused, so it must have been opened through the guard: never share these pools with
 * requests that connect without it (those use Node's global agents).
 */
export const guardedAgents = {
  'http:': new HttpAgent({ keepAlive: true }),
  'https:': new HttpsAgent({ keepAlive: true }),
} as const;
