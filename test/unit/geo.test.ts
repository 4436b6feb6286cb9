import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Reader } from 'maxmind'
import {
  allCountries,
  allPlaces,
  CONTINENT_CODES,
  countryLocation,
  DEFAULT_GEODB_PATH,
  GeoDb,
  greatCircleKm,
  placeLocation,
  type ClientLocation,
} from '../../src/geo/index.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const TEST_DB = join(ROOT, 'geodb/test/meridian-test.mmdb')
const TEST_CSV = join(ROOT, 'geodb/test/networks.csv')

interface Row {
  network: string
  address: string
  len: number
  family: 4 | 6
  country: string
  continent: string
  lat?: number
  lon?: number
  city?: string
}

const rows: Row[] = readFileSync(TEST_CSV, 'utf8')
  .trim()
  .split('\n')
  .slice(1)
  .map((line) => {
    const [network, country, continent, lat, lon, city] = line.split(',') as [string, string, string, string, string, string]
    const [address, len] = network.split('/') as [string, string]
    return {
      network,
      address,
      len: Number(len),
      family: address.includes(':') ? 6 : 4,
      country,
      continent,
      ...(lat ? { lat: Number(lat), lon: Number(lon) } : {}),
      ...(city ? { city } : {}),
    }
  })

/** The first, second and last address of a network. */
function probes(row: Row): string[] {
  const bits = row.family === 4 ? 32 : 128
  let n = 0n
  if (row.family === 4) for (const o of row.address.split('.')) n = (n << 8n) | BigInt(o)
  else {
    const [h, t = ''] = row.address.split('::') as [string, string?]
    const hs = h ? h.split(':') : []
    const ts = t ? t.split(':') : []
    for (const g of [...hs, ...Array<string>(8 - hs.length - ts.length).fill('0'), ...ts]) n = (n << 16n) | BigInt(parseInt(g, 16))
  }
  const last = n | ((1n << BigInt(bits - row.len)) - 1n)
  const fmt = (v: bigint) =>
    row.family === 4
      ? [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join('.')
      : [112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map((s) => ((v >> s) & 0xffffn).toString(16)).join(':')
  return [fmt(n), fmt(n + 1n), fmt(last)]
}

const openTest = () => GeoDb.open(TEST_DB)

test('the test database maps every network of networks.csv as written', async () => {
  const db = await openTest()
  assert.equal(db.info.layout, 'geoip2')
  assert.equal(db.info.databaseType, 'Meridian-Test-City')
  const continents = new Set<string>()
  for (const row of rows) {
    for (const address of probes(row)) {
      const got = db.locate(address)
      const where = `${address} in ${row.network}`
      assert.equal(got.country, row.country, where)
      assert.equal(got.continent, row.continent, where)
      assert.equal(got.family, row.family, where)
      assert.equal(got.networkPrefix, row.len, `${where}: network prefix`)
      if (row.lat !== undefined) {
        assert.equal(got.source, 'city', where)
        assert.equal(got.lat, row.lat, where)
        assert.equal(got.lon, row.lon, where)
        assert.equal(got.city, row.city, where)
      } else {
        const c = countryLocation(row.country)!
        assert.deepEqual([got.source, got.lat, got.lon, got.city], ['country', c.lat, c.lon, undefined], where)
      }
      continents.add(row.continent)
    }
  }
  assert.deepEqual([...continents].sort(), ['AF', 'AS', 'EU', 'NA', 'OC', 'SA'])
  assert.ok(rows.some((r) => r.family === 6) && rows.some((r) => r.family === 4))
})

test('a few test-database addresses, spelled out', async () => {
  const db = await openTest()
  const pick = (l: ClientLocation) => [l.country, l.continent, l.city, l.source, l.family, l.networkPrefix]
  assert.deepEqual(pick(db.locate('192.0.2.10')), ['GB', 'EU', 'London', 'city', 4, 26])
  assert.deepEqual(pick(db.locate('192.0.2.100')), ['IE', 'EU', 'Dublin', 'city', 4, 26])
  assert.deepEqual(pick(db.locate('192.0.2.170')), ['US', 'NA', 'Ashburn', 'city', 4, 27])
  assert.deepEqual(pick(db.locate('198.51.100.99')), ['BR', 'SA', 'São Paulo', 'city', 4, 26])
  assert.deepEqual(pick(db.locate('198.51.100.130')), ['JP', 'AS', 'Tokyo', 'city', 4, 27])
  assert.deepEqual(pick(db.locate('198.51.100.250')), ['AU', 'OC', 'Sydney', 'city', 4, 26])
  assert.deepEqual(pick(db.locate('203.0.113.1')), ['ZA', 'AF', undefined, 'country', 4, 26])
  assert.deepEqual(pick(db.locate('2001:db8::1')), ['GB', 'EU', 'London', 'city', 6, 48])
  assert.deepEqual(pick(db.locate('2001:DB8:1:ffff::1')), ['IE', 'EU', 'Dublin', 'city', 6, 48])
  assert.deepEqual(pick(db.locate('2001:db8:1ff:ffff:ffff:ffff:ffff:ffff')), ['US', 'NA', 'Ashburn', 'city', 6, 40])
  assert.deepEqual(pick(db.locate('2001:db8:402::53')), ['SG', 'AS', 'Singapore', 'city', 6, 48])
  assert.deepEqual(pick(db.locate('2001:db8:2::1')), ['ZA', 'AF', undefined, 'country', 6, 48])
})

test('an IPv4-mapped IPv6 address is located as IPv4, prefix counted in IPv4 terms', async () => {
  const db = await openTest()
  const got = db.locate('::ffff:192.0.2.1')
  assert.deepEqual([got.country, got.family, got.networkPrefix], ['GB', 4, 26])
  assert.deepEqual([db.locate('::ffff:10.1.1.1').source, db.locate('::ffff:10.1.1.1').networkPrefix], ['none', 8])
})

test('an ECS source prefix masks the address before the lookup', async () => {
  const db = await openTest()
  // 192.0.2.77 is IE, but the client only revealed 192.0.2.0/24: 192.0.2.0 is GB (/26, finer than /24).
  assert.deepEqual([db.locate('192.0.2.77').country, db.locate('192.0.2.77', 24).country, db.locate('192.0.2.77', 24).networkPrefix], ['IE', 'GB', 26])
  assert.equal(db.locate('192.0.2.77', 26).country, 'IE')
  assert.equal(db.locate('2001:db8:401::1', 40).country, 'BR') // 2001:db8:400::
  assert.equal(db.locate('2001:db8:401::1', 48).country, 'AU')
  const zero = db.locate('192.0.2.77', 0)
  assert.deepEqual([zero.source, zero.networkPrefix, zero.family], ['none', 0, 4])
  assert.deepEqual([db.locate('2001:db8::1', 0).source, db.locate('2001:db8::1', 0).family], ['none', 6])
})

test('private, loopback, link-local and other special addresses are none, with their block as prefix', async () => {
  const db = await openTest()
  const cases: [string, 4 | 6, number][] = [
    ['10.1.2.3', 4, 8],
    ['127.0.0.1', 4, 8],
    ['169.254.10.1', 4, 16],
    ['172.16.5.4', 4, 12],
    ['172.31.255.255', 4, 12],
    ['192.168.1.1', 4, 16],
    ['100.64.0.1', 4, 10],
    ['0.0.0.0', 4, 8],
    ['224.0.0.1', 4, 4],
    ['255.255.255.255', 4, 4],
    ['::', 6, 128],
    ['::1', 6, 128],
    ['fe80::1%eth0', 6, 10],
    ['fd12:3456::1', 6, 7],
    ['ff02::1', 6, 8],
  ]
  for (const [address, family, prefix] of cases) {
    const got = db.locate(address)
    assert.deepEqual([got.source, got.country, got.lat, got.family, got.networkPrefix], ['none', undefined, undefined, family, prefix], address)
  }
  // Next to a special block, not in it: a normal lookup (no data here in the test database).
  assert.equal(db.locate('172.32.0.1').networkPrefix !== 12, true)
  // A client subnet wider than the block reaches outside it: looked up, not declared special.
  assert.equal(db.locate('10.0.0.0', 6).networkPrefix !== 8, true)
})

test('documentation addresses without data and unknown addresses are none', async () => {
  const db = await openTest()
  for (const [address, family] of [
    ['192.0.2.200', 4],
    ['203.0.113.250', 4],
    ['2001:db8:ff00::1', 6],
    ['8.8.8.8', 4],
    ['2a00:1450::1', 6],
  ] as const) {
    const got = db.locate(address)
    assert.equal(got.source, 'none', address)
    assert.equal(got.country, undefined, address)
    assert.equal(got.family, family, address)
  }
  assert.equal(db.locate('192.0.2.200').networkPrefix, 26) // the empty /26 of the test database
})

test('the default database maps well-known public addresses to their country', async () => {
  const db = await GeoDb.open(DEFAULT_GEODB_PATH)
  assert.equal(db.info.layout, 'flat')
  // Stable for years (and checked again by scripts/geodb/update-default.mjs before each copy).
  for (const [address, country, continent] of [
    ['8.8.8.8', 'US', 'NA'],
    ['81.2.69.142', 'GB', 'EU'],
    ['1.1.1.1', 'AU', 'OC'],
    ['2001:4860:4860::8888', 'US', 'NA'],
    ['::ffff:8.8.4.4', 'US', 'NA'],
  ] as const) {
    const got = db.locate(address)
    const c = countryLocation(country)!
    assert.deepEqual([got.country, got.continent, got.source, got.lat, got.lon], [country, continent, 'country', c.lat, c.lon], address)
    const bits = got.family === 4 ? 32 : 128
    assert.ok(got.networkPrefix >= 1 && got.networkPrefix <= bits, `${address}: prefix ${got.networkPrefix}`)
  }
  // No data for private or documentation space, even where this build of the database has some (2001:db8::/32).
  assert.equal(db.locate('10.0.0.1').source, 'none')
  assert.deepEqual([db.locate('192.0.2.1').source, db.locate('2001:db8::1').source, db.locate('2001:db8::1').networkPrefix], ['none', 'none', 32])
})

test('documentation addresses are looked up only in test databases, unless told otherwise', async () => {
  const never = await GeoDb.open(TEST_DB, { documentation: 'none' })
  assert.deepEqual([never.locate('192.0.2.1').source, never.locate('192.0.2.1').networkPrefix], ['none', 24])
  assert.deepEqual([never.locate('2001:db8::1').source, never.locate('2001:db8::1').networkPrefix], ['none', 32])
  assert.equal((await GeoDb.open(TEST_DB, { documentation: 'lookup' })).locate('192.0.2.1').country, 'GB')
})

test('a directory opens its geo-whois-asn-country.mmdb', async () => {
  const db = await GeoDb.open(join(ROOT, 'geodb'))
  assert.equal(db.info.path, DEFAULT_GEODB_PATH)
  assert.equal(db.locate('8.8.8.8').country, 'US')
})

test('a missing or corrupt database file is refused with its path in the message', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meridian-geo-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const missing = join(dir, 'nope.mmdb')
  await assert.rejects(GeoDb.open(missing), (err: Error) => err.message.includes(missing) && /does not exist/.test(err.message))
  const good = readFileSync(TEST_DB)
  const cases: [string, Buffer][] = [
    ['empty.mmdb', Buffer.alloc(0)],
    ['text.mmdb', Buffer.from('this is not a database\n'.repeat(50))],
    ['truncated.mmdb', good.subarray(0, 1000)],
    ['no-tree.mmdb', good.subarray(good.length - 400)],
    ['zeros.mmdb', Buffer.alloc(4096)],
  ]
  for (const [name, bytes] of cases) {
    const file = join(dir, name)
    writeFileSync(file, bytes)
    await assert.rejects(GeoDb.open(file), (err: Error) => err.message.includes(file) && /not a valid MaxMind DB/.test(err.message), name)
  }
})

test('close() ends an instance; open() gives an independent new one', async () => {
  const a = await openTest()
  const b = await openTest()
  assert.notEqual(a, b)
  assert.equal(a.locate('192.0.2.1').country, 'GB')
  a.close()
  assert.throws(() => a.locate('192.0.2.1'), /closed/)
  assert.equal(b.locate('192.0.2.1').country, 'GB')
})

test('lookups are cached, keyed by address and prefix, and the cache is bounded', async () => {
  const db = await GeoDb.open(TEST_DB, { cacheSize: 3 })
  const first = db.locate('198.51.100.130')
  assert.equal(db.locate('198.51.100.130'), first) // the same frozen object
  assert.ok(Object.isFrozen(first))
  assert.notEqual(db.locate('198.51.100.130', 24), first)
  for (let i = 0; i < 20; i++) db.locate(`198.51.100.${i}`)
  assert.equal(db.cacheEntries, 3)
})

test('bad input: not an address, or a prefix out of range', async () => {
  const db = await openTest()
  for (const bad of ['', 'localhost', '1.2.3', '256.1.1.1', '1.2.3.4/24', '2001:db8::g']) assert.throws(() => db.locate(bad), TypeError, bad)
  assert.throws(() => db.locate('192.0.2.1', 33), RangeError)
  assert.throws(() => db.locate('2001:db8::1', 129), RangeError)
  assert.throws(() => db.locate('192.0.2.1', -1), RangeError)
  assert.throws(() => db.locate('192.0.2.1', 1.5), RangeError)
})

test('countryLocation resolves ISO codes to a centroid and MaxMind continent', () => {
  assert.deepEqual(countryLocation('GB'), { code: 'GB', lat: 54, lon: -2, continent: 'EU', name: 'United Kingdom' })
  assert.equal(countryLocation('gb')?.code, 'GB')
  assert.equal(countryLocation('ZZ'), undefined)
  assert.equal(countryLocation('GBR'), undefined)
  const continents: Record<string, string> = { US: 'NA', MX: 'NA', PA: 'NA', JM: 'NA', BR: 'SA', AR: 'SA', JP: 'AS', SG: 'AS', DE: 'EU', RU: 'EU', AU: 'OC', ZA: 'AF', EG: 'AF', AQ: 'AN', UM: 'OC', TL: 'OC' }
  for (const [code, continent] of Object.entries(continents)) assert.equal(countryLocation(code)?.continent, continent, code)
  const all = allCountries()
  assert.ok(all.size >= 250, `${all.size} countries`) // 249 ISO 3166-1 codes, XK, and AN
  for (const c of all.values()) assert.ok(CONTINENT_CODES.includes(c.continent), c.code)
  for (const row of rows) assert.equal(countryLocation(row.country)?.continent, row.continent, row.network)
})

test('placeLocation resolves three-letter metro codes, each near its country', () => {
  const lhr = placeLocation('lhr')!
  assert.deepEqual([lhr.code, lhr.country, lhr.continent], ['LHR', 'GB', 'EU'])
  assert.equal(placeLocation('XXX'), undefined)
  assert.equal(placeLocation('GB'), undefined)
  for (const p of allPlaces().values()) {
    const km = greatCircleKm(p, countryLocation(p.country)!)
    assert.ok(km < 3000, `${p.code} is ${Math.round(km)} km from the centroid of ${p.country}`)
  }
})

test('great-circle distance: London to Tokyo is about 9,560 km', () => {
  const london = { lat: 51.5074, lon: -0.1278 }
  const tokyo = { lat: 35.6762, lon: 139.6503 }
  const km = greatCircleKm(london, tokyo)
  assert.ok(Math.abs(km - 9560) <= 95.6, `${km}`)
  assert.equal(greatCircleKm(tokyo, london), km)
  assert.equal(greatCircleKm(london, london), 0)
  assert.ok(Math.abs(greatCircleKm({ lat: 0, lon: 0 }, { lat: 0, lon: 180 }) - Math.PI * 6371) < 1e-6)
  assert.ok(Math.abs(greatCircleKm({ lat: 90, lon: 0 }, { lat: -90, lon: 0 }) - Math.PI * 6371) < 1e-6)
})

test('the maxmind reader sees the test database as built: prefixes relative to IPv4, mapped alias', () => {
  const reader = new Reader<Record<string, unknown>>(readFileSync(TEST_DB))
  assert.equal(reader.metadata.ipVersion, 6)
  assert.equal(reader.metadata.buildEpoch.toISOString(), '2025-01-01T00:00:00.000Z')
  const [rec, prefix] = reader.getWithPrefixLength('192.0.2.1')
  assert.deepEqual(rec, { city: { names: { en: 'London' } }, continent: { code: 'EU' }, country: { iso_code: 'GB' }, location: { latitude: 51.5074, longitude: -0.1278 } })
  assert.equal(prefix, 26)
  assert.deepEqual(reader.getWithPrefixLength('::ffff:192.0.2.1'), [rec, 122])
  assert.deepEqual(reader.getWithPrefixLength('2001:db8:200::1')[1], 40)
})

test('the test database build is deterministic and matches the committed file', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meridian-geo-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const script = join(ROOT, 'scripts/geodb/build-test-db.mjs')
  const build = (out: string) => {
    execFileSync(process.execPath, [script, '--out', out], { cwd: dir, stdio: 'pipe' })
    return readFileSync(out)
  }
  const one = build(join(dir, 'one.mmdb'))
  const two = build(join(dir, 'two.mmdb'))
  assert.ok(one.equals(two), 'two builds differ')
  assert.ok(one.equals(readFileSync(TEST_DB)), 'geodb/test/meridian-test.mmdb is stale: run node scripts/geodb/build-test-db.mjs')
})

