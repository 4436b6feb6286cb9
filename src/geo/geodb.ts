/**
 * GeoDb: one opened MaxMind DB file and its lookup cache. Immutable once open; to reload, open the new
 * file (a new instance), swap it in, then close the old one.
 */
import { MeridianError } from '../errors.js'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { LRUCache } from 'lru-cache'
import { Reader } from 'maxmind'
import { embeddedIPv4, formatBytes, maskBytes, parseAddress } from '../model/address.js'
import { containingBlock, DOCUMENTATION_BLOCKS, SPECIAL_BLOCKS } from './address.js'
import { countryLocation, GEODB_DIR } from './countries.js'
import { CONTINENT_CODES, type ClientLocation, type ContinentCode } from './types.js'

/** The database opened when `--geodb` names a directory (the default is geodb/). */
export const DEFAULT_GEODB_FILE = 'geo-whois-asn-country.mmdb'
export const DEFAULT_GEODB_PATH = join(GEODB_DIR, DEFAULT_GEODB_FILE)
export const DEFAULT_CACHE_SIZE = 100_000

/**
 * How records are laid out:
 * - `geoip2`: MaxMind GeoIP2/GeoLite2 City or Country, DB-IP Lite, the Meridian test database:
 *   `{ country: { iso_code }, continent: { code }, location: { latitude, longitude }, city: { names: { en } } }`;
 * - `flat`: ip-location-db: `{ country_code }`, and in its city databases `latitude`, `longitude`, `city`;
 *   IPinfo: `{ country: 'US', continent: 'NA' }` (its country database), `{ country_code, continent_code }`
 *   (IPinfo Lite), `lat`/`lng` (numbers or text);
 * - `unknown`: no probe address had data (records are still read either way, field by field).
 */
export type GeoDbLayout = 'geoip2' | 'flat' | 'unknown'

export interface GeoDbOptions {
  /** Most lookups kept (LRU, keyed by address and prefix). Default 100,000. */
  cacheSize?: number
  /**
   * Whether documentation addresses (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32, 3fff::/20)
   * are looked up. `auto` (the default): only when the database says it is a test database (its type
   * contains "test"); other databases have no business mapping them, and the npm build of
   * geo-whois-asn-country does map 2001:db8::/32 (to JP).
   */
  documentation?: 'lookup' | 'none' | 'auto'
}

export interface GeoDbInfo {
  readonly path: string
  readonly databaseType: string
  readonly buildEpoch: Date
  readonly ipVersion: 4 | 6
  readonly nodeCount: number
  readonly layout: GeoDbLayout
}

/** Addresses that are in nearly every database (and in the test database), to tell its layout. */
const PROBES = ['8.8.8.8', '1.1.1.1', '81.2.69.142', '2001:4860:4860::8888', '192.0.2.1', '198.51.100.1', '203.0.113.1', '2001:db8::1', '2001:db8:100::1']

type GeoRecord = Record<string, unknown>

const NONE4: ClientLocation[] = []
const NONE6: ClientLocation[] = []
/** A frozen `none` result; one shared object per family and prefix. */
function none(family: 4 | 6, networkPrefix: number): ClientLocation {
  const table = family === 4 ? NONE4 : NONE6
  return (table[networkPrefix] ??= Object.freeze({
    country: undefined,
    continent: undefined,
    lat: undefined,
    lon: undefined,
    city: undefined,
    source: 'none',
    family,
    networkPrefix,
  }))
}

const obj = (v: unknown): GeoRecord | undefined => (v !== null && typeof v === 'object' ? (v as GeoRecord) : undefined)
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined)
const num = (v: unknown, limit: number): number | undefined => (typeof v === 'number' && Number.isFinite(v) && Math.abs(v) <= limit ? v : undefined)

export class GeoDb {
  private reader: Reader<GeoRecord> | null
  private readonly cache: LRUCache<string, ClientLocation>
  private readonly lookupDocumentation: boolean
  readonly info: GeoDbInfo
  /** The database file's octets as read (DNS workers are sent these: they open what this process opened). */
  readonly bytes: Buffer

