/**
 * IP address helpers shared by config, geo and dns: parse text to bytes, mask to a prefix, format
 * back (uncompressed for keys, RFC 5952 for people and the wire's text forms).
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

/**
 * A dotted-quad IPv4 address as its 32 bits (a signed int32), or -1 when `text` is not one (and for
 * 255.255.255.255, never a peer), with no string made: for the DNS hot path, where
 * parseAddress() would allocate.
 */
export function ipv4Number(text: string): number {
  let n = 0
  let part = 0
  let digits = 0
  let dots = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x2e) {
      if (digits === 0 || dots === 3) return -1
      n = (n << 8) | part
      part = digits = 0
      dots++
    } else if (c >= 0x30 && c <= 0x39) {
      part = part * 10 + c - 0x30
      if (++digits > 3 || part > 255) return -1
    } else {
      return -1
    }
  }
  return dots === 3 && digits > 0 ? (n << 8) | part : -1
}

/** An IPv6 form that carries an IPv4 address (gdnsd's plugin_geoip reads the same ones, bar the deprecated v4compat and SIIT). */
interface Embedding {
  readonly kind: EmbeddedIPv4['kind']
  /** The prefix that marks the form, as octets (its length is a whole number of octets). */
  readonly marker: readonly number[]
  /** Where the IPv4 address starts, in bits (a multiple of 8). */
  readonly offset: number
  /** Teredo stores the client's address with every bit inverted. */
  readonly flip: boolean
}

const EMBEDDINGS: readonly Embedding[] = [
  { kind: 'mapped', marker: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff], offset: 96, flip: false }, // ::ffff:0:0/96, RFC 4291
  { kind: 'nat64', marker: [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0], offset: 96, flip: false }, // 64:ff9b::/96, RFC 6052 (an IPv4 client through SIIT-DC)
  { kind: 'teredo', marker: [0x20, 0x01, 0, 0], offset: 96, flip: true }, // 2001::/32, RFC 4380: the client's public address, inverted, in the last 32 bits
  { kind: '6to4', marker: [0x20, 0x02], offset: 16, flip: false }, // 2002::/16, RFC 3056: the site's address in bits 16..47
]

/** The IPv4 address an IPv6 network stands for (embeddedIPv4). */
export interface EmbeddedIPv4 {
  readonly kind: 'mapped' | 'nat64' | 'teredo' | '6to4'
  /** The IPv4 address, 4 octets, bits past `prefix` cleared. */
  readonly bytes: Uint8Array
  /** How much of the IPv4 address the IPv6 prefix reveals, 0..32. */
  readonly prefix: number
  /** Where the IPv4 bits start in the IPv6 address: an IPv4 prefix n is the IPv6 prefix `offset + n`. */
  readonly offset: number
}

/**
 * The IPv4 address embedded in the IPv6 network `bytes/prefix` (16 octets): IPv4-mapped, NAT64's
 * well-known prefix, Teredo or 6to4, when `prefix` reaches the IPv4 bits (a Teredo /56 only says
 * which Teredo server, not which client: undefined). Undefined for every other network.
 */
export function embeddedIPv4(bytes: Uint8Array, prefix: number): EmbeddedIPv4 | undefined {
  if (bytes.length !== 16) return undefined
  outer: for (const e of EMBEDDINGS) {
    if (prefix < e.offset) continue
    for (let i = 0; i < e.marker.length; i++) if (bytes[i] !== e.marker[i]) continue outer
    const at = e.offset >> 3
    const flip = e.flip ? 0xff : 0
    const v4 = Uint8Array.of(bytes[at]! ^ flip, bytes[at + 1]! ^ flip, bytes[at + 2]! ^ flip, bytes[at + 3]! ^ flip)
    const p4 = Math.min(prefix - e.offset, 32)
    return { kind: e.kind, bytes: maskBytes(v4, p4), prefix: p4, offset: e.offset }
  }
  return undefined
}

/**
 * For an IPv6 address outside the spaces embeddedIPv4 reads: the shortest prefix length at which its
 * network covers none of them. The IPv4 clients in those spaces are located as IPv4, so a GeoIP
 * network of plain IPv6 that spans one (an empty ::/1 of a database without aliases) must not be an
 * ECS scope that covers them (gdnsd keeps these spaces apart in its tree for the same reason).
 */
export function apartFromEmbeddings(bytes: Uint8Array): number {
  let need = 0
  for (const e of EMBEDDINGS) {
    // The first bit where the address leaves the space (the marker's length when it is inside).
    let bit = 0
    const bits = e.marker.length * 8
    while (bit < bits && ((bytes[bit >> 3]! ^ e.marker[bit >> 3]!) & (0x80 >> (bit & 7))) === 0) bit++
    if (bit < bits) need = Math.max(need, bit + 1)
  }
  return need
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

/** RFC 5952 text of 4 or 16 address bytes: the longest run (>= 2) of zero groups compressed. */
export function addressText(bytes: Uint8Array): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16))
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === '0') j++
    if (j - i > bestLen) {
      best = i
      bestLen = j - i
    }
    i = j
  }
  if (best < 0) return groups.join(':')
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`
}

/** The address with every bit past `prefix` cleared, as uncompressed text (a stable map key). */
export function maskAddress(address: string, prefix: number): string {
  const p = parseAddress(address)
  if (!p) throw new TypeError(`not an IP address: ${address}`)
  return formatBytes(maskBytes(p.bytes, prefix))
}

/** An IP address as a URL host: IPv6 in brackets (`[2001:db8::1]`), IPv4 as it is. */
export const urlHost = (address: string): string => (address.includes(':') ? `[${address}]` : address)

/** `ADDR:PORT`, IPv6 in brackets: `127.0.0.1:5300`, `[::1]:5300`. */
export const formatAddress = (address: string, port: number): string => `${urlHost(address)}:${port}`

/** One text per address, whatever its spelling (`2001:DB8::1` = `2001:db8:0::1`), for comparisons. */
export const canonicalAddress = (address: string): string => maskAddress(address, 128)
