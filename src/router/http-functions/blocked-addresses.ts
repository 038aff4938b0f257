import { BlockList, isIP } from 'node:net';

/**
 * Addresses an HTTP function may not reach when `block_private_ips` is on (iii §6.3), so a
 * registration cannot turn the engine into a proxy into its own host, its private network or a
 * cloud metadata service. The list is the IANA special-purpose ranges that are not globally
 * reachable. iii leaves CGNAT 100.64/10 (Alibaba Cloud's metadata service is 100.100.100.200;
 * Tailscale and some pod networks live there), IPv4 multicast/reserved and the IPv6 forms that
 * embed an IPv4 address (NAT64, 6to4) reachable; we block them.
 */
const blocked = new BlockList();

/** IPv4 ranges as [network, prefix length]; each is also blocked inside NAT64 and 6to4 below. */
const BLOCKED_IPV4: ReadonlyArray<readonly [string, number]> = [
  ['0.0.0.0', 8], // "this network"; 0.0.0.0 reaches the local host on Linux
  ['10.0.0.0', 8], // RFC 1918
  ['100.64.0.0', 10], // CGNAT / shared address space (ours: iii allows it)
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, incl. cloud metadata 169.254.169.254
  ['172.16.0.0', 12], // RFC 1918
  ['192.0.0.0', 24], // IETF protocol assignments (ours)
  ['192.0.2.0', 24], // documentation TEST-NET-1
  ['192.168.0.0', 16], // RFC 1918
  ['198.18.0.0', 15], // benchmarking (ours)
  ['198.51.100.0', 24], // documentation TEST-NET-2
  ['203.0.113.0', 24], // documentation TEST-NET-3
  ['224.0.0.0', 4], // multicast (ours: iii allows it)
  ['240.0.0.0', 4], // reserved, incl. broadcast 255.255.255.255 (ours: iii blocks only the broadcast)
];

/** `a.b.c.d` as the two hex groups an IPv6 address carries it in (`7f00`, `1`). */
function hexGroups(ipv4: string): [string, string] {
  const [a, b, c, d] = ipv4.split('.').map(Number) as [number, number, number, number];
  return [((a << 8) | b).toString(16), ((c << 8) | d).toString(16)];
}

for (const [network, prefix] of BLOCKED_IPV4) {
  blocked.addSubnet(network, prefix, 'ipv4');
  const [hi, lo] = hexGroups(network);
  // NAT64 well-known prefix (RFC 6052): 64:ff9b::7f00:1 is 127.0.0.1 to a DNS64/NAT64 gateway.
  blocked.addSubnet(`64:ff9b::${hi}:${lo}`, 96 + prefix, 'ipv6');
  // 6to4 (RFC 3056): 2002:7f00:1::/48 carries 127.0.0.1.
  blocked.addSubnet(`2002:${hi}:${lo}::`, 16 + prefix, 'ipv6');
}
// IPv4-mapped IPv6 (::ffff:127.0.0.1) needs no entry: BlockList judges it by the IPv4 rules.

// IPv6
blocked.addSubnet('::', 96, 'ipv6'); // unspecified, loopback and the deprecated IPv4-compatible block
blocked.addSubnet('64:ff9b:1::', 48, 'ipv6'); // local-use NAT64 (RFC 8215), whatever it embeds (ours)
blocked.addSubnet('100::', 64, 'ipv6'); // discard-only (ours)
blocked.addSubnet('2001:db8::', 32, 'ipv6'); // documentation (ours)
blocked.addSubnet('fc00::', 7, 'ipv6'); // unique-local
blocked.addSubnet('fe80::', 10, 'ipv6'); // link-local
blocked.addSubnet('fec0::', 10, 'ipv6'); // deprecated site-local (ours)
blocked.addSubnet('ff00::', 8, 'ipv6'); // multicast

/** True when `address` (an IP literal, IPv6 without brackets, zone id allowed) is blocked. */
export function isBlockedAddress(address: string): boolean {
  const bare = address.split('%')[0];
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
