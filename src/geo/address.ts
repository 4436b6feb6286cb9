/**
 * The special-purpose blocks (RFC 6890 and successors) that never carry a location. Parsing,
 * masking and formatting addresses live in model/address.ts.
 */
import { parseAddress } from '../model/address.js'

interface Block {
  readonly family: 4 | 6
  readonly bytes: Uint8Array
  readonly prefix: number
  readonly name: string
}

function block(cidr: string, name: string): Block {
  const [addr, len] = cidr.split('/') as [string, string]
  const p = parseAddress(addr)
  if (!p) throw new Error(`bad block ${cidr}`)
  return { family: p.family, bytes: p.bytes, prefix: Number(len), name }
}

/** Blocks that never have a geographic location. */
export const SPECIAL_BLOCKS: readonly Block[] = [
  block('0.0.0.0/8', 'this network'),
  block('10.0.0.0/8', 'private'),
  block('100.64.0.0/10', 'shared address space (CGN)'),
  block('127.0.0.0/8', 'loopback'),
  block('169.254.0.0/16', 'link-local'),
  block('172.16.0.0/12', 'private'),
  block('192.0.0.0/24', 'IETF protocol assignments'),
  block('192.168.0.0/16', 'private'),
  block('198.18.0.0/15', 'benchmarking'),
  block('224.0.0.0/4', 'multicast'),
  block('240.0.0.0/4', 'reserved, limited broadcast'),
  block('::/128', 'unspecified'),
  block('::1/128', 'loopback'),
  block('100::/64', 'discard-only'),
  block('fc00::/7', 'unique local'),
  block('fe80::/10', 'link-local'),
  block('fec0::/10', 'site-local (deprecated)'),
  block('ff00::/8', 'multicast'),
]

/** Documentation blocks (RFC 5737, RFC 3849, RFC 9637): only test databases hold data for them. */
export const DOCUMENTATION_BLOCKS: readonly Block[] = [
  block('192.0.2.0/24', 'TEST-NET-1'),
  block('198.51.100.0/24', 'TEST-NET-2'),
  block('203.0.113.0/24', 'TEST-NET-3'),
  block('2001:db8::/32', 'IPv6 documentation'),
  block('3fff::/20', 'IPv6 documentation'),
]

/**
 * The prefix length of the block of `blocks` that wholly contains the network `bytes/prefix`, or -1.
 * A block longer than `prefix` does not count: the network then reaches beyond it.
 */
export function containingBlock(blocks: readonly Block[], family: 4 | 6, bytes: Uint8Array, prefix: number): number {
  outer: for (const b of blocks) {
    if (b.family !== family || b.prefix > prefix) continue
    const full = b.prefix >> 3
    for (let i = 0; i < full; i++) if (bytes[i] !== b.bytes[i]) continue outer
    const rest = b.prefix & 7
    if (rest && ((bytes[full]! ^ b.bytes[full]!) & (0xff << (8 - rest)) & 0xff) !== 0) continue
    return b.prefix
  }
  return -1
}