  private constructor(reader: Reader<GeoRecord>, bytes: Buffer, path: string, options: GeoDbOptions) {
    this.reader = reader
    this.bytes = bytes
    const max = options.cacheSize ?? DEFAULT_CACHE_SIZE
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`cacheSize must be a positive integer, got ${max}`)
    this.cache = new LRUCache({ max })
    const m = reader.metadata
    const databaseType = String(m.databaseType)
    const doc = options.documentation ?? 'auto'
    this.lookupDocumentation = doc === 'lookup' || (doc === 'auto' && /test/i.test(databaseType))
    this.info = Object.freeze({
      path,
      databaseType,
      buildEpoch: m.buildEpoch,
      ipVersion: m.ipVersion === 4 ? 4 : 6,
      nodeCount: m.nodeCount,
      layout: detectLayout(reader, path),
    })
  }

  /**
   * Opens a MaxMind DB file; a directory means `<dir>/geo-whois-asn-country.mmdb`. Throws an Error naming the
   * path when the file is missing, unreadable, or not a MaxMind DB with country data.
   */
  static async open(path: string = DEFAULT_GEODB_PATH, options: GeoDbOptions = {}): Promise<GeoDb> {
    let file = path
    let buffer: Buffer
    try {
      if ((await stat(file)).isDirectory()) file = join(file, DEFAULT_GEODB_FILE)
      buffer = await readFile(file)
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      const why = e.code === 'ENOENT' ? 'does not exist' : `cannot be read (${e.code ?? e.message})`
      throw new MeridianError('E_GEODB', `GeoIP database ${file} ${why}`, 500, { cause: err })
    }
    return GeoDb.fromBuffer(buffer, file, options)
  }

  /** As `open`, from bytes already read; `path` only names the database in messages and `info`. */
  static fromBuffer(buffer: Buffer, path: string, options: GeoDbOptions = {}): GeoDb {
    let reader: Reader<GeoRecord>
    try {
      reader = new Reader<GeoRecord>(buffer)
      const m = reader.metadata
      const sane =
        m.binaryFormatMajorVersion === 2 &&
        (m.ipVersion === 4 || m.ipVersion === 6) &&
        Number.isInteger(m.nodeCount) &&
        m.nodeCount > 0 &&
        m.searchTreeSize + 16 <= buffer.length
      if (!sane) throw new Error('bad metadata')
      for (const probe of PROBES) reader.get(m.ipVersion === 4 && probe.includes(':') ? '0.0.0.0' : probe)
    } catch (err) {
      throw new MeridianError('E_GEODB', `GeoIP database ${path} is not a valid MaxMind DB file (${(err as Error).message})`, 500, { cause: err })
    }
    return new GeoDb(reader, buffer, path, options)
  }

  /**
   * Where `address` is. `prefix` is an EDNS Client Subnet source prefix length: bits past it are
   * cleared before the lookup, and 0 means "do not use my location" (`none`). Throws a TypeError for
   * something that is not an IP address and a RangeError for a prefix outside 0..32 or 0..128.
   */
  locate(address: string, prefix?: number): ClientLocation {
    const reader = this.reader
    if (reader === null) throw new Error(`GeoIP database ${this.info.path} is closed`)
    const key = prefix === undefined ? address : `${address}/${prefix}`
    const hit = this.cache.get(key)
    if (hit !== undefined) return hit
    const result = this.compute(reader, address, prefix)
    this.cache.set(key, result)
    return result
  }

  /** How many lookups are cached. */
  get cacheEntries(): number {
    return this.cache.size
  }

  /** Drops the reader and the cache. `locate` throws afterwards. */
  close(): void {
    this.reader = null
    this.cache.clear()
  }

  private compute(reader: Reader<GeoRecord>, address: string, prefix: number | undefined): ClientLocation {
    const parsed = parseAddress(address)
    if (!parsed) throw new TypeError(`not an IP address: ${JSON.stringify(address)}`)
    let { family, bytes } = parsed
    let bits = family === 4 ? 32 : 128
    let p = prefix ?? bits
    if (!Number.isInteger(p) || p < 0 || p > bits) throw new RangeError(`prefix length ${prefix} out of range 0..${bits} for ${address}`)
    // An IPv6 form of an IPv4 address (IPv4-mapped, NAT64, Teredo, 6to4) is looked up as that IPv4
    // address: a database without MaxMind's aliases has nothing there, and MaxMind's Teredo alias
    // reads the Teredo server's address, not the client's.
    const v4 = family === 6 ? embeddedIPv4(bytes, p) : undefined
    if (v4) {
      family = 4
      bytes = v4.bytes
      bits = 32
      p = v4.prefix
    }
    if (p < bits) bytes = maskBytes(bytes, p)
    if (p === 0) return none(family, 0)
    const special = containingBlock(SPECIAL_BLOCKS, family, bytes, p)
    if (special >= 0) return none(family, special)
    if (!this.lookupDocumentation) {
      const doc = containingBlock(DOCUMENTATION_BLOCKS, family, bytes, p)
      if (doc >= 0) return none(family, doc)
    }
    if (family === 6 && this.info.ipVersion === 4) return none(6, 0)
    const [record, depth] = reader.getWithPrefixLength(formatBytes(bytes))
    return locationOf(record, family, depth)
  }
}

