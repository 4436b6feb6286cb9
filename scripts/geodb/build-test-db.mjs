#!/usr/bin/env node
/**
 * Builds geodb/test/meridian-test.mmdb from geodb/test/networks.csv: documentation networks (RFC 5737,
 * RFC 3849) mapped to fixed places, in the GeoIP2 City record layout:
 *   { city: { names: { en } }, continent: { code }, country: { iso_code }, location: { latitude, longitude } }
 * (`city` and `location` only where the CSV row has them).
 *
 *   node scripts/geodb/build-test-db.mjs                 write geodb/test/meridian-test.mmdb, read it back, check it
 *   node scripts/geodb/build-test-db.mjs --check         exit 1 unless the committed file is byte-identical to a fresh build
 *   node scripts/geodb/build-test-db.mjs --out F         write to F instead
 *   node scripts/geodb/build-test-db.mjs --csv F         read networks from F instead
 *   node scripts/geodb/build-test-db.mjs --record-size N force 24-, 28- or 32-bit records (default: the smallest that fits)
 *   node scripts/geodb/build-test-db.mjs --epoch E       build_epoch E: seconds since 1970, an ISO 8601 date (2025-06-01) or a
 *                                                        time with its zone (2025-06-01T12:00:00Z); default BUILD_EPOCH, 2025-01-01
 *
 * The output is a pure function of the CSV and the epoch (and countries.json, used to check continents): build_epoch
 * is fixed unless --epoch gives another (a test can then tell two databases apart by their build time), networks are
 * sorted, nothing else varies. After writing, every network is read back with the `maxmind` package.
 */
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { deepStrictEqual, strictEqual } from 'node:assert/strict'
import { Reader } from 'maxmind'
import { formatBytes, parseNetwork, writeMmdb } from './mmdb-writer.mjs'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

/** 2025-01-01T00:00:00Z. Fixed so that the file depends only on its input. */
export const BUILD_EPOCH = 1735689600
export const DATABASE_TYPE = 'Meridian-Test-City'
const HEADER = 'network,country_code,continent_code,latitude,longitude,city'
const CONTINENTS = new Set(['AF', 'AN', 'AS', 'EU', 'NA', 'OC', 'SA'])

/**
 * `--epoch`: whole seconds since 1970, a date (`2025-06-01`, midnight UTC) or a UTC time with its zone
 * (`2025-06-01T12:00:00Z`, `...+02:00`); a time without a zone is refused (it would depend on TZ).
 */
export function parseEpoch(text) {
  if (/^\d+$/.test(text)) {
    const n = Number(text)
    if (n > 8.64e12) throw new Error(`--epoch ${text}: too large (past JavaScript's last date)`)
    return n
  }
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/.test(text)) {
    throw new Error(`--epoch ${text}: expected seconds since 1970, a date (2025-06-01) or a time with its zone (2025-06-01T12:00:00Z)`)
  }
  const [y, m, d] = text.slice(0, 10).split('-').map(Number)
  const day = new Date(Date.UTC(y, m - 1, d))
  const ms = Date.parse(text)
  // Date.parse takes 2025-02-30 for 2025-03-02.
  if (!Number.isFinite(ms) || day.getUTCMonth() !== m - 1 || day.getUTCDate() !== d) throw new Error(`--epoch ${text}: not a valid date`)
  if (ms < 0 || ms % 1000 !== 0) throw new Error(`--epoch ${text}: must be a whole second, not before 1970`)
  return ms / 1000
}

/** Parses and checks the CSV; returns [{ network, data, line }]. */
export function readNetworks(csvText, file, countries) {
  const lines = csvText.split(/\r?\n/)
  if (lines[0] !== HEADER) throw new Error(`${file}:1: header must be exactly: ${HEADER}`)
  const out = []
  lines.slice(1).forEach((raw, i) => {
    const line = i + 2
    const where = `${file}:${line}`
    if (raw.trim() === '' || raw.startsWith('#')) return
    if (raw.includes('"')) throw new Error(`${where}: quoted fields are not supported`)
    const f = raw.split(',')
    if (f.length !== 6) throw new Error(`${where}: expected 6 fields, got ${f.length}`)
    const [network, country, continent, latText, lonText, city] = f.map((s) => s.trim())
    try {
      parseNetwork(network)
    } catch (err) {
      throw new Error(`${where}: ${err.message}`)
    }
    if (!/^[A-Z]{2}$/.test(country) || !countries[country]) throw new Error(`${where}: unknown country code ${JSON.stringify(country)}`)
    if (!CONTINENTS.has(continent)) throw new Error(`${where}: continent must be one of ${[...CONTINENTS].join(' ')}`)
    if (countries[country].continent !== continent) {
      throw new Error(`${where}: ${country} is in ${countries[country].continent} (geodb/countries.json), not ${continent}`)
    }
    if ((latText === '') !== (lonText === '')) throw new Error(`${where}: give both latitude and longitude, or neither`)
    let location
    if (latText !== '') {
      const latitude = Number(latText)
      const longitude = Number(lonText)
      if (!Number.isFinite(latitude) || Math.abs(latitude) > 90) throw new Error(`${where}: bad latitude ${latText}`)
      if (!Number.isFinite(longitude) || Math.abs(longitude) > 180) throw new Error(`${where}: bad longitude ${lonText}`)
      location = { latitude, longitude }
    }
    if (city && !location) throw new Error(`${where}: a city needs coordinates`)
    // Keys in MaxMind's order (alphabetical), so records look like GeoIP2 City records.
    const data = {
      ...(city ? { city: { names: { en: city } } } : {}),
      continent: { code: continent },
      country: { iso_code: country },
      ...(location ? { location } : {}),
    }
    out.push({ network, data, line })
  })
  if (out.length === 0) throw new Error(`${file}: no networks`)
  return out
}

