/**
 * IP address helpers for geo/: parse to bytes, mask to a prefix, and the special-purpose blocks
 * (RFC 6890 and successors) that never carry a location.
 */
import { isIPv4, isIPv6 } from 'node:net'

export interface ParsedAddress {
  family: 4 | 6
  /** 4 or 16 bytes. */
  bytes: Uint8Array
}

/** Parses a textual IPv4 or IPv6 address (an IPv6 zone, `%eth0`, is ignored); undefined if it is not one. */
export function parseAddress(text: string): ParsedAddress | undefined {
  if (isIPv4(text)) {
    const p = text.split('.')
    return { family: 4, bytes: Uint8Array.of(Number(p[0]), Number(p[1]), Number(p[2]), Number(p[3])) }
  }
  const pct = text.indexOf('%')
  const addr = pct >= 0 ? text.slice(0, pct) : text
  if (!isIPv6(addr)) return undefined
  let body = addr
  const bytes = new Uint8Array(16)
  const dot = body.indexOf('.')
  if (dot >= 0) {
    // a trailing dotted quad stands for the last two groups
    const colon = body.lastIndexOf(':')
    const q = body.slice(colon + 1).split('.')
    for (let i = 0; i < 4; i++) bytes[12 + i] = Number(q[i])
    body = body.slice(0, colon + 1) + '0:0'
  }
  const dbl = body.indexOf('::')
  const head = dbl >= 0 ? body.slice(0, dbl) : body
  const tail = dbl >= 0 ? body.slice(dbl + 2) : ''
  const h = head ? head.split(':') : []
  const t = tail ? tail.split(':') : []
  const groups = dbl >= 0 ? [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t] : h
  for (let i = 0; i < 8; i++) {
    if (dot >= 0 && i >= 6) break
    const g = parseInt(groups[i]!, 16)
    bytes[2 * i] = g >> 8
    bytes[2 * i + 1] = g & 0xff
  }
  return { family: 6, bytes }
}

/** True for `::ffff:a.b.c.d`. */
export function isIPv4Mapped(bytes: Uint8Array): boolean {
  if (bytes.length !== 16 || bytes[10] !== 0xff || bytes[11] !== 0xff) return false
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false
  return true
}

/** A copy of `bytes` with every bit from `prefix` on cleared. */
export function maskBytes(bytes: Uint8Array, prefix: number): Uint8Array {
  const out = Uint8Array.from(bytes)
  for (let i = 0; i < out.length; i++) {
    const keep = prefix - i * 8
    if (keep >= 8) continue
    out[i] = keep <= 0 ? 0 : out[i]! & (0xff << (8 - keep))
  }
  return out
}

/** Dotted quad, or eight hex groups (uncompressed: only ever read by the MMDB reader). */
export function formatBytes(bytes: Uint8Array): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`
  const g: string[] = []
  for (let i = 0; i < 16; i += 2) g.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16))
  return g.join(':')
}

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
