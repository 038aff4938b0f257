/** What a counted connection needs: to tell us once when it is gone. */
export interface Closable {
  once(event: 'close', listener: () => void): unknown;
}

/**
 * Connections open per client address, against a ceiling (`max_connections_per_address`):
 * one client cannot take every socket of a listener. The address is the TCP peer's, so behind
 * a proxy or load balancer every client shares the proxy's address (raise the limit there, or
 * set 0 = unlimited). A refused connection is never counted.
 */
export class AddressLimit {
  /** Open connections by address; an address leaves the map when its last connection closes. */
  private readonly open = new Map<string, number>();

  constructor(
    /** Connections one address may hold open; 0 = unlimited. */
    readonly maxPerAddress: number,
    /** The config key, named in refusals (e.g. `iii-http.max_connections_per_address`). */
    readonly key: string,
    /** Told of every refusal (the `iii_limit_refusals_total` counter). */
    private readonly onRefused: () => void = () => undefined,
  ) {}

  /** Connections open from `address`. */
  count(address: string): number {
    return this.open.get(unmappedAddress(address)) ?? 0;
  }

  /**
   * Counts one more connection from `address` until `connection` closes; false (and nothing
   * counted) when the address is at the limit.
   */
  acquire(address: string, connection: Closable): boolean {
    if (this.maxPerAddress === 0) return true;
    const key = unmappedAddress(address);
    const count = this.open.get(key) ?? 0;
    if (count >= this.maxPerAddress) {
      this.onRefused();
      return false;
    }
    this.open.set(key, count + 1);
    connection.once('close', () => this.release(key));
    return true;
  }

  /** The message a refused client reads. */
  refusal(address: string): string {
    return (
      `Too many connections from ${unmappedAddress(address)}: at most ${this.maxPerAddress} per client address (${this.key}). ` +
      'Close a connection and retry; behind a proxy every client shares its address, so raise the limit or set it to 0 there.'
    );
  }

  private release(key: string): void {
    const count = this.open.get(key) ?? 0;
    if (count <= 1) this.open.delete(key);
    else this.open.set(key, count - 1);
  }
}

/** `::ffff:10.0.0.1` and `10.0.0.1` are one client (a dual-stack listener reports the former). */
export function unmappedAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
