#!/usr/bin/env node
/**
 * The bench's query traffic: client networks that geolocate, and a dnsperf `-B` input file.
 *
 * dnsperf sends the same EDNS options with every query of a plain text input file (`-E`), so it cannot
 * vary EDNS Client Subnet per query. Its `-B` mode instead reads raw DNS messages in the TCP stream
 * format (RFC 1035 §4.2.2: each message preceded by its 2-octet length) and sends each as it is,
 * rewriting only the ID. So every query here carries its own ECS option.
 *
 * The mix (of `count` messages, shuffled, from a seeded PRNG so a file can be rebuilt exactly):
 *   90% GSLB A    `<service>.<origin> A`    with ECS <client /24>/24 (scope 0)
 *    5% GSLB AAAA `<service>.<origin> AAAA` with ECS <client /24>/24
 *    5% NXDOMAIN   `nx-<n>.<origin> A`      with ECS <client /24>/24 (n random, so they are all different)
 * Services are picked uniformly; client networks uniformly from `networks` (10,000 distinct /24s by
 * default). Every message: RD=0 (a resolver asking an authority), one question, one OPT (payload
 * 1232, version 0, DO=0) with one ECS option (family 1, source 24, scope 0, 3 address octets).
 *
 * Client networks: random public IPv4 /24s that the GeoIP database places in a known country (read
 * with the `maxmind` package, as Meridian does; special-purpose and documentation blocks skipped, as
 * Meridian never geolocates them). With the default database (geodb/geo-whois-asn-country.mmdb) they
 * fall where the address space is allocated: mostly US, CN, then Europe, JP, KR, BR and so on.
 *
 * CLI (for looking at a file without running the bench; after `npm run build`, for the PRNG of dist/src/sim):
 *   node bench/traffic.mjs --out FILE [--origin bench.test] [--services 20] [--count 200000]
 *                          [--networks 10000] [--seed 1] [--geodb geodb/geo-whois-asn-country.mmdb]
 */
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import maxmind from 'maxmind'
import { prng } from '../dist/src/sim/index.js'
import { option, ROOT } from './common.mjs'

export const DEFAULT_GEODB = path.join(ROOT, 'geodb', 'geo-whois-asn-country.mmdb')

/** IPv4 blocks that never carry a location (src/geo/address.ts SPECIAL_BLOCKS and DOCUMENTATION_BLOCKS). */
const SKIP = [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4],
  ['192.0.2.0', 24], ['198.51.100.0', 24], ['203.0.113.0', 24],
].map(([a, p]) => {
  const n = a.split('.').reduce((acc, o) => acc * 256 + Number(o), 0)
  const mask = p === 0 ? 0 : (0xffffffff << (32 - p)) >>> 0
  return { net: (n & mask) >>> 0, mask }
})
const skipped = (n) => SKIP.some((b) => ((n & b.mask) >>> 0) === b.net)

/**
 * `count` distinct IPv4 /24s (as [a, b, c]) that `geodb` places in a country listed in
 * geodb/countries.json. Returns the networks and how many countries they span.
 */
export function clientNetworks({ count = 10000, seed = 1, geodb = DEFAULT_GEODB } = {}) {
  const reader = new maxmind.Reader(readFileSync(geodb))
  const countries = JSON.parse(readFileSync(path.join(ROOT, 'geodb', 'countries.json'), 'utf8'))
  const rand = prng(seed)
  const seen = new Set()
  const out = []
  const byCountry = new Map()
  let tries = 0
  while (out.length < count) {
    if (++tries > count * 200) {
      throw new Error(
        `only ${out.length} of ${count} random public /24s geolocate in ${geodb}: the bench needs a database that covers ` +
          'public address space, such as the default geodb/geo-whois-asn-country.mmdb (the test database holds only documentation networks)',
      )
    }
    const n24 = Math.floor(rand() * 0x1000000)
    if (seen.has(n24)) continue
    const n = (n24 << 8) >>> 0
    if (skipped(n)) continue
    seen.add(n24)
    const addr = `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.0`
    const rec = reader.get(addr)
    const cc = rec && (rec.country_code ?? rec.country?.iso_code ?? rec.registered_country?.iso_code)
    if (typeof cc !== 'string' || !countries[cc.toUpperCase()]) continue
    out.push([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255])
    byCountry.set(cc, (byCountry.get(cc) ?? 0) + 1)
  }
  const top = [...byCountry.entries()].sort((x, y) => y[1] - x[1]).slice(0, 8)
  return { networks: out, countries: byCountry.size, top }
}

