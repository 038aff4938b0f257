import { ROOT_CONTEXT, defaultTextMapGetter, defaultTextMapSetter, propagation } from '@opentelemetry/api';
import { W3CBaggagePropagator } from '@opentelemetry/core';

/**
 * The W3C `baggage` of the current invocation: the header the caller sent with its call.
 * Parsing and serializing follow W3C Baggage through OTel's propagator, which keeps at most 180
 * entries and 8192 bytes and drops malformed entries.
 */
const propagator = new W3CBaggagePropagator();

export function parseBaggage(header: string | undefined): Map<string, string> {
  const entries = new Map<string, string>();
  if (header === undefined || header === '') return entries;
  const context = propagator.extract(ROOT_CONTEXT, { baggage: header }, defaultTextMapGetter);
  for (const [key, entry] of propagation.getBaggage(context)?.getAllEntries() ?? []) entries.set(key, entry.value);
  return entries;
}

/** The header for `entries` (percent-encoded values); empty string when there are none. */
export function formatBaggage(entries: ReadonlyMap<string, string>): string {
  const baggage = propagation.createBaggage(Object.fromEntries([...entries].map(([key, value]) => [key, { value }])));
  const carrier: { baggage?: string } = {};
  propagator.inject(propagation.setBaggage(ROOT_CONTEXT, baggage), carrier, defaultTextMapSetter);
  return carrier.baggage ?? '';
}
