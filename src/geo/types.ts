/**
 * Types shared by geo/ and its callers (the selector, the DNS layer, the admin API's explain).
 * Self-contained on purpose: nothing here imports anything, so the file can move to model/ as it is.
 */

/** A point on the earth, in degrees (WGS 84). */
export interface GeoPoint {
  readonly lat: number
  readonly lon: number
}

/** MaxMind's (GeoNames') continent codes. */
export type ContinentCode = 'AF' | 'AN' | 'AS' | 'EU' | 'NA' | 'OC' | 'SA'
export const CONTINENT_CODES: readonly ContinentCode[] = ['AF', 'AN', 'AS', 'EU', 'NA', 'OC', 'SA']

/**
 * Where a location came from:
 * - `city`: coordinates the database record itself carries (a GeoIP2/GeoLite2 City database, or the test database);
 * - `country`: the database gave only a country; the coordinates are that country's centroid (geodb/countries.json);
 * - `none`: no coordinates: a private, loopback, link-local, multicast or reserved address, a documentation
 *   address the database has no data for, an address the database does not know, or ECS source prefix 0.
 *   The caller applies the zone's default location. `country`/`continent` may still be set when the
 *   database named a country that countries.json cannot place.
 */
export type LocationSource = 'city' | 'country' | 'none'

/** What `GeoDb.locate` returns. Frozen and shared between callers: never mutate it. */
export interface ClientLocation {
  /** ISO 3166-1 alpha-2, upper case. */
  readonly country: string | undefined
  readonly continent: ContinentCode | undefined
  readonly lat: number | undefined
  readonly lon: number | undefined
  /** English city name, when the database has one. */
  readonly city: string | undefined
  readonly source: LocationSource
  /**
   * The family `networkPrefix` counts in: 4 for IPv4 and for the IPv6 forms of an IPv4 address
   * (IPv4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, Teredo, 6to4: model/address.ts embeddedIPv4), else 6.
   */
  readonly family: 4 | 6
  /**
   * Prefix length of the network that decided the answer, in `family`'s terms (0..32 or 0..128): the
   * database network holding the address, the special-purpose block it is in (8 for 10.0.0.0/8), or the
   * empty part of the database's tree it fell into. With an ECS source prefix this may be longer than
   * that prefix: the database distinguishes more finely than the client revealed, and the (masked)
   * address that was looked up decided.
   */
  readonly networkPrefix: number
}

/** One entry of geodb/countries.json, with its code. */
export interface CountryInfo extends GeoPoint {
  readonly code: string
  readonly continent: ContinentCode
  readonly name: string
}

/** One entry of geodb/places.json (IATA-style three-letter codes of metro areas), with its code. */
export interface PlaceInfo extends GeoPoint {
  readonly code: string
  readonly country: string
  readonly continent: ContinentCode
  readonly name: string
}
