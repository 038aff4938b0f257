import { BindingGroups } from '../../engine/binding-groups';
import type { EngineModule, ModuleHost } from '../../engine/module';
import { EngineError, ErrorCode } from '../../protocol/errors';
import { bareId } from '../../registry/namespaces';
import { Input } from '../input';
import { createCronLock } from './adapters/create';
import type { CronLock } from './adapters/lock';
import { readCronJob } from './job-config';
import { CronScheduler } from './scheduler';
import { CRON_CONFIG_SCHEMA, CRON_PAYLOAD_SCHEMA, runCronTick } from './tick';

const MODULE = 'iii-cron';

/**
 * `iii-cron` (iii-modules.md §7): the `cron` trigger type. Each binding fires its function on a
 * 6/7-field UTC schedule with `{trigger:"cron", job_id, scheduled_time, actual_time}` and the
 * binding's metadata; a tick runs only when the adapter's lock is won. The bindings of one group
 * (the replicas of a worker, docs/PROTOCOL.md) are one job whose lock is the group's.
 */
export class CronModule implements EngineModule {
  readonly name = MODULE;
  private scheduler: CronScheduler | undefined;
  private lock: CronLock | undefined;

  constructor(readonly config: Record<string, unknown>) {}

  async start(host: ModuleHost): Promise<void> {
    const logger = host.logger.child({ module: MODULE });
    const lock = await createCronLock(this.config['adapter'], { nodeId: host.nodeId, logger, config: host.config });
    const scheduler = new CronScheduler(lock, (job, scheduledTime) => runCronTick(host, job, scheduledTime), logger);
    this.lock = lock;
    this.scheduler = scheduler;
    await host.registerTriggerType(
      MODULE,
      {
        id: 'cron',
        description:
          'Fires a function on a cron schedule: sec min hour day-of-month month day-of-week [year], UTC, day-of-week 1 = Sunday',
        trigger_request_format: CRON_CONFIG_SCHEMA,
        call_request_format: CRON_PAYLOAD_SCHEMA,
      },
      new BindingGroups({
        registerTrigger: (trigger) => scheduler.add(readCronJob(trigger)),
        unregisterTrigger: (trigger) => scheduler.remove(trigger.id),
      }),
    );

    // ours (the web console): the schedule as this node holds it, and a tick on demand.
    host.registerFunction(
      MODULE,
      {
        id: 'engine::cron::jobs',
        description:
          'Cron jobs this node schedules: expression, next fire time, the last tick this node fired, and the node that fired the last tick (cluster-wide with the redis adapter)',
      },
      async () => ({
        jobs: await Promise.all(
          scheduler.list().map(async ({ job, nextAt, lastFiredAt }) => {
            // The lock knows who claimed the latest tick (Redis in cluster mode, so every node
            // agrees); an unreachable Redis leaves it unknown rather than failing the listing.
            const last = await lock.lastTick(job.lockId).catch(() => undefined);
            return {
              trigger_id: job.trigger.id,
              function_id: job.trigger.function_id,
              expression: job.expression.source,
              next_fire_at: nextAt?.toISOString() ?? null,
              last_fired_here_at: lastFiredAt?.toISOString() ?? null,
              last_fired_node: last?.nodeId ?? null,
              last_fired_at_ms: last?.atMs ?? null,
            };
          }),
        ),
        node_id: host.nodeId,
      }),
    );
    host.registerFunction(
      MODULE,
      {
        id: 'engine::cron::fire',
        description: "Fire a cron binding now, once, on this node (no lock: an operator's request)",
      },
      async (data) => {
        const id = new Input('engine::cron::fire', data).string('trigger_id');
        const trigger = host.registry.trigger(id);
        if (!trigger || bareId(trigger.trigger_type) !== 'cron')
          throw new EngineError(ErrorCode.notFound, `No cron binding '${id}'`);
        const scheduledTime = new Date();
        await runCronTick(host, readCronJob(trigger), scheduledTime);
        return { trigger_id: id, function_id: trigger.function_id, scheduled_time: scheduledTime.toISOString() };
      },
    );
  }

  async stop(): Promise<void> {
    await this.scheduler?.stop();
    await this.lock?.close();
  }
}
