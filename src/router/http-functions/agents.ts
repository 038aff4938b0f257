import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';

/**
 * Keep-alive pools used only for calls made with the guarded lookup. A pooled socket skips the
 * lookup when reused, so it must have been opened through the guard: never share these pools
 * with requests that connect without it (those use Node's global agents).
 *
 * Reuse is safe against DNS rebinding: a socket's peer address is fixed when it connects, and
 * that address passed the guard. When the name later resolves to a blocked address, a reused
 * socket still talks to the address that was judged, and every new socket is judged again.
 */
export const guardedAgents = {
  'http:': new HttpAgent({ keepAlive: true }),
  'https:': new HttpsAgent({ keepAlive: true }),
} as const;
