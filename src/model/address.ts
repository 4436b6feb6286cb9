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
