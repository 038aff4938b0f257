import { BindingGroups } from '../../engine/binding-groups';
import type { EngineModule, ModuleHost } from '../../engine/module';
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
        description: 'Fires a function on a cron schedule: sec min hour day-of-month month day-of-week [year], UTC, day-of-week 1 = Sunday',
        trigger_request_format: CRON_CONFIG_SCHEMA,
        call_request_format: CRON_PAYLOAD_SCHEMA,
      },
      new BindingGroups({
        registerTrigger: (trigger) => scheduler.add(readCronJob(trigger)),
        unregisterTrigger: (trigger) => scheduler.remove(trigger.id),
      }),
    );
  }

  async stop(): Promise<void> {
    await this.scheduler?.stop();
    await this.lock?.close();
  }
}