test('the writer also produces 28- and 32-bit records that read back', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meridian-geo-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  for (const size of [28, 32]) {
    const out = join(dir, `${size}.mmdb`)
    // the script reads every network back with maxmind and exits non-zero on any difference
    execFileSync(process.execPath, [join(ROOT, 'scripts/geodb/build-test-db.mjs'), '--record-size', String(size), '--out', out], { stdio: 'pipe' })
    const reader = new Reader<Record<string, unknown>>(readFileSync(out))
    assert.equal(reader.metadata.recordSize, size)
    assert.deepEqual(reader.getWithPrefixLength('2001:db8:401::1'), [{ city: { names: { en: 'Sydney' } }, continent: { code: 'OC' }, country: { iso_code: 'AU' }, location: { latitude: -33.8688, longitude: 151.2093 } }, 48])
  }
})

test('build-test-db --epoch changes the build time alone; --epoch takes seconds, a date, or a time with its zone', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meridian-geo-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const script = join(ROOT, 'scripts/geodb/build-test-db.mjs')
  const out = join(dir, 'later.mmdb')
  execFileSync(process.execPath, [script, '--epoch', '2025-06-01', '--out', out], { stdio: 'pipe' })
  const later = readFileSync(out)
  const committed = readFileSync(TEST_DB)
  const metadataAt = (b: Buffer) => b.lastIndexOf(Buffer.from('\xab\xcd\xefMaxMind.com', 'latin1'))
  assert.ok(later.subarray(0, metadataAt(later)).equals(committed.subarray(0, metadataAt(committed))), 'tree and data are the same')
  const { metadata } = new Reader<Record<string, unknown>>(later)
  assert.equal(metadata.buildEpoch.toISOString(), '2025-06-01T00:00:00.000Z')
  assert.deepEqual({ ...metadata, buildEpoch: null }, { ...new Reader<Record<string, unknown>>(committed).metadata, buildEpoch: null })

  const { parseEpoch, BUILD_EPOCH } = (await import(pathToFileURL(script).href)) as { parseEpoch: (s: string) => number; BUILD_EPOCH: number }
  assert.equal(BUILD_EPOCH, Date.parse('2025-01-01T00:00:00Z') / 1000)
  assert.equal(parseEpoch('1748736000'), 1748736000)
  assert.equal(parseEpoch('2025-06-01'), 1748736000)
  assert.equal(parseEpoch('2025-06-01T12:00:00Z'), 1748736000 + 12 * 3600)
  assert.equal(parseEpoch('2025-06-01T12:00:00+02:00'), 1748736000 + 10 * 3600)
  assert.equal(parseEpoch('2024-02-29'), Date.parse('2024-02-29T00:00:00Z') / 1000)
  // A time without a zone would depend on TZ; 2025-02-30 is not 2025-03-02; the file holds whole seconds.
  for (const bad of ['2025-06-01T12:00:00', '2025-02-30', '2025-13-01', '2025-06-01T12:00:00.5Z', '-5', 'June 1, 2025', '']) {
    assert.throws(() => parseEpoch(bad), /--epoch/, bad)
  }
})

