import { redactUrl } from '../../src/observability/redact-url';

/** One redaction for every URL the engine logs or puts in an error: Redis and RabbitMQ alike. */

const SECRET = 'hunter2-s3cret';

describe('redactUrl', () => {
  test.each([
    [`redis://:${SECRET}@h:6379`, 'redis://:***@h:6379'],
    [`rediss://app:${SECRET}@h:6380/1`, 'rediss://app:***@h:6380/1'],
    [`redis://${SECRET}@h`, 'redis://***@h'],
    [`redis://:pa@ss${SECRET}@h`, 'redis://:***@h'],
    [`redis//:${SECRET}@h`, 'redis//:***@h'],
    ['redis://h:6379', 'redis://h:6379'],
    [`amqp://guest:${SECRET}@localhost:5672/vhost?heartbeat=5`, 'amqp://guest:***@localhost:5672/vhost?heartbeat=5'],
    [`amqps://app:${SECRET}@broker:5671`, 'amqps://app:***@broker:5671'],
    [`amqp://app:pa/ss${SECRET}@broker`, 'amqp://app:***@broker'],
    [`amqp://${SECRET}@broker`, 'amqp://***@broker'],
    [`ampq://app:${SECRET}@broker`, 'ampq://app:***@broker'],
    ['amqp://localhost:5672', 'amqp://localhost:5672'],
  ])('%s -> %s', (url, shown) => {
    expect(redactUrl(url)).toBe(shown);
  });
});