function encodeName(name) {
  const parts = []
  for (const l of name.split('.').filter(Boolean)) {
    const b = Buffer.from(l, 'ascii')
    parts.push(Buffer.from([b.length]), b)
  }
  parts.push(Buffer.from([0]))
  return Buffer.concat(parts)
}

/** One query: header (RD=0), question, OPT with ECS a.b.c.0/24. */
export function buildQuery(id, name, qtype, net) {
  const qname = encodeName(name)
  const msg = Buffer.alloc(12 + qname.length + 4 + 11 + 11)
  msg.writeUInt16BE(id, 0)
  msg.writeUInt16BE(0, 2) // QR=0 opcode=0 RD=0
  msg.writeUInt16BE(1, 4) // QDCOUNT
  msg.writeUInt16BE(1, 10) // ARCOUNT: the OPT
  let o = 12
  qname.copy(msg, o)
  o += qname.length
  msg.writeUInt16BE(qtype, o)
  msg.writeUInt16BE(1, o + 2)
  o += 4
  msg[o] = 0 // OPT owner: root
  msg.writeUInt16BE(41, o + 1) // TYPE OPT
  msg.writeUInt16BE(1232, o + 3) // payload size
  msg.writeUInt32BE(0, o + 5) // ext rcode, version, DO, Z
  msg.writeUInt16BE(11, o + 9) // RDLEN
  o += 11
  msg.writeUInt16BE(8, o) // option ECS
  msg.writeUInt16BE(7, o + 2) // length
  msg.writeUInt16BE(1, o + 4) // family IPv4
  msg[o + 6] = 24 // source prefix
  msg[o + 7] = 0 // scope prefix
  msg[o + 8] = net[0]
  msg[o + 9] = net[1]
  msg[o + 10] = net[2]
  return msg
}

/**
 * The dnsperf `-B` file's bytes for the mix above. Returns { data, counts, sample } where `sample`
 * holds a few plain messages (first GSLB A, AAAA, NXDOMAIN) for the harness's sanity checks.
 */
export function buildTraffic({ origin, services, networks, count = 200000, seed = 1 }) {
  const rand = prng(seed ^ 0x5eed)
  const pick = (arr) => arr[Math.floor(rand() * arr.length)]
  const chunks = []
  const counts = { a: 0, aaaa: 0, nxdomain: 0 }
  const sample = {}
  for (let i = 0; i < count; i++) {
    const r = rand()
    const net = pick(networks)
    let msg
    if (r < 0.9) {
      msg = buildQuery(i & 0xffff, `${pick(services)}.${origin}`, 1, net)
      counts.a++
      sample.a ??= msg
    } else if (r < 0.95) {
      msg = buildQuery(i & 0xffff, `${pick(services)}.${origin}`, 28, net)
      counts.aaaa++
      sample.aaaa ??= msg
    } else {
      msg = buildQuery(i & 0xffff, `nx-${Math.floor(rand() * 1e9).toString(36)}.${origin}`, 1, net)
      counts.nxdomain++
      sample.nxdomain ??= msg
    }
    const len = Buffer.alloc(2)
    len.writeUInt16BE(msg.length, 0)
    chunks.push(len, msg)
  }
  return { data: Buffer.concat(chunks), counts, sample }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = option('--out')
  if (!out) {
    console.error('usage: node bench/traffic.mjs --out FILE [--origin bench.test] [--services 20] [--count 200000] [--networks 10000] [--seed 1] [--geodb FILE]')
    process.exit(2)
  }
  const seed = Number(option('--seed', '1'))
  const nets = clientNetworks({ count: Number(option('--networks', '10000')), seed, geodb: option('--geodb', DEFAULT_GEODB) })
  const services = Array.from({ length: Number(option('--services', '20')) }, (_, i) => `svc${String(i).padStart(2, '0')}`)
  const t = buildTraffic({ origin: option('--origin', 'bench.test'), services, networks: nets.networks, count: Number(option('--count', '200000')), seed })
  writeFileSync(out, t.data)
  console.log(`${out}: ${t.data.length} octets; ${JSON.stringify(t.counts)}; ${nets.networks.length} /24s in ${nets.countries} countries (top: ${nets.top.map(([c, n]) => `${c} ${n}`).join(', ')})`)
}
