import type { Json } from '../../protocol/messages';
import { Input } from '../input';
import { parseUpdateOps } from '../state/update-ops';
import type { ModuleHost } from '../../engine/module';
import type { ItemRef, StreamService } from './stream-service';

/** The `stream::*` functions (iii-modules.md §9.2): input checks here, the work in StreamService. */
export function registerStreamFunctions(host: ModuleHost, moduleName: string, service: StreamService): void {
  const fn = (id: string, description: string, handler: (input: Input, data: Json) => Promise<Json>) =>
    host.registerFunction(moduleName, { id, description }, (data) => handler(new Input(id, data), data));

  fn('stream::set', 'Store an item in a stream group; emits create or update', (input, data) =>
    service.set(itemRef(input), required(input, data, 'data'), data),
  );
  fn('stream::get', 'Read an item, or null', (input, data) => service.get(itemRef(input), data));
  fn('stream::delete', 'Delete an item; returns {old_value}', (input, data) => service.delete(itemRef(input), data));
  fn('stream::update', 'Apply update ops to an item atomically; emits create or update', (input, data) => {
    const ops = required(input, data, 'ops');
    // Malformed ops are an input error (deserialization_error), not a failed update.
    parseUpdateOps(ops);
    return service.update(itemRef(input), ops, data);
  });
  fn('stream::list', 'The item values of a group (a bare array)', (input, data) =>
    service.list(input.string('stream_name'), input.string('group_id'), data),
  );
  fn('stream::list_groups', 'The group ids of a stream (a bare array)', (input, data) =>
    service.listGroups(input.string('stream_name'), data),
  );
  fn('stream::list_all', 'Every stream with its groups', () => service.listAll());
  fn('stream::send', "Broadcast an event to a group's subscribers without storing it", (input, data) =>
    service.send(
      input.string('stream_name'),
      input.string('group_id'),
      input.optString('id') ?? null,
      { type: input.string('type'), data: fieldOf(data, 'data') ?? null },
      data,
    ),
  );
}

function itemRef(input: Input): ItemRef {
  return {
    streamName: input.string('stream_name'),
    groupId: input.string('group_id'),
    itemId: input.string('item_id'),
  };
}

/** A field that must be present but may be any JSON, null included (Input reads null as absent). */
function required(input: Input, data: Json, key: string): Json {
  const value = fieldOf(data, key);
  if (value === undefined) throw input.fail(`missing field \`${key}\``);
  return value;
}

function fieldOf(data: Json, key: string): Json | undefined {
  return typeof data === 'object' && data !== null && !Array.isArray(data) ? data[key] : undefined;
}
