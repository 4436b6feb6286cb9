/**
 * # geo/: where a DNS client is
 *
 * Owns: reading a MaxMind DB (MMDB) file, turning a client address (the query's source, or its EDNS
 * Client Subnet) into a `ClientLocation` (country, continent, coordinates), a bounded LRU of those
 * lookups, coordinates for a region's country (`country: GB`) or metro code (`LHR`), and great-circle
 * distance. No network I/O; the only file reads are at `GeoDb.open` and, once, countries.json/places.json.
 *
 * Databases (see geodb/README.md for sources, licences and how to rebuild):
 * - default `geodb/geo-whois-asn-country.mmdb` (ip-location-db, country only: every hit is
 *   `source: 'country'` at the country's centroid);
 * - any MaxMind GeoIP2/GeoLite2 City or Country database (City gives `source: 'city'` coordinates);
 * - `geodb/test/meridian-test.mmdb`, a tiny deterministic database of documentation networks, for tests.
 * The record layout (GeoIP2's `country.iso_code`, `country_code`, IPinfo's `country: "US"`) is detected,
 * and read field by field; a database with none of them is refused (E_GEODB).
 * IPv6 forms of an IPv4 address (IPv4-mapped, NAT64 64:ff9b::/96, 6to4, Teredo: model/address.ts
 * embeddedIPv4) are looked up as that IPv4 address, whatever aliases the database has or lacks
 * (the default database has none; MaxMind's Teredo alias reads the Teredo server, not the client).
 *
 * Config: `meridian serve --geodb <file or directory>` (a directory means its geo-whois-asn-country.mmdb).
 * Reload: `GeoSource` (source.ts) holds the database a server answers from and takes the file again
 * when it is replaced (SIGHUP, `POST /v1/reload`, a watch of its directory); a file that cannot be
 * opened leaves the last good database answering.
 *
 * Not located (`source: 'none'`, the caller applies the zone's default location): private, loopback,
 * link-local, CGN, multicast and reserved addresses; documentation addresses unless the database is a
 * test database; addresses the database has no data for; ECS source prefix 0.
 *
 * Example:
 *   const db = await GeoDb.open('geodb')
 *   db.locate('81.2.69.142')          // { country: 'GB', continent: 'EU', lat: 54, lon: -2, source: 'country', family: 4, networkPrefix: 18, ... }
 *   db.locate('192.0.2.77', 24)       // ECS 192.0.2.0/24: looks up 192.0.2.0
 *   greatCircleKm(placeLocation('LHR')!, placeLocation('NRT')!)   // ~9,590 km
 *
 * Errors: `GeoDb.open` throws MeridianError E_GEODB naming the path when the file is missing or not
 * an MMDB with country data. `locate` throws TypeError for a string that is not an IP address,
 * RangeError for a prefix out of range, Error once closed.
 *
 * Metrics: none yet; the DNS layer counts lookups by source if it wants them.
 */
export { GeoDb, DEFAULT_CACHE_SIZE, DEFAULT_GEODB_FILE, DEFAULT_GEODB_PATH } from './geodb.js'
export type { GeoDbInfo, GeoDbLayout, GeoDbOptions } from './geodb.js'
export { GeoSource, type GeoReload } from './source.js'
export { allCountries, allPlaces, countryLocation, EARTH_RADIUS_KM, GEODB_DIR, greatCircleKm, placeLocation } from './countries.js'
export { CONTINENT_CODES } from './types.js'
export type { ClientLocation, ContinentCode, CountryInfo, GeoPoint, LocationSource, PlaceInfo } from './types.js'
