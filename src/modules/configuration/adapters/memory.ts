import type { Json } from '../../../protocol/messages';
import type { ConfigurationMeta, ConfigurationStore, OutsideChange } from './store';

/**
 * Values and registrations in this process only (ours: adapter `memory`, what tests and
 * embedded engines use). The fs adapter adds its files on top of it.
 */
export class MemoryConfigurationStore implements ConfigurationStore {
  protected readonly values = new Map<string, Json>();
  private readonly metas = new Map<string, ConfigurationMeta>();

  async open(_onOutsideChange: OutsideChange): Promise<void> {}

  async close(): Promise<void> {}

  async meta(id: string): Promise<ConfigurationMeta | undefined> {
    return this.metas.get(id);
  }

  async putMeta(id: string, meta: ConfigurationMeta): Promise<boolean> {
    const existed = this.metas.has(id);
    this.metas.set(id, meta);
    return existed;
  }

  async value(id: string): Promise<Json | undefined> {
    return this.values.get(id);
  }

  async putValue(id: string, value: Json): Promise<Json | undefined> {
    const old = this.values.get(id);
    this.values.set(id, value);
    await this.persist(id, value);
    return old;
  }

  adopt(id: string, value: Json | undefined): void {
    if (value === undefined) this.values.delete(id);
    else this.values.set(id, value);
  }

  async remove(id: string): Promise<{ meta?: ConfigurationMeta; value?: Json } | undefined> {
    const meta = this.metas.get(id);
    const value = this.values.get(id);
    if (meta === undefined && value === undefined) return undefined;
    this.metas.delete(id);
    this.values.delete(id);
    await this.persist(id, undefined);
    return { ...(meta === undefined ? {} : { meta }), ...(value === undefined ? {} : { value }) };
  }

  async entries(): Promise<Array<{ id: string; meta?: ConfigurationMeta }>> {
    const ids = new Set([...this.values.keys(), ...this.metas.keys()]);
    return [...ids].map((id) => {
      const meta = this.metas.get(id);
      return meta === undefined ? { id } : { id, meta };
    });
  }

  /** Writes one change through (`undefined` = removed); the change is held in memory already. */
  protected async persist(_id: string, _value: Json | undefined): Promise<void> {}
}