/** A two-letter code (a country's, a continent's), as IPinfo and ip-location-db store them. */
const code2 = (v: unknown): string | undefined => (typeof v === 'string' && /^[A-Za-z]{2}$/.test(v) ? v : undefined)
/** A coordinate: a number, or a number as text (IPinfo's `lat`/`lng`). */
const coord = (v: unknown, limit: number): number | undefined => num(typeof v === 'string' && v.trim() !== '' ? Number(v) : v, limit)

/**
 * The country of a record, in the shapes the common databases store it: GeoIP2/GeoLite2 and DB-IP
 * `country.iso_code` (where the address is used), ip-location-db and IPinfo Lite `country_code`,
 * IPinfo's country database `country: "US"`, then GeoIP2's `registered_country.iso_code`.
 */
function countryOf(r: GeoRecord): string | undefined {
  return str(obj(r.country)?.iso_code) ?? code2(r.country_code) ?? code2(r.country) ?? str(obj(r.registered_country)?.iso_code)
}

/** What a record of no shape Meridian reads is refused with (E_GEODB). */
const EXPECTED_SHAPE =
  'expected a country as GeoIP2 `country.iso_code` or `registered_country.iso_code` (MaxMind GeoIP2/GeoLite2, DB-IP), `country_code` (ip-location-db, IPinfo Lite) or `country` as a two-letter code (IPinfo)'

/** Reads a record of any of the shapes countryOf knows into a ClientLocation, field by field. */
function locationOf(record: GeoRecord | null, family: 4 | 6, networkPrefix: number): ClientLocation {
  if (record === null) return none(family, networkPrefix)
  let country = countryOf(record)
  const continent = str(obj(record.continent)?.code) ?? code2(record.continent_code) ?? code2(record.continent)
  const location = obj(record.location)
  let lat = coord(location?.latitude, 90) ?? coord(record.latitude, 90) ?? coord(record.lat, 90)
  let lon = coord(location?.longitude, 180) ?? coord(record.longitude, 180) ?? coord(record.lng, 180)
  const city = str(obj(obj(record.city)?.names)?.en) ?? str(record.city)
  if (lat === undefined || lon === undefined) lat = lon = undefined
  if (country !== undefined) country = country.toUpperCase()
  const known = country === undefined ? undefined : countryLocation(country)
  const cont = CONTINENT_CODES.includes(continent?.toUpperCase() as ContinentCode) ? (continent!.toUpperCase() as ContinentCode) : known?.continent
  let source: ClientLocation['source']
  if (lat !== undefined && lon !== undefined) {
    source = 'city'
  } else if (known) {
    source = 'country'
    lat = known.lat
    lon = known.lon
  } else {
    source = 'none'
  }
  if (source === 'none' && country === undefined && cont === undefined) return none(family, networkPrefix)
  return Object.freeze({ country, continent: cont, lat, lon, city: source === 'city' ? city : undefined, source, family, networkPrefix })
}

/**
 * The layout of the first probe address's record that has a country; E_GEODB when records are there
 * but none has a country in a shape countryOf reads (it would locate nobody); `unknown` when no probe
 * address has data.
 */
function detectLayout(reader: Reader<GeoRecord>, path: string): GeoDbLayout {
  let shapeless: { probe: string; record: unknown } | undefined
  for (const probe of PROBES) {
    if (reader.metadata.ipVersion === 4 && probe.includes(':')) continue
    const r = reader.get(probe)
    if (r === null || typeof r !== 'object') {
      if (r !== null) shapeless ??= { probe, record: r }
      continue
    }
    if (countryOf(r) === undefined) {
      shapeless ??= { probe, record: r }
      continue
    }
    return obj(r.country) || obj(r.registered_country) ? 'geoip2' : 'flat'
  }
  if (shapeless) {
    throw new MeridianError('E_GEODB', `GeoIP database ${path} has no country data Meridian can read: ${EXPECTED_SHAPE}; the record for ${shapeless.probe} reads ${JSON.stringify(shapeless.record).slice(0, 120)}`)
  }
  return 'unknown'
}
