import { BlockList, isIP } from 'node:net';

/**
 * Addresses an HTTP function may not reach when `block_private_ips` is on (iii §6.3), so a
 * registration cannot turn the engine into a proxy into its own host or private network.
 * `BlockList` judges an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) by its IPv4 rules.
 * CGNAT 100.64/10 and IPv4 multicast stay reachable, as in iii.
 */
const blocked = new BlockList();

// IPv4
blocked.addSubnet('0.0.0.0', 8, 'ipv4'); // unspecified; iii blocks 0.0.0.0 only, 0/8 is unroutable anyway
blocked.addSubnet('10.0.0.0', 8, 'ipv4'); // RFC 1918
blocked.addSubnet('127.0.0.0', 8, 'ipv4'); // loopback
blocked.addSubnet('169.254.0.0', 16, 'ipv4'); // link-local, incl. cloud metadata 169.254.169.254
blocked.addSubnet('172.16.0.0', 12, 'ipv4'); // RFC 1918
blocked.addSubnet('192.168.0.0', 16, 'ipv4'); // RFC 1918
blocked.addSubnet('192.0.2.0', 24, 'ipv4'); // documentation TEST-NET-1
blocked.addSubnet('198.51.100.0', 24, 'ipv4'); // documentation TEST-NET-2
blocked.addSubnet('203.0.113.0', 24, 'ipv4'); // documentation TEST-NET-3
blocked.addAddress('255.255.255.255', 'ipv4'); // broadcast

// IPv6
blocked.addSubnet('::', 96, 'ipv6'); // unspecified, loopback and the deprecated IPv4-compatible block
blocked.addSubnet('fc00::', 7, 'ipv6'); // unique-local
blocked.addSubnet('fe80::', 10, 'ipv6'); // link-local
blocked.addSubnet('ff00::', 8, 'ipv6'); // multicast
blocked.addSubnet('2001:db8::', 32, 'ipv6'); // documentation (ours: not in iii's list)

/** True when `address` (an IP literal, IPv6 without brackets, zone id allowed) is blocked. */
export function isBlockedAddress(address: string): boolean {
  const bare = address.split('%')[0]!;
  const family = isIP(bare);
  if (family === 4) return blocked.check(bare, 'ipv4');
  if (family === 6) return blocked.check(bare, 'ipv6');
  return false;
}

/** The IP a URL host names literally (`127.0.0.1`, `[::1]` → `::1`), or undefined for a name. */
export function literalIp(host: string): string | undefined {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return isIP(bare) !== 0 ? bare : undefined;
}
