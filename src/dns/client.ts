/**
 * Who is asking: the client location the selector reads, from the ECS address when the query has
 * one, else the resolver's source address. Private or unknown addresses take the zone's default
 * location when it has one. The affinity bucket is the client's /24 (IPv4) or /56 (IPv6), never
 * longer than the ECS source prefix; an IPv6 address that carries an IPv4 one (IPv4-mapped, 6to4,
 * Teredo, NAT64) has the IPv4 /24's bucket.
 */
import { isIPv4 } from 'node:net'
import { addressText, apartFromEmbeddings, embeddedIPv4, formatBytes, maskAddress, maskBytes, parseAddress, type EmbeddedIPv4 } from '../model/address.js'
import type { ClientLocation, GeoPoint } from '../model/gslb.js'
import type { ClientSubnet, Query } from './wire.js'

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

/** Locates the client of `q` (sent from `peer`), applying the zone's default location if needed. */
export function locateClient(q: Pick<Query, 'edns'>, peer: string, geo: GeoLookup | undefined, defaultLocation: GeoPoint | null): ClientLocation {
  return withDefault(locateRaw(q.edns?.ecs ?? null, peer, geo), defaultLocation)
}

/** `client`, or where the zone's default location puts it when GeoIP did not place it. */
export function withDefault(client: ClientLocation, defaultLocation: GeoPoint | null): ClientLocation {
  if (client.source !== 'none' || !defaultLocation) return client
  return location(client, defaultLocation, null, null, 'default')
}

/**
 * Where GeoIP puts the client with this ECS option, or else at `peer` (source `none` and no point when GeoIP does not).
 *
 * An IPv6 address that carries an IPv4 one (IPv4-mapped, NAT64's 64:ff9b::/96, Teredo, 6to4:
 * model/address.ts embeddedIPv4) is the IPv4 client it stands for: located and bucketed as that
 * IPv4 address (its /24, so it hashes as the IPv4 /24 does), as gdnsd does. A resolver's address is
 * then simply that IPv4 address; an ECS network keeps its IPv6 terms for the scope: the IPv4
 * prefixes plus where the IPv4 bits start (96, or 16 for 6to4).
 */
export function locateRaw(ecs: ClientSubnet | null, peer: string, geo: GeoLookup | undefined): ClientLocation {
  let address: string
  let family: 4 | 6
  let limit: number
  let v4: EmbeddedIPv4 | undefined
  if (ecs) {
    address = ecs.address
    family = ecs.family === 1 ? 4 : 6
    limit = ecs.sourcePrefix
    if (family === 6) v4 = embeddedIPv4(ecs.bytes, limit)
  } else {
    address = peer
    family = isIPv4(address) ? 4 : 6
    limit = family === 4 ? 32 : 128
    const parsed = family === 6 ? parseAddress(peer) : undefined
    const embedded = parsed && embeddedIPv4(parsed.bytes, 128)
    if (embedded) {
      address = addressText(embedded.bytes)
      family = 4
      limit = 32
    }
  }
  // The affinity bucket (and the GeoIP lookup) in IPv4 terms for an embedded IPv4 address, at `offset`.
  const offset = v4 ? v4.offset : 0
  const bucketPrefix = v4 ? offset + Math.min(BUCKET_PREFIX[4], v4.prefix) : Math.min(BUCKET_PREFIX[family], limit)
  const bucket = v4 ? `${formatBytes(maskBytes(v4.bytes, bucketPrefix - offset))}/${bucketPrefix - offset}` : `${maskAddress(address, bucketPrefix)}/${bucketPrefix}`
  const skip = ecs !== null && ecs.sourcePrefix === 0
  const found = skip ? undefined : v4 ? geo?.(addressText(v4.bytes), v4.prefix) : geo?.(address, ecs ? ecs.sourcePrefix : undefined)
  // Back in IPv6 terms: an IPv4 /26 read as an IPv6 /26 would make the scope cover all of ::/26.
  const decided = found === undefined ? limit : found.networkPrefix + offset
  // A plain IPv6 network's scope stays clear of the IPv4 clients of the embedding spaces.
  const apart = ecs && family === 6 && !v4 ? apartFromEmbeddings(ecs.bytes) : 0
  const net = { address, family, bucket, bucketPrefix, geoPrefix: Math.min(Math.max(decided, apart), limit) }
  const point = found && found.source !== 'none' && found.lat !== undefined && found.lon !== undefined ? { lat: found.lat, lon: found.lon } : null
  return location(net, point, found?.country ?? null, found?.continent ?? null, point === null ? 'none' : ecs ? 'ecs' : 'resolver')
}

/**
 * A ClientLocation, always built here with its fields in one order: as spreads they took several
 * hidden classes, and the selector's reads of them went megamorphic (session 10, `--log-ic`).
 */
function location(net: Pick<ClientLocation, 'address' | 'family' | 'bucket' | 'bucketPrefix' | 'geoPrefix'>, point: ClientLocation['point'], country: string | null, continent: string | null, source: ClientLocation['source']): ClientLocation {
  return { point, country, continent, source, address: net.address, family: net.family, geoPrefix: net.geoPrefix, bucket: net.bucket, bucketPrefix: net.bucketPrefix }
}
