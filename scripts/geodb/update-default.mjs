#!/usr/bin/env node
/**
 * Copies the default GeoIP database out of the installed npm package into geodb/:
 *   node_modules/@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb -> geodb/geo-whois-asn-country.mmdb
 *   node_modules/@ip-location-db/geo-whois-asn-country-mmdb/NRO_LICENSE              -> geodb/LICENSE-geo-whois-asn-country.txt
 * and records where it came from in geodb/geo-whois-asn-country.source.json.
 *
 *   node scripts/geodb/update-default.mjs          copy, then check the copy (see below)
 *   node scripts/geodb/update-default.mjs --check  exit 1 if geodb/ does not hold what the installed package has
 *
 * To take a newer database: bump @ip-location-db/geo-whois-asn-country-mmdb in package.json, npm install, run this,
 * review and commit the three files.
 *
 * Checks on the copy: it opens with the `maxmind` reader, its records carry `country_code`, a few stable
 * addresses resolve, and every country code in it has an entry in geodb/countries.json (else run
 * build-countries.mjs, or add the code to its EXTRA_CODES).
 */
import { createHash } from 'node:crypto'
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Reader } from 'maxmind'
import { formatBytes } from './mmdb-writer.mjs'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const require = createRequire(join(root, 'package.json'))
const PKG = '@ip-location-db/geo-whois-asn-country-mmdb'
const FILE = 'geo-whois-asn-country.mmdb'

const pkgDir = dirname(require.resolve(`${PKG}/package.json`))
const src = join(pkgDir, FILE)
const dst = join(root, 'geodb', FILE)
const licenceSrc = join(pkgDir, 'NRO_LICENSE')
const licenceDst = join(root, 'geodb/LICENSE-geo-whois-asn-country.txt')
const sourceJson = join(root, 'geodb/geo-whois-asn-country.source.json')

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex')

/**
 * Every distinct record of an MMDB, found by walking its tree, with one address that resolves to it (any
 * address of the network will do, so bits below the record's depth are left as they fall).
 */
export function distinctRecords(buffer) {
  const reader = new Reader(buffer)
  const { nodeCount, recordSize, ipVersion } = reader.metadata
  const nodeBytes = recordSize / 4
  const read = (node, right) => {
    const o = node * nodeBytes + (right && recordSize !== 28 ? nodeBytes / 2 : 0)
    if (recordSize === 24) return buffer.readUIntBE(o, 3)
    if (recordSize === 32) return buffer.readUInt32BE(o)
    return right ? (buffer[o + 3] & 0x0f) * 2 ** 24 + buffer.readUIntBE(o + 4, 3) : (buffer[o + 3] >> 4) * 2 ** 24 + buffer.readUIntBE(o, 3)
  }
  const bits = ipVersion === 6 ? 128 : 32
  const seenNodes = new Uint8Array(nodeCount)
  const seenData = new Map()
  const path = new Uint8Array(bits / 8)
  const walk = (node, depth) => {
    if (seenNodes[node]) return
    seenNodes[node] = 1
    for (const right of [0, 1]) {
      const byte = depth >> 3
      const mask = 1 << (7 - (depth & 7))
      path[byte] = right ? path[byte] | mask : path[byte] & ~mask
      const v = read(node, right)
      if (v < nodeCount) walk(v, depth + 1)
      else if (v > nodeCount && !seenData.has(v)) seenData.set(v, formatBytes(path))
    }
  }
  walk(0, 0)
  return [...seenData.values()].map((address) => ({ address, record: reader.get(address) }))
}

/** Addresses whose country has been stable for years; a change here deserves a look before committing. */
const EXPECT = { '8.8.8.8': 'US', '1.0.0.1': 'AU', '2001:4860:4860::8888': 'US', '81.2.69.142': 'GB' }

export function checkDefaultDb(buffer) {
  const reader = new Reader(buffer)
  const problems = []
  for (const [address, cc] of Object.entries(EXPECT)) {
    const got = reader.get(address)?.country_code
    if (got !== cc) problems.push(`${address}: expected ${cc}, database says ${got ?? 'nothing'}`)
  }
  const countries = JSON.parse(readFileSync(join(root, 'geodb/countries.json'), 'utf8'))
  const codes = new Set()
  for (const { address, record } of distinctRecords(buffer)) {
    const cc = record?.country_code
    if (typeof cc !== 'string') problems.push(`${address}: record without country_code: ${JSON.stringify(record)}`)
    else codes.add(cc)
  }
  for (const cc of [...codes].sort()) if (!countries[cc]) problems.push(`country ${cc} is in the database but not in geodb/countries.json`)
  return { problems, codes: codes.size, metadata: reader.metadata }
}

function main(argv) {
  const version = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')).version
  const fresh = readFileSync(src)
  if (argv.includes('--check')) {
    const same = (a, b) => {
      try {
        return readFileSync(a).equals(readFileSync(b))
      } catch {
        return false
      }
    }
    const ok = same(src, dst) && same(licenceSrc, licenceDst)
    process.stdout.write(ok ? `geodb/${FILE} matches ${PKG}@${version}\n` : `geodb/${FILE} differs from ${PKG}@${version}: run node scripts/geodb/update-default.mjs\n`)
    return ok ? 0 : 1
  }
  const { problems, codes, metadata } = checkDefaultDb(fresh)
  if (problems.length) {
    process.stderr.write(`${PKG}@${version}: not copied:\n  ${problems.join('\n  ')}\n`)
    return 1
  }
  copyFileSync(src, dst)
  copyFileSync(licenceSrc, licenceDst)
  const info = {
    file: FILE,
    package: PKG,
    version,
    sha256: sha256(fresh),
    bytes: fresh.length,
    database_type: metadata.databaseType,
    build_epoch: metadata.buildEpoch.toISOString(),
    countries: codes,
  }
  writeFileSync(sourceJson, JSON.stringify(info, null, 2) + '\n')
  process.stdout.write(`copied ${PKG}@${version} to geodb/${FILE} (${fresh.length} bytes, ${codes} countries, built ${info.build_epoch})\n`)
  return 0
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = main(process.argv.slice(2))
