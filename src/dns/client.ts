/**
 * Who is asking: the client location the selector reads, from the ECS address when the query has
 * one, else the resolver's source address. Private or unknown addresses take the zone's default
 * location when it has one. The affinity bucket is the client's /24 (IPv4) or /56 (IPv6), never
 * longer than the ECS source prefix.
 */
import { isIPv4 } from 'node:net'
import { maskAddress } from '../model/address.js'
import type { ClientLocation, GeoPoint } from '../model/gslb.js'
import type { ClientSubnet, Query } from './wire.js'

/** What a GeoIP lookup returns (geo/ GeoDb.locate has this shape). */
export interface GeoAnswer {
  readonly country: string | undefined
  readonly continent: string | undefined
  readonly lat: number | undefined
  readonly lon: number | undefined
  readonly source: 'city' | 'country' | 'none'
  /**
   * The family `networkPrefix` counts in (GeoDb.locate: 4 for an IPv4-mapped IPv6 address looked up as
   * IPv4); the address's own family when absent.
   */
  readonly family?: 4 | 6
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

/** Where GeoIP puts the client with this ECS option, or else at `peer` (source `none` and no point when GeoIP does not). */
export function locateRaw(ecs: ClientSubnet | null, peer: string, geo: GeoLookup | undefined): ClientLocation {
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
  const bucket = `${maskAddress(address, bucketPrefix)}/${bucketPrefix}`
  const found = ecs && ecs.sourcePrefix === 0 ? undefined : geo?.(address, ecs ? ecs.sourcePrefix : undefined)
  // An IPv4-mapped address in an IPv6 ECS option is looked up as IPv4: its prefix back in IPv6 terms
  // (::ffff:0:0/96 plus the IPv4 prefix), or the scope would cover all of ::/26 for a /26.
  const decided = found === undefined ? limit : found.networkPrefix + (family === 6 && found.family === 4 ? 96 : 0)
  const net = { address, family, bucket, bucketPrefix, geoPrefix: Math.min(decided, limit) }
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
