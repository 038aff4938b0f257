/**
 * Bench child: the Redis floor of a cross-node call, two bare ioredis processes doing what a
 * cross-node call does on the bus and nothing else: one PUBLISH there, one PUBLISH back.
 *   node redis-pingpong.js echo   <redisUrl> <namespace>   answers each message on <ns>:caller
 *   node redis-pingpong.js caller <redisUrl> <namespace>   K closed loops on {type:'run'}
 * The message is `<n>|{"n":..,"pad":..}`, as big as the echo call's payload.
 */
import { Redis } from 'ioredis';
import { serveParent, toParent } from '../lib/child';
import { closedLoops } from '../lib/loops';
import { PAD, type RunRequest, type WorkerReady } from '../invoke/protocol';

const [role, redisUrl, namespace] = process.argv.slice(2) as ['echo' | 'caller', string, string];
const pub = new Redis(redisUrl);
const sub = new Redis(redisUrl);
const inbox = `${namespace}:${role}`;
const peer = `${namespace}:${role === 'echo' ? 'caller' : 'echo'}`;
const waiting = new Map<number, (payload: string) => void>();

sub.on('messageBuffer', (_channel: Buffer, message: Buffer) => {
  if (role === 'echo') {
    void pub.publish(peer, message);
    return;
  }
  const text = message.toString('utf8');
  const n = Number(text.slice(0, text.indexOf('|')));
  waiting.get(n)?.(text);
  waiting.delete(n);
});

function call(n: number): Promise<boolean> {
  const sent = `${n}|${JSON.stringify({ n, pad: PAD })}`;
  return new Promise<boolean>((resolve) => {
    waiting.set(n, (answer) => resolve(answer === sent));
    void pub.publish(peer, sent);
  });
}

serveParent(
  async (message) => {
    if (message.type === 'run') toParent(await closedLoops(message as RunRequest, call));
  },
  async () => {
    sub.disconnect();
    pub.disconnect();
  },
);

sub.subscribe(inbox).then(
  () => toParent({ type: 'ready' } satisfies WorkerReady),
  (err: unknown) => toParent({ type: 'error', message: String(err) }),
);