test('the writer refuses overlapping networks and networks with host bits set', async () => {
  const { writeMmdb } = (await import(pathToFileURL(join(ROOT, 'scripts/geodb/mmdb-writer.mjs')).href)) as {
    writeMmdb: (o: { networks: { network: string; data: unknown }[]; databaseType: string; buildEpoch: number }) => Buffer
  }
  const build = (...networks: string[]) => writeMmdb({ networks: networks.map((network) => ({ network, data: { x: network } })), databaseType: 't', buildEpoch: 0 })
  assert.ok(build('192.0.2.0/25', '192.0.2.128/25').length > 0)
  assert.throws(() => build('192.0.2.0/24', '192.0.2.64/26'), /overlaps|inside/)
  assert.throws(() => build('192.0.2.64/26', '192.0.2.0/24'), /overlaps|inside/)
  assert.throws(() => build('2001:db8::/32', '2001:db8:1::/48'), /overlaps|inside/)
  assert.throws(() => build('192.0.2.1/24'), /host bits/)
  assert.throws(() => build('::ffff:192.0.2.0/120'), /IPv4/)
})

test('countries.json and the default database are what their scripts produce', () => {
  for (const script of ['build-countries.mjs', 'update-default.mjs']) {
    execFileSync(process.execPath, [join(ROOT, 'scripts/geodb', script), '--check'], { stdio: 'pipe' })
  }
})