export function buildTestDb({ csvPath = join(root, 'geodb/test/networks.csv'), recordSize, buildEpoch = BUILD_EPOCH } = {}) {
  const countries = JSON.parse(readFileSync(join(root, 'geodb/countries.json'), 'utf8'))
  const networks = readNetworks(readFileSync(csvPath, 'utf8'), relative(process.cwd(), csvPath) || csvPath, countries)
  const buffer = writeMmdb({
    networks,
    databaseType: DATABASE_TYPE,
    description: { en: 'Meridian test database: documentation networks (RFC 5737, RFC 3849) at fixed places. Not real data.' },
    languages: ['en'],
    buildEpoch,
    recordSize,
  })
  return { buffer, networks }
}

// ---------------------------------------------------------------------------------------------- read-back check

function addressAt(net, offsetFromStart, fromEnd = false) {
  const { bytes, prefix, family } = parseNetwork(net)
  const b = Uint8Array.from(bytes)
  // set (fromEnd) or keep clear the host bits, then add offset within the host part
  if (fromEnd) for (let i = prefix; i < 128; i++) b[i >> 3] |= 1 << (7 - (i & 7))
  let carry = offsetFromStart
  for (let i = 15; i >= 0 && carry !== 0; i--) {
    const v = b[i] + (fromEnd ? -carry : carry)
    b[i] = ((v % 256) + 256) % 256
    carry = fromEnd ? (v < 0 ? 1 : 0) : v > 255 ? 1 : 0
  }
  return formatBytes(family === 4 ? b.slice(12) : b)
}

/** Reads `buffer` back with the maxmind package and checks every network of `networks` resolves as written. */
export function verifyTestDb(buffer, networks, buildEpoch = BUILD_EPOCH) {
  const reader = new Reader(buffer)
  strictEqual(reader.metadata.databaseType, DATABASE_TYPE)
  strictEqual(reader.metadata.ipVersion, 6)
  strictEqual(reader.metadata.buildEpoch.getTime(), buildEpoch * 1000)
  let checked = 0
  for (const { network, data } of networks) {
    const { len, family, prefix: treePrefix } = parseNetwork(network)
    const probes = treePrefix < 128 ? [addressAt(network, 0), addressAt(network, 1), addressAt(network, 0, true)] : [addressAt(network, 0)]
    for (const address of probes) {
      const [record, prefix] = reader.getWithPrefixLength(address)
      deepStrictEqual(record, data, `${address} (in ${network})`)
      // For an IPv4 address in an IPv6 tree, maxmind counts the prefix from the start of ::/96.
      strictEqual(prefix, len, `${address}: prefix length`)
      if (family === 4) {
        const [mapped, mappedPrefix] = reader.getWithPrefixLength(`::ffff:${address}`)
        deepStrictEqual(mapped, data, `::ffff:${address} (IPv4-mapped alias of ${network})`)
        strictEqual(mappedPrefix, 96 + len, `::ffff:${address}: prefix length`)
      }
      checked++
    }
  }
  for (const unknown of ['192.0.2.200', '203.0.113.250', '8.8.8.8', '2001:db8:ff00::1', '2001:4860::1', '::1']) {
    strictEqual(reader.get(unknown), null, `${unknown} must have no data`)
  }
  return checked
}

function main(argv) {
  const opt = (name) => {
    const i = argv.indexOf(name)
    return i >= 0 ? argv[i + 1] : undefined
  }
  const out = resolve(opt('--out') ?? join(root, 'geodb/test/meridian-test.mmdb'))
  const csvPath = resolve(opt('--csv') ?? join(root, 'geodb/test/networks.csv'))
  const recordSize = opt('--record-size') === undefined ? undefined : Number(opt('--record-size'))
  const buildEpoch = opt('--epoch') === undefined ? BUILD_EPOCH : parseEpoch(opt('--epoch'))
  const { buffer, networks } = buildTestDb({ csvPath, recordSize, buildEpoch })
  const checked = verifyTestDb(buffer, networks, buildEpoch)
  const sha = createHash('sha256').update(buffer).digest('hex')
  if (argv.includes('--check')) {
    let current
    try {
      current = readFileSync(out)
    } catch {
      current = Buffer.alloc(0)
    }
    if (!current.equals(buffer)) {
      process.stderr.write(`${out} differs from a fresh build of ${csvPath}: run node scripts/geodb/build-test-db.mjs\n`)
      return 1
    }
    process.stdout.write(`${out} is up to date (sha256 ${sha})\n`)
    return 0
  }
  writeFileSync(out, buffer)
  const built = new Date(buildEpoch * 1000).toISOString()
  process.stdout.write(`wrote ${out}: ${networks.length} networks, ${buffer.length} bytes, built ${built}, sha256 ${sha}; ${checked} addresses read back\n`)
  return 0
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    process.exitCode = main(process.argv.slice(2))
  } catch (err) {
    process.stderr.write(`build-test-db: ${err.message}\n`)
    process.exitCode = 1
  }
}
