/**
 * The data model shared by every subsystem. Everything here is built once per load, frozen and
 * swapped in whole: the query path only ever reads it.
 */

import type { CheckSpec, Fallback, GeoPoint, Policy, Region, Service } from './gslb.js'

/** DNS RR type codes Meridian serves (RFC 1035, 3596, 2782, 8659). */
export const RRTYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  DS: 43,
  IXFR: 251,
  AXFR: 252,
  ANY: 255,
  CAA: 257,
} as const

export const RRTYPE_NAME: Record<number, string> = Object.fromEntries(Object.entries(RRTYPE).map(([k, v]) => [v, k]))

/** Types a zone file may hold under `records:`. */
export const STATIC_TYPES = ['A', 'AAAA', 'CNAME', 'TXT', 'MX', 'SRV', 'CAA'] as const

/**
 * One resource record, already in the shape dns2's encoder takes (`Packet.Resource` fields), so the
 * answer builder hands it over without copying. `name` is canonical (lowercase, no trailing dot).
 */
export interface RR {
  readonly name: string
  readonly type: number
  readonly class: 1
  readonly ttl: number
  // rdata, by type (dns2 field names)
  readonly address?: string // A, AAAA
  readonly domain?: string // CNAME
  readonly ns?: string // NS
  readonly data?: readonly Buffer[] // TXT character-strings (octets)
  readonly exchange?: string // MX
  readonly priority?: number // MX, SRV
  readonly weight?: number // SRV
  readonly port?: number // SRV
  readonly target?: string // SRV
  readonly flags?: number // CAA
  readonly tag?: string // CAA
  readonly value?: string // CAA
  readonly primary?: string // SOA
  readonly admin?: string
  readonly serial?: number
  readonly refresh?: number
  readonly retry?: number
  readonly expiration?: number
  readonly minimum?: number
}

/** A name in a zone. An empty non-terminal is a node with no RRsets. */
export interface ZoneNode {
  readonly rrsets: ReadonlyMap<number, readonly RR[]>
}

export interface Zone {
  /** Canonical origin, e.g. `gslb.example.test`. */
  readonly origin: string
  /** The file it was loaded from, relative to the zones directory. */
  readonly file: string
  readonly ttl: number
  readonly soa: RR
  /** The SOA as put in the authority section of negative answers: TTL = min(SOA TTL, SOA minimum), RFC 2308 §5. */
  readonly negativeSoa: RR
  /** Every name of the zone, empty non-terminals included. */
  readonly nodes: ReadonlyMap<string, ZoneNode>
  /** SHA-256 of the zone's content without its serial: what `serial: auto` watches. */
  readonly contentHash: string
  /** The zone as written, with defaults applied: what `GET /v1/zones/{zone}` will return. */
  readonly definition: ZoneDefinition
  readonly regions: ReadonlyMap<string, Region>
  /** GSLB services by canonical owner name. */
  readonly services: ReadonlyMap<string, Service>
  /** Where clients with a private or unknown address are taken to be, if configured. */
  readonly defaultLocation: GeoPoint | null
}

/**
 * A zone as DNS answers it: without its definition, which only the control side reads (the admin
 * API, the store). DNS workers get zones in this form: the definition was over 40% of a set's
 * octets on the IPC channel, each read again on every worker's event loop at every change.
 */
export type ServedZone = Omit<Zone, 'definition'>

/** An immutable set of zones, swapped in whole. */
export interface ZoneSet<Z extends ServedZone = Zone> {
  readonly zones: ReadonlyMap<string, Z>
  /** Bumped on every swap; caches keyed on it never outlive a change. */
  readonly generation: number
  /** Every health check the set needs, by key (identical checks share one key). */
  readonly checks: ReadonlyMap<string, CheckSpec>
}

/** A zone set as DNS answers it (what a DNS worker holds): a ZoneSet is one too. */
export type ServedZoneSet = ZoneSet<ServedZone>

/** `set` as DNS workers get it: its zones without their definitions (a shallow copy of each). */
export function servedOnly(set: ZoneSet): ServedZoneSet {
  const zones = new Map<string, ServedZone>()
  for (const [origin, z] of set.zones) {
    // A fresh object of the same shape for every zone (not `delete`, which would leave the hot
    // path's zone in dictionary mode).
    // eslint-disable-next-line @typescript-eslint/no-unused-vars
    const { definition, ...served } = z
    zones.set(origin, served)
  }
  return { zones, generation: set.generation, checks: set.checks }
}


/** A zone file after schema validation and defaults (see config/schema.ts). */
export interface ZoneDefinition {
  origin: string
  ttl: number
  soa: {
    mname: string
    rname: string
    serial: number | 'auto'
    refresh: number
    retry: number
    expire: number
    minimum: number
    ttl?: number
  }
  ns: string[]
  records: Record<string, RecordSet>
  defaultLocation?: LocationDef
  regions: Record<string, RegionDef>
  services: Record<string, ServiceDef>
}

export type LocationDef = { lat: number; lon: number } | { country: string } | { city: string }

/**
 * A check as the zone file writes it, with the schema's defaults filled in only where they apply
 * (load.ts checkHolds): `path` without a url, `method` and `expect` but for tcp, `tlsVerify`
 * for https.
 */
export interface CheckDef {
  type: 'http' | 'https' | 'tcp'
  url?: string
  port?: number
  path?: string
  target?: string
  host?: string
  method?: 'GET' | 'HEAD'
  expect?: number[]
  body?: string
  tlsServername?: string
  tlsVerify?: boolean
  interval: number
  timeout: number
  rise: number
  fall: number
}

export interface RegionDef {
  location: LocationDef
  vips: string[]
  weight: number
  drained: boolean
  minHealthy: number
  check?: CheckDef
}

export interface ServiceDef {
  regions: 'all' | string[]
  policy: Policy
  answers: number
  ttl: number
  fallback: Fallback
  fallbackAddresses: string[]
  fallbackIncludesDrained: boolean
  toleranceMs: number
  fill: boolean
  unknown: 'up' | 'down'
}

export type RecordSet = {
  ttl?: number
  A?: string | string[]
  AAAA?: string | string[]
  CNAME?: string
  TXT?: string | (string | string[])[]
  MX?: MxData | MxData[]
  SRV?: SrvData | SrvData[]
  CAA?: CaaData | CaaData[]
}
export interface MxData { preference: number; exchange: string }
export interface SrvData { priority: number; weight: number; port: number; target: string }
export interface CaaData { flags?: number; tag: string; value: string }