test('the common record shapes are read (GeoIP2, registered_country, ip-location-db, IPinfo); a database of no known shape is refused with E_GEODB', async () => {
  const { writeMmdb } = (await import(pathToFileURL(join(ROOT, 'scripts/geodb/mmdb-writer.mjs')).href)) as {
    writeMmdb: (o: { networks: { network: string; data: unknown }[]; databaseType: string; buildEpoch: number }) => Buffer
  }
  const dir = mkdtempSync(join(tmpdir(), 'meridian-shapes-'))
  try {
    /** A real .mmdb file holding `data` for 81.2.69.0/24 (a probe address's network), opened from disk. */
    const open = async (name: string, data: unknown) => {
      const file = join(dir, `${name}.mmdb`)
      writeFileSync(file, writeMmdb({ networks: [{ network: '81.2.69.0/24', data }], databaseType: `${name}-Country`, buildEpoch: 0 }))
      return GeoDb.open(file)
    }
    const cases: [string, unknown, { country: string; continent: string; source: string; layout: string; lat?: number }][] = [
      ['geoip2', { country: { iso_code: 'GB' }, continent: { code: 'EU' } }, { country: 'GB', continent: 'EU', source: 'country', layout: 'geoip2' }],
      ['registered', { registered_country: { iso_code: 'GB' } }, { country: 'GB', continent: 'EU', source: 'country', layout: 'geoip2' }],
      ['ip-location-db', { country_code: 'GB' }, { country: 'GB', continent: 'EU', source: 'country', layout: 'flat' }],
      ['ipinfo-country', { country: 'GB', country_name: 'United Kingdom', continent: 'EU', continent_name: 'Europe' }, { country: 'GB', continent: 'EU', source: 'country', layout: 'flat' }],
      ['ipinfo-lite', { country: 'United Kingdom', country_code: 'GB', continent: 'Europe', continent_code: 'EU', asn: 'AS20712' }, { country: 'GB', continent: 'EU', source: 'country', layout: 'flat' }],
      ['ipinfo-location', { country: 'GB', city: 'London', lat: '51.5085', lng: '-0.1257' }, { country: 'GB', continent: 'EU', source: 'city', layout: 'flat', lat: 51.5085 }],
    ]
    for (const [name, data, want] of cases) {
      const db = await open(name, data)
      try {
        const got = db.locate('81.2.69.142')
        assert.equal(db.info.layout, want.layout, name)
        assert.equal(got.country, want.country, name)
        assert.equal(got.continent, want.continent, name)
        assert.equal(got.source, want.source, name)
        if (want.lat !== undefined) assert.equal(got.lat, want.lat, name)
      } finally {
        db.close()
      }
    }
    for (const [name, data] of [
      ['country-name', { country: 'United Kingdom' }],
      ['asn', { autonomous_system_number: 20712, autonomous_system_organization: 'Andrews & Arnold' }],
    ] as const) {
      await assert.rejects(open(name, data), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'E_GEODB', name)
        assert.match(err.message, /has no country data Meridian can read: expected a country as GeoIP2 `country.iso_code`.*`country_code`.*two-letter code/, name)
        assert.match(err.message, /the record for 81\.2\.69\.142 reads \{/, name)
        return true
      })
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
