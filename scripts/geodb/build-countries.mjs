#!/usr/bin/env node
/**
 * Builds geodb/countries.json from the world-countries package (ODbL-1.0), and copies that package's
 * licence to geodb/LICENSE-world-countries.md (countries.json is a Derivative Database under the ODbL):
 *   { "GB": { "lat": 54, "lon": -2, "continent": "EU", "name": "United Kingdom" }, ... }
 *
 * One entry per ISO 3166-1 alpha-2 code world-countries knows (the 249 officially assigned codes, plus
 * XK for Kosovo, which MaxMind and the RIRs use), and the few extra codes GeoIP databases still emit.
 * Continents use MaxMind's (GeoNames') seven codes: AF AN AS EU NA OC SA.
 *
 *   node scripts/geodb/build-countries.mjs            write geodb/countries.json
 *   node scripts/geodb/build-countries.mjs --check    exit 1 if geodb/countries.json is not what this would write
 *   node scripts/geodb/build-countries.mjs --out F    write to F instead
 *
 * The output is deterministic: keys sorted, coordinates as world-countries gives them.
 */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const require = createRequire(join(root, 'package.json'))

/** world-countries `region` (and, for the Americas, `subregion`) -> continent code. */
function continentOf(c) {
  switch (c.region) {
    case 'Africa':
      return 'AF'
    case 'Antarctic':
      return 'AN'
    case 'Asia':
      return 'AS'
    case 'Europe':
      return 'EU'
    case 'Oceania':
      return 'OC'
    case 'Americas':
      // North America, Central America and the Caribbean are all NA, as MaxMind has them.
      return c.subregion === 'South America' ? 'SA' : 'NA'
    default:
      throw new Error(`${c.cca2}: unknown world-countries region ${JSON.stringify(c.region)}`)
  }
}

/**
 * Where world-countries' UN-style regions and MaxMind's (GeoNames') continents disagree, MaxMind wins, so
 * that the continent of a country here is the continent a GeoIP2 database reports for it.
 */
const CONTINENT_OVERRIDES = {
  CC: 'AS', // Cocos (Keeling) Islands: world-countries Oceania
  IO: 'AS', // British Indian Ocean Territory: world-countries Africa
  TL: 'OC', // Timor-Leste: world-countries Asia
  UM: 'OC', // United States Minor Outlying Islands (Pacific atolls): world-countries North America
}

/**
 * Codes no longer (or never) in ISO 3166-1 that GeoIP databases still return. Each borrows the
 * coordinates of a current entry of world-countries.
 */
const EXTRA_CODES = {
  AN: { like: 'CW', name: 'Netherlands Antilles' }, // deleted from ISO 3166-1 in 2010; still in geo-whois-asn-country
}

const round = (x) => Math.round(x * 1e6) / 1e6

export function buildCountries() {
  const data = JSON.parse(readFileSync(require.resolve('world-countries/countries.json'), 'utf8'))
  const out = {}
  for (const c of data) {
    const code = c.cca2
    if (!/^[A-Z]{2}$/.test(code)) throw new Error(`bad cca2 ${JSON.stringify(code)}`)
    if (out[code]) throw new Error(`${code} appears twice in world-countries`)
    const [lat, lon] = c.latlng ?? []
    if (!Number.isFinite(lat) || !Number.isFinite(lon) || Math.abs(lat) > 90 || Math.abs(lon) > 180) {
      throw new Error(`${code}: bad latlng ${JSON.stringify(c.latlng)}`)
    }
    out[code] = { lat: round(lat), lon: round(lon), continent: CONTINENT_OVERRIDES[code] ?? continentOf(c), name: c.name.common }
  }
  for (const [code, { like, name }] of Object.entries(EXTRA_CODES)) {
    if (out[code]) throw new Error(`${code} is now in world-countries; drop it from EXTRA_CODES`)
    const base = out[like]
    if (!base) throw new Error(`${code}: ${like} is not in world-countries`)
    out[code] = { ...base, name }
  }
  for (const code of Object.keys(CONTINENT_OVERRIDES)) {
    if (!out[code]) throw new Error(`override for ${code}, which world-countries no longer has`)
  }
  const sorted = {}
  for (const code of Object.keys(out).sort()) sorted[code] = out[code]
  // One country per line: small diffs when world-countries changes.
  const lines = Object.entries(sorted).map(([code, v]) => `  ${JSON.stringify(code)}: ${JSON.stringify(v)}`)
  return `{\n${lines.join(',\n')}\n}\n`
}

function main(argv) {
  const check = argv.includes('--check')
  const outIdx = argv.indexOf('--out')
  const out = outIdx >= 0 ? resolve(argv[outIdx + 1]) : join(root, 'geodb/countries.json')
  const text = buildCountries()
  if (check) {
    let current = ''
    try {
      current = readFileSync(out, 'utf8')
    } catch {
      // missing: differs
    }
    let licence = ''
    try {
      licence = readFileSync(join(root, 'geodb/LICENSE-world-countries.md'), 'utf8')
    } catch {
      // missing: differs
    }
    if (outIdx < 0 && licence !== readFileSync(require.resolve('world-countries/LICENSE'), 'utf8')) current = ''
    if (current !== text) {
      process.stderr.write(`${out} is out of date: run node scripts/geodb/build-countries.mjs\n`)
      return 1
    }
    process.stdout.write(`${out} is up to date\n`)
    return 0
  }
  writeFileSync(out, text)
  if (outIdx < 0) copyFileSync(require.resolve('world-countries/LICENSE'), join(root, 'geodb/LICENSE-world-countries.md'))
  const version = JSON.parse(readFileSync(require.resolve('world-countries/package.json'), 'utf8')).version
  process.stdout.write(`wrote ${out}: ${Object.keys(JSON.parse(text)).length} countries from world-countries ${version}\n`)
  return 0
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = main(process.argv.slice(2))
