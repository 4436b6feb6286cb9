/**
 * GSLB model: regions (each a conventional L7 pool behind one or more VIPs), services (a name
 * answered from a set of regions by a policy), client locations and the health the selector reads.
 */

export interface GeoPoint {
  lat: number
  lon: number
}

export const EARTH_RADIUS_KM = 6371

/** Great-circle distance (haversine), in km. */
export function greatCircleKm(a: GeoPoint, b: GeoPoint): number {
  const rad = Math.PI / 180
  const dLat = (b.lat - a.lat) * rad
  const dLon = (b.lon - a.lon) * rad
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)))
}

export type HealthState = 'up' | 'down' | 'unknown'

export type CheckKind = 'http' | 'https' | 'tcp'

/** A check as the caller writes it; everything but kind/address/port has a default. */
export interface CheckSpec {
  kind: CheckKind
  /** Where to connect: the VIP by default (the caller fills it in), or another address or host name. */
  address: string
  port: number
  /** HTTP(S) path, default `/healthz`. Ignored when `url` is set. */
  path?: string
  /** Full HTTP(S) URL, with `{vip}` already expanded by the caller; overrides address, port and path. */
  url?: string
  /** Host header to send (e.g. the service name), default the URL's authority. */
  host?: string
  /** GET (default) or HEAD. */
  method?: 'GET' | 'HEAD'
  /** Status codes that count as success, default [200]. */
  expect?: number[]
  /** A substring the body must contain (GET only). */
  body?: string
  /** TLS server name (SNI) to send; default the Host header's name, or none for an IP. */
  servername?: string
  /** Verify the server certificate (default true). */
  verify?: boolean
  /** Time between the starts of two rounds, default 5000 ms. */
  intervalMs?: number
  /** A round that has not finished after this is aborted and counts as a failure; default 2000 ms, < intervalMs. */
  timeoutMs?: number
  /** Consecutive successes to go up, default 2. */
  rise?: number
  /** Consecutive failures to go down, default 3. */
  fall?: number
}


/** What the selector knows of one VIP's health check (the poller's TargetHealth has this shape). */
export interface VipHealth {
  readonly state: HealthState
  /** EWMA of the check's response time, when measured. */
  readonly ewmaMs?: number | null
  /** The health generation that last published `ewmaMs` (the poller's TargetHealth.latencyGen): a cache compares it per check. */
  readonly latencyGen?: number
  /**
   * The `ewmaMs` generation `latencyGen` published (the poller's TargetHealth.publishedMs): what the
   * selector steers by when present, so an answer moves only with `latencyGen`. Absent: `ewmaMs`.
   */
  readonly publishedMs?: number | null
}

export interface Vip {
  address: string
  family: 4 | 6
  /** Key of the health check that decides this VIP (identical checks share one key), or null if unchecked. */
  checkKey: string | null
}

export interface Region {
  name: string
  location: GeoPoint
  vips: readonly Vip[]
  /** 0..1000; 0 = standby, used only when no weighted region is usable. */
  weight: number
  drained: boolean
  /** Healthy VIPs needed for the region to count as up. */
  minHealthy: number
}

export const POLICIES = ['geo-latency', 'geo', 'weighted', 'failover'] as const
export type Policy = (typeof POLICIES)[number]
export const FALLBACKS = ['as-if-healthy', 'all', 'static', 'none'] as const
export type Fallback = (typeof FALLBACKS)[number]

export interface Service {
  /** Canonical owner name, e.g. `www.gslb.example.test`. */
  name: string
  /** Region names in configured order (the failover order). */
  regions: readonly string[]
  policy: Policy
  /** How many addresses to answer. */
  answers: number
  ttl: number
  fallback: Fallback
  /** Addresses for `fallback: static`. */
  fallbackAddresses: readonly string[]
  /** With `fallback: all`, also answer drained regions. */
  fallbackIncludesDrained: boolean
  /** geo-latency: regions within this many ms of the best share the answers. */
  toleranceMs: number
  /** Fill up to `answers` from the next best regions when the chosen ones have fewer addresses. */
  fill: boolean
  /** How a check with no result yet counts: as up (default: a restart does not black-hole traffic) or down. */
  unknownAs: 'up' | 'down'
}

/** Where the client is, as far as GeoIP can tell, and which network it stands for. */
export interface ClientLocation {
  point: GeoPoint | null
  country: string | null
  continent: string | null
  /** How the location was found. */
  source: 'ecs' | 'resolver' | 'default' | 'none'
  /** The address looked up (ECS address or resolver source). */
  address: string
  family: 4 | 6
  /** Prefix of the GeoIP network that decided the location (0..32 or 0..128). */
  geoPrefix: number
  /** The client network used for affinity: the /24 or /56 of the address. */
  bucket: string
  bucketPrefix: number
}
