/**
 * Who is asking: the client location the selector reads, from the ECS address when the query has
 * one, else the resolver's source address. Private or unknown addresses take the zone's default
 * location when it has one. The affinity bucket is the client's /24 (IPv4) or /56 (IPv6), never
 * longer than the ECS source prefix.
 */
import { isIPv4 } from 'node:net'
import type { ClientLocation, GeoPoint } from '../model/gslb.js'
import type { Query } from './wire.js'

/** What a GeoIP lookup returns (geo/ GeoDb.locate has this shape). */
export interface GeoAnswer {
  readonly country: string | undefined
  readonly continent: string | undefined
  readonly lat: number | undefined
  readonly lon: number | undefined
  readonly source: 'city' | 'country' | 'none'
  readonly networkPrefix: number
}

export type GeoLookup = (address: string, prefix?: number) => GeoAnswer

export const BUCKET_PREFIX = { 4: 24, 6: 56 } as const

/** The text of `address` with every bit past `prefix` cleared. */
export function maskAddress(address: string, family: 4 | 6, prefix: number): string {
  if (family === 4) {
    const parts = address.split('.').map(Number)
    const out = parts.map((p, i) => {
      const keep = Math.max(0, Math.min(8, prefix - i * 8))
      return p & ((0xff << (8 - keep)) & 0xff)
    })
    return out.join('.')
  }
  const bytes = ipv6Bytes(address)
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8))
    bytes[i] = bytes[i]! & ((0xff << (8 - keep)) & 0xff)
  }
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16))
  return groups.join(':')
}

function ipv6Bytes(address: string): number[] {
  let a = address
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(a)
  if (v4) {
    const [p0, p1, p2, p3] = v4[1]!.split('.').map(Number)
    a = a.slice(0, -v4[1]!.length) + `${((p0! << 8) | p1!).toString(16)}:${((p2! << 8) | p3!).toString(16)}`
  }
  const [head = '', tail = ''] = a.split('::')
  const h = head ? head.split(':') : []
  const t = a.includes('::') ? (tail ? tail.split(':') : []) : []
  const groups = a.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h
  const out: number[] = []
  for (const g of groups) {
    const n = parseInt(g, 16) || 0
    out.push(n >> 8, n & 0xff)
  }
  return out
}

/** Locates the client of `q` (sent from `peer`), applying the zone's default location if needed. */
export function locateClient(q: Query, peer: string, geo: GeoLookup | undefined, defaultLocation: GeoPoint | null): ClientLocation {
  const ecs = q.edns?.ecs ?? null
  let address: string
  let family: 4 | 6
  let limit: number
  if (ecs) {
    address = ecs.address
    family = ecs.family === 1 ? 4 : 6
    limit = ecs.sourcePrefix
  } else {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(peer)
    address = mapped ? mapped[1]! : peer
    family = isIPv4(address) ? 4 : 6
    limit = family === 4 ? 32 : 128
  }
  const bucketPrefix = Math.min(BUCKET_PREFIX[family], limit)
  const bucket = `${maskAddress(address, family, bucketPrefix)}/${bucketPrefix}`
  const found = ecs && ecs.sourcePrefix === 0 ? undefined : geo?.(address, ecs ? ecs.sourcePrefix : undefined)
  const base = { address, family, bucket, bucketPrefix, geoPrefix: Math.min(found?.networkPrefix ?? limit, limit) }
  if (found && found.source !== 'none' && found.lat !== undefined && found.lon !== undefined) {
    return { ...base, point: { lat: found.lat, lon: found.lon }, country: found.country ?? null, continent: found.continent ?? null, source: ecs ? 'ecs' : 'resolver' }
  }
  if (defaultLocation) return { ...base, point: defaultLocation, country: null, continent: null, source: 'default' }
  return { ...base, point: null, country: found?.country ?? null, continent: found?.continent ?? null, source: 'none' }
}
