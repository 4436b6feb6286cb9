/**
 * The answer cache must be invisible: for every query, a handler with the cache answers exactly what
 * a handler without it answers (same octets; NXDOMAIN, assembled from a template, the same records),
 * on the first query and on every hit, and never a stale answer after the zone set or the health
 * generation changes. Both handlers share a fixed `rand`, so rotation draws the same records.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { buildZoneSet } from '../../src/config/load.js'
import type { GeoAnswer, GeoLookup } from '../../src/dns/client.js'
import { BaseKeys, DEFAULT_ANSWER_CACHE, SMI_BITS, type AnswerCacheOptions } from '../../src/dns/answer-cache.js'
import { DnsHandler } from '../../src/dns/handler.js'
import { respond } from '../../src/dns/responder.js'
import { parseQuery } from '../../src/dns/wire.js'
import { countryLocation } from '../../src/geo/index.js'
import { ipv4Number } from '../../src/model/address.js'
import { MoveLog } from '../../src/health/moves.js'
import { createLogger } from '../../src/log.js'
import { Metrics } from '../../src/metrics/index.js'
import type { VipHealth } from '../../src/model/gslb.js'
import type { ZoneSet } from '../../src/model/types.js'
import { CACHE_ZONE, counter, expand, handlers as sharedHandlers, movedSinceOf, SUB_ZONE, type World } from '../helpers/answer-cache.js'
import { isSmiCheck, sameMapCheck } from '../helpers/v8.js'
import { buildQuery, ecsOption, parseReply, TYPE, type QuerySpec, type Reply } from '../helpers/wire.js'

const ZONE = CACHE_ZONE

/** The zone set of c.yaml holding `text`, plus any other zone files. */
const build = (text: string, generation: number, others: { file: string; text: string }[] = []): ZoneSet =>
  buildZoneSet([{ file: 'c.yaml', text }, ...others], () => 7, generation, { countryPoint: (c) => countryLocation(c) })

/** A pure stand-in for the GeoIP database: the first octet decides the country, /8 networks. */
const COUNTRY: Record<number, string> = { 81: 'GB', 8: 'US', 1: 'JP', 100: 'BR' }
const geo: GeoLookup = (address) => {
  const cc = address.includes(':') ? (address.startsWith('2a') ? 'DE' : undefined) : COUNTRY[Number(address.split('.')[0])]
  const p = cc ? countryLocation(cc) : undefined
  return { country: cc, continent: undefined, lat: p?.lat, lon: p?.lon, source: cc ? 'country' : 'none', networkPrefix: address.includes(':') ? 32 : 8 } satisfies GeoAnswer
}

/** The shared handlers() with this file's GeoIP stand-in. */
const handlers = (world: World, answerCache?: AnswerCacheOptions, cachedGeo: GeoLookup = geo) => sharedHandlers(world, geo, answerCache, cachedGeo)

/** `geo`, counting its calls in `calls`. */
function countingGeo(): { lookup: GeoLookup; calls: number } {
  const counter: { lookup: GeoLookup; calls: number } = {
    calls: 0,
    lookup: (address, prefix) => {
      counter.calls++
      return geo(address, prefix)
    },
  }
  return counter
}

function ecs(address: string, prefix: number) {
  const v6 = address.includes(':')
  const full = v6 ? Buffer.from(expand(address), 'hex') : Buffer.from(address.split('.').map(Number))
  const n = Math.ceil(prefix / 8)
  const cut = Buffer.from(full.subarray(0, n))
  if (prefix % 8 && n > 0) cut[n - 1] = cut[n - 1]! & (0xff << (8 - (prefix % 8))) & 0xff
  return ecsOption(v6 ? 2 : 1, prefix, 0, cut)
}

/** Two hex digits. */
const hex = (n: number) => n.toString(16).padStart(2, '0')

// The last three are the cache's text kind (keyed by the option's octets or the address text).
const CLIENT_KINDS = ['IPv4 ECS networks', 'IPv4 resolvers without ECS', 'IPv6 ECS networks', 'IPv4 ECS networks past /24', 'IPv6 ECS networks past /56', 'IPv6 resolvers without ECS'] as const
type ClientKind = (typeof CLIENT_KINDS)[number]

/**
 * Client i (i < 65,536) of a kind: the OPT it sends, the address it asks from, and a label. IPv4
 * clients are spread over four countries; IPv6 networks are 2a00:HH00:0:LL00::/56 (HH and LL the
 * high and low octets of i), so neighbours differ in the /56's last octet.
 */
function nthClient(kind: ClientKind, i: number): { opt: QuerySpec['opt']; peer: string; what: string } {
  const v4 = `${[81, 8, 1, 100][i % 4]}.${(i >> 8) & 255}.${i & 255}`
  if (kind === 'IPv4 ECS networks') return { opt: { udpSize: 1232, options: [ecs(`${v4}.0`, 24)] }, peer: '127.0.0.1', what: `${v4}.0/24` }
  if (kind === 'IPv4 resolvers without ECS') return { opt: { udpSize: 1232 }, peer: `${v4}.53`, what: `resolver ${v4}.53` }
  if (kind === 'IPv4 ECS networks past /24') return { opt: { udpSize: 1232, options: [ecs(`${v4}.64`, 26)] }, peer: '127.0.0.1', what: `${v4}.64/26` }
  const v6 = `2a00:${hex(i >> 8)}00:0:${hex(i & 0xff)}00::`
  if (kind === 'IPv6 ECS networks past /56') return { opt: { udpSize: 1232, options: [ecs(v6, 64)] }, peer: '::1', what: `${v6}/64` }
  if (kind === 'IPv6 resolvers without ECS') return { opt: { udpSize: 1232 }, peer: `${v6}53`, what: `resolver ${v6}53` }
  return { opt: { udpSize: 1232, options: [ecs(v6, 56)] }, peer: '::1', what: `${v6}/56` }
}

/** Asserts the cached handler answers `msg` from `peer` with the uncached one's octets; returns the reply. */
function agree(h: { cached: DnsHandler; plain: DnsHandler }, msg: Buffer, peer: string, what: string): Buffer {
  const a = h.cached.handle(msg, 'udp', peer)!
  assert.equal(a.toString('hex'), h.plain.handle(msg, 'udp', peer)!.toString('hex'), what)
  return a
}

/** Every check of eu's VIPs down. */
function euDown(health: Map<string, VipHealth>, set: ZoneSet): void {
  for (const key of set.checks.keys()) if (/198\.51\.100|2001:db8:e::1/.test(key)) health.set(key, { state: 'down', ewmaMs: null })
}

type Flavour = { name: string; opt?: QuerySpec['opt']; peer: string; rd?: boolean; cd?: boolean }

const CLIENTS: Flavour[] = [
  { name: 'no EDNS, resolver in GB', peer: '81.1.2.3' },
  { name: 'EDNS, no ECS, resolver in US', opt: { udpSize: 1232 }, peer: '8.8.4.4', rd: true },
  { name: 'EDNS DO', opt: { udpSize: 4096, dnssecOk: true }, peer: '81.9.9.9', cd: true },
  { name: 'EDNS, no ECS, IPv6 resolver in DE', opt: { udpSize: 1232 }, peer: '2a00:1450::53' },
  { name: 'ECS 81.2.69.0/24', opt: { udpSize: 1232, options: [ecs('81.2.69.0', 24)] }, peer: '127.0.0.1' },
  { name: 'ECS 81.2.70.0/24 (same country, other bucket)', opt: { udpSize: 1232, options: [ecs('81.2.70.0', 24)] }, peer: '127.0.0.1' },
  { name: 'ECS 8.8.8.0/24', opt: { udpSize: 1232, options: [ecs('8.8.8.0', 24)] }, peer: '127.0.0.1' },
  { name: 'ECS 1.0.16.0/20', opt: { udpSize: 1232, options: [ecs('1.0.16.0', 20)] }, peer: '127.0.0.1' },
  { name: 'ECS 81.0.0.0/6 (shorter than the GeoIP network)', opt: { udpSize: 1232, options: [ecs('80.0.0.0', 6)] }, peer: '127.0.0.1' },
  { name: 'ECS /0', opt: { udpSize: 1232, options: [ecs('0.0.0.0', 0)] }, peer: '127.0.0.1' },
  { name: 'ECS unknown network 100.64.1.0/24', opt: { udpSize: 1232, options: [ecs('100.64.1.0', 24)] }, peer: '127.0.0.1' },
  { name: 'ECS unlocated 10.1.2.0/24', opt: { udpSize: 1232, options: [ecs('10.1.2.0', 24)] }, peer: '127.0.0.1' },
  { name: 'ECS IPv6 2a00:1450:4009::/48', opt: { udpSize: 1232, options: [ecs('2a00:1450:4009::', 48)] }, peer: '::1' },
  { name: 'ECS IPv6 2001:db8:1:2::/56', opt: { udpSize: 1232, options: [ecs('2001:db8:1:200::', 56)] }, peer: '::1' },
  { name: 'ECS IPv6 2a00:1450:4009:1::/64 (longer than /56: by text)', opt: { udpSize: 1232, options: [ecs('2a00:1450:4009:1::', 64)] }, peer: '::1' },
  { name: 'ECS and a cookie option', opt: { udpSize: 1232, options: [{ code: 10, data: Buffer.alloc(8, 7) }, ecs('8.8.8.0', 24)] }, peer: '127.0.0.1' },
]

const NAMES: [string, number][] = [
  ['geo.c.test', TYPE.A],
  ['GeO.C.tEsT', TYPE.A],
  ['geo.c.test', TYPE.AAAA],
  ['near.c.test', TYPE.A],
  ['lat.c.test', TYPE.A],
  ['lat.c.test', TYPE.AAAA],
  ['wtd.c.test', TYPE.A],
  ['fo.c.test', TYPE.A],
  ['none.c.test', TYPE.AAAA],
  ['alias.c.test', TYPE.A],
  ['geo.c.test', TYPE.MX],
  ['static.c.test', TYPE.A],
  ['STATIC.c.test', TYPE.TXT],
  ['c.test', TYPE.MX],
  ['c.test', TYPE.NS],
  ['c.test', TYPE.SOA],
  ['mx.c.test', TYPE.ANY],
  ['nothere.c.test', TYPE.A],
  ['nothere.C.TEST', TYPE.AAAA],
  ['elsewhere.test', TYPE.A],
]

/** A reply as comparable data (record data as hex), for NXDOMAIN whose compression differs. */
function shape(r: Reply): unknown {
  const rr = (list: Reply['answers']) => list.map((x) => ({ name: x.name.toLowerCase(), type: x.type, ttl: x.ttl }))
  return { ...r, length: 0, questions: r.questions.map((q) => ({ ...q, nameWire: undefined })), answers: rr(r.answers), authority: rr(r.authority), additional: rr(r.additional) }
}

function same(h: ReturnType<typeof handlers>, label: string): void {
  for (const [name, type] of NAMES) {
    for (const c of CLIENTS) {
      for (let round = 0; round < 3; round++) {
        const msg = buildQuery({ id: (round * 7919 + name.length) & 0xffff, name, type, rd: c.rd, cd: c.cd, opt: c.opt })
        const a = h.cached.handle(msg, 'udp', c.peer)
        const b = h.plain.handle(msg, 'udp', c.peer)
        assert.ok(a && b, `${label}: ${name}/${type} ${c.name}: both answer`)
        const what = `${label}: ${name} type ${type}, ${c.name}, round ${round}`
        if (parseReply(b).rcode === 3) assert.deepEqual(shape(parseReply(a)), shape(parseReply(b)), what)
        else assert.equal(a.toString('hex'), b.toString('hex'), what)
      }
    }
  }
}

/** Every base's LRU key prefix (the cache's private base table, chains included). */
function baseKeysOf(h: DnsHandler): number[] {
  type B = { key: number; next: B | undefined }
  const out: number[] = []
  for (let b of (h.cache as unknown as { bases: Map<number, B> }).bases.values()) {
    for (; b; b = b.next!) out.push(b.key)
  }
  return out
}

/** The cache's lru-cache (private), to read its keys. */
function lruOf(h: DnsHandler): { keys(): IterableIterator<number> } {
  return (h.cache as unknown as { lru: { keys(): IterableIterator<number> } }).lru
}

describe('answer cache', () => {
  test('cached answers are the uncached answers, octet for octet, for every policy, client and flag', async () => {
    const world: World = { set: build(ZONE, 1), generation: 1, health: new Map() }
    const h = handlers(world)
    same(h, 'cold and warm')
    const hits = await counter(h.metrics, 'meridian_dns_cache_hits_total')
    const misses = await counter(h.metrics, 'meridian_dns_cache_misses_total')
    // 3 rounds of every query: rounds 2 and 3 hit for every cacheable one, and different clients share entries.
    assert.ok(hits > (NAMES.length - 3) * CLIENTS.length, `hits ${hits}, misses ${misses}`)
    assert.ok(h.cached.cache!.size > 0)
    const text = await h.metrics.render()
    // Queries answered from the cache are counted like the others.
    const sum = [...text.matchAll(/^meridian_dns_queries_total\{[^}]*\} (\d+)/gm)].reduce((s, m) => s + Number(m[1]), 0)
    assert.equal(sum, NAMES.length * CLIENTS.length * 3)
  })

  test('a health change is seen at once: no stale answer after the generation moves', () => {
    const world: World = { set: build(ZONE, 1), generation: 1, health: new Map() }
    const h = handlers(world)
    same(h, 'all up')
    // eu goes down: every check of its VIPs.
    euDown(world.health, world.set)
    world.generation++
    same(h, 'eu down')
    const gb = buildQuery({ name: 'geo.c.test', type: TYPE.A, opt: { udpSize: 1232, options: [ecs('81.2.69.0', 24)] } })
    const addrs = parseReply(h.cached.handle(gb, 'udp', '127.0.0.1')!).answers.map((r) => [...r.rdata].join('.'))
    assert.ok(addrs.length > 0 && addrs.every((a) => !a.startsWith('198.51.100.')), `GB no longer gets eu: ${addrs}`)
    world.health.clear()
    world.generation++
    same(h, 'eu back')
  })

  test('prepare() builds what the cache reads of the current set (health index, names) before any query, and answers stay those without the cache', () => {
    const world: World = { set: build(ZONE, 1), generation: 1, health: new Map() }
    const h = handlers(world)
    const gb = buildQuery({ name: 'geo.c.test', type: TYPE.A, opt: { udpSize: 1232, options: [ecs('81.2.69.0', 24)] } })
    const nx = buildQuery({ name: 'nothere.c.test', type: TYPE.A })
    const built = () => {
      const c = h.cached.cache as unknown as { hidx?: { set: unknown }; names?: { set: unknown } }
      return { index: c.hidx?.set === world.set, names: c.names?.set === world.set }
    }
    for (const gen of [1, 2]) {
      if (gen === 2) {
        world.set = build(ZONE.replace('answers: 2 }', 'answers: 1 }'), 2)
        euDown(world.health, world.set)
        world.generation++
      }
      assert.deepEqual(built(), { index: false, names: false }, `set ${gen}: nothing built before`)
      h.cached.prepare()
      assert.deepEqual(built(), { index: true, names: true }, `set ${gen}: built by prepare()`)
      assert.deepEqual(h.cached.handle(gb, 'udp', '127.0.0.1'), h.plain.handle(gb, 'udp', '127.0.0.1'))
      // NXDOMAIN is assembled from a template: the same records, compressed otherwise (shape()).
      assert.deepEqual(shape(parseReply(h.cached.handle(nx, 'udp', '127.0.0.1')!)), shape(parseReply(h.plain.handle(nx, 'udp', '127.0.0.1')!)))
    }
    // A cache turned off has nothing to prepare.
    assert.doesNotThrow(() => h.plain.prepare())
  })

  test('prepareNext() makes a coming set\'s indexes in steps, a turn between them; served, the set takes them, and answers stay those without the cache', async () => {
    const world: World = { set: build(ZONE, 1), generation: 1, health: new Map() }
    const h = handlers(world)
    const c = h.cached.cache as unknown as { hidx?: { set: unknown; services: unknown }; names?: { set: unknown }; ahead?: { readers?: { set: unknown; services: unknown }; names?: { set: unknown } } }
    same(h, 'first set')
    // A set with 3,000 more names (steps of 2,000) and a service more: prepared while the first serves.
    const hosts = Array.from({ length: 3000 }, (_, i) => `  host${i}: { A: 192.0.2.${i % 250} }`).join('\n')
    const next = build(ZONE.replace('records:\n', `records:\n${hosts}\n`).replace('services:\n', 'services:\n  extra: { policy: weighted, answers: 1 }\n'), 2)
    let turns = 0
    await h.cached.cache!.prepareNext(next, async () => {
      turns++
      // Queries are answered between the steps, from the set still served.
      same(h, `first set, turn ${turns}`)
    })
    assert.ok(turns >= 2, `${turns} turns`)
    assert.equal(c.ahead?.readers?.set, next)
    assert.equal(c.ahead?.names?.set, next)
    assert.notEqual(c.hidx?.set, next, 'not taken before it is served')
    const ahead = c.ahead!.readers!.services
    world.set = next
    world.generation++
    same(h, 'second set')
    assert.equal(c.hidx?.set, next)
    assert.equal(c.hidx?.services, ahead, 'the index made ahead was taken')
    assert.equal(c.names?.set, next)
    assert.equal(c.ahead?.readers, undefined)
    assert.equal(c.ahead?.names, undefined)
    // A set prepared and never served: the one served makes its own, and answers as it should.
    await h.cached.prepareNext(build(ZONE, 3))
    world.set = build(ZONE.replace('answers: 2 }', 'answers: 1 }'), 4)
    world.generation++
    same(h, 'a set not the prepared one')
    assert.equal(c.hidx?.set, world.set)
    assert.equal(c.ahead?.readers, undefined, 'the unserved set\'s indexes are not held past a newer set served')
    assert.equal(c.ahead?.names, undefined)
    // A set prepared while the one serving has not been indexed yet (no query since its swap): the
    // serving set's first query indexes it without dropping what was made for the coming one.
    world.set = build(ZONE, 5)
    world.generation++
    const coming = build(ZONE.replace('answers: 2 }', 'answers: 1 }'), 6)
    await h.cached.prepareNext(coming)
    // Read through a function: the assertions above narrowed the fields to undefined.
    const prepared = () => ({ readers: c.ahead?.readers, names: c.ahead?.names })
    const made = prepared().readers!.services
    same(h, 'the set serving, indexed after the next was prepared')
    assert.equal(c.hidx?.set, world.set)
    assert.equal(prepared().readers?.set, coming, 'kept for the coming set')
    assert.equal(prepared().names?.set, coming)
    world.set = coming
    world.generation++
    same(h, 'the coming set')
    assert.equal(c.hidx?.services, made, 'taken by it')
  })

  test('prepareNext() with the cache cleared (a GeoIP change) between its steps, and two sets prepared at once: whichever is served answers as without the cache', async () => {
    const world: World = { set: build(ZONE, 1), generation: 1, health: new Map() }
    const h = handlers(world)
    const c = h.cached.cache as unknown as { ahead?: { readers?: { set: unknown }; names?: { set: unknown } } }
    same(h, 'first set')
    const hosts = (n: number, at: number) => Array.from({ length: n }, (_, i) => `  host${i}: { A: 192.0.2.${(i + at) % 250} }`).join('\n')
    const one = build(ZONE.replace('records:\n', `records:\n${hosts(3000, 0)}\n`).replace('services:\n', 'services:\n  extra: { policy: weighted, answers: 1 }\n'), 2)
    const two = build(ZONE.replace('records:\n', `records:\n${hosts(2500, 7)}\n  only2: { A: 192.0.2.77 }\n`).replace('  wtd: { policy: weighted, answers: 1 }\n', ''), 3)
    // Some checks down, so that a service read with another set's checks would answer otherwise.
    for (const key of [...one.checks.keys()].filter((_, i) => i % 2 === 0)) world.health.set(key, { state: 'down' })
    let turns = 0
    const turn = async () => {
      turns++
      h.cached.cache!.clear()
      same(h, `first set, turn ${turns}, cleared`)
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
    await Promise.all([h.cached.cache!.prepareNext(one, turn), h.cached.cache!.prepareNext(two, turn)])
    assert.ok(turns >= 4, `${turns} turns`)
    // One of the two holds the slot; each set served answers right, with it or without: the other
    // first (the slot's indexes are not its), then the slot's, then the other again.
    const held = c.ahead?.names?.set
    assert.ok(held === one || held === two)
    assert.equal(c.ahead?.readers?.set, held)
    const other = held === one ? two : one
    // Names only one of the two sets holds, and names of neither, beside those same() asks.
    const names = ['host2600.c.test', 'only2.c.test', 'host2499.c.test', 'host10.c.test', 'wtd.c.test', 'extra.c.test', 'nope.c.test', 'x.host10.c.test']
    const alike = (label: string) => {
      same(h, label)
      for (const name of names) {
        for (let round = 0; round < 2; round++) {
          const msg = buildQuery({ id: 7, name, type: TYPE.A })
          const [a, b] = [h.cached.handle(msg, 'udp', '81.1.2.3'), h.plain.handle(msg, 'udp', '81.1.2.3')]
          assert.deepEqual(shape(parseReply(a!)), shape(parseReply(b!)), `${label}: ${name}, round ${round}`)
        }
      }
    }
    for (const [set, label] of [[other, 'the set not holding the slot'], [held, 'the set holding it'], [other, 'the other again']] as const) {
      world.set = set as ZoneSet
      world.generation++
      alike(label)
      h.cached.cache!.clear()
      alike(`${label}, cleared`)
    }
  })

  test('checks going up, down and unknown at random: every answer is the uncached one after every change', () => {
    const world: World = { set: build(ZONE, 1), generation: 1, health: new Map() }
    const h = handlers(world)
    const keys = [...world.set.checks.keys()]
    assert.ok(keys.length >= 6)
    let seed = 7
    const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32
    same(h, 'start')
    for (let step = 0; step < 25; step++) {
      // One to three checks change (or, one step in five, none: the generation moves for nothing).
      const changes = next() < 0.2 ? 0 : 1 + Math.floor(next() * 3)
      for (let c = 0; c < changes; c++) {
        const key = keys[Math.floor(next() * keys.length)]!
        const r = next()
        if (r < 0.25) world.health.delete(key)
        else world.health.set(key, { state: r < 0.5 ? 'unknown' : r < 0.75 ? 'down' : 'up', ewmaMs: null } as unknown as VipHealth)
      }
      world.generation++
      same(h, `step ${step} (${changes} changed: ${[...world.health].map(([k, v]) => `${k.split(' ')[0]} ${v.state}`).join(', ')})`)
    }
  })

  /** ZONE plus geo-latency services over two regions each, so that a check is read by some of them only. */
  const PAIRS = ZONE.replace(/\nservices:\n/, '\nservices:\n  latus: { policy: geo-latency, regions: [us, jp], answers: 1 }\n  lateu: { policy: geo-latency, regions: [eu, jp], answers: 2, fill: true }\n')
  const PAIR_NAMES = ['lat.c.test', 'near.c.test', 'latus.c.test', 'lateu.c.test', 'wtd.c.test', 'geo.c.test', 'static.c.test']
  const PAIR_NETS = ['81.2.69.0', '8.8.8.0', '1.0.16.0', '100.1.2.0', '10.1.2.0']

  test('a latency move ends the geo-latency answers of the services that read the check that moved, not the others', async () => {
    const world: World = { set: build(PAIRS, 1), generation: 1, health: new Map() }
    const h = handlers(world, { ...DEFAULT_ANSWER_CACHE, latencyGraceMs: 0 })
    const keys = [...world.set.checks.keys()]
    const eu = keys.find((k) => k.includes('198.51.100.1'))!
    const us = keys.find((k) => k.includes('203.0.113.1'))!
    for (const k of keys) world.health.set(k, { state: 'up', ewmaMs: 10, latencyGen: 1 })
    const hits = () => counter(h.metrics, 'meridian_dns_cache_hits_total')
    const ask = (name: string) => {
      for (const net of PAIR_NETS) agree(h, buildQuery({ name, type: TYPE.A, opt: { udpSize: 1232, options: [ecs(net, 24)] } }), '127.0.0.1', `${name} from ${net}`)
    }
    /** The names still answered from the cache (every network a hit) after `change`. */
    const kept = async (change: () => void): Promise<string[]> => {
      for (const name of PAIR_NAMES) ask(name)
      change()
      const out: string[] = []
      for (const name of PAIR_NAMES) {
        const before = await hits()
        ask(name)
        const n = (await hits()) - before
        assert.ok(n === 0 || n === PAIR_NETS.length, `${name}: ${n} hits of ${PAIR_NETS.length}`)
        if (n > 0) out.push(name)
      }
      return out
    }
    const move = (key: string, ewmaMs: number) => {
      world.generation++
      world.health.set(key, { state: 'up', ewmaMs, publishedMs: ewmaMs, latencyGen: world.generation })
    }
    // eu's check moves: lat and near (every region) and lateu end; latus (us, jp) does not read it.
    assert.deepEqual(await kept(() => move(eu, 80)), ['latus.c.test', 'wtd.c.test', 'geo.c.test', 'static.c.test'])
    // us's: lat, near and latus; lateu keeps its answers.
    assert.deepEqual(await kept(() => move(us, 3)), ['lateu.c.test', 'wtd.c.test', 'geo.c.test', 'static.c.test'])
    // A generation move in which no check published a new latency (an EWMA within its band) ends
    // nothing. 80 -> 85 takes eu-west past the tolerance for unlocated clients of lat by the last
    // round's EWMA, but the selector steers by the published 80, so the kept answers are still right
    // (agree() compares every one with the uncached handler's).
    assert.deepEqual(
      await kept(() => {
        world.generation++
        world.health.set(eu, { ...world.health.get(eu)!, ewmaMs: 85 })
      }),
      PAIR_NAMES,
    )
  })

  for (const listed of [false, true]) {
  test(`latency and state moves at random: with no grace, every answer is the uncached one after every move (${listed ? 'the moved checks listed' : 'every check compared'})`, () => {
    // The state generation moves with state changes only, as the poller's does.
    const world: World = { set: build(PAIRS, 1), generation: 1, stateGeneration: 1, health: new Map(), moved: listed ? new MoveLog(4096, 1) : undefined }
    const h = handlers(world, { ...DEFAULT_ANSWER_CACHE, latencyGraceMs: 0 })
    const keys = [...world.set.checks.keys()]
    for (const k of keys) world.health.set(k, { state: 'up', ewmaMs: 20, publishedMs: 20, latencyGen: 1 })
    let seed = 11
    const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32
    const all = (label: string) => {
      for (const name of PAIR_NAMES) {
        for (const type of [TYPE.A, TYPE.AAAA]) {
          for (const net of PAIR_NETS) agree(h, buildQuery({ id: name.length, name, type, opt: { udpSize: 1232, options: [ecs(net, 24)] } }), '127.0.0.1', `${label}: ${name}/${type} from ${net}`)
        }
      }
    }
    all('start')
    const answers = new Set<string>()
    for (let step = 0; step < 30; step++) {
      // One or two checks publish a new EWMA, anywhere from 1 to 300 ms (enough to reorder regions),
      // one step in four going down or back up instead; each move a generation of its own, as the poller makes them.
      const moves = 1 + Math.floor(next() * 2)
      for (let m = 0; m < moves; m++) {
        world.generation++
        const key = keys[Math.floor(next() * keys.length)]!
        const was = world.health.get(key)!
        const flip = next() < 0.25
        const ewmaMs = 1 + Math.floor(next() * 300)
        world.health.set(key, { state: flip ? (was.state === 'up' ? 'down' : 'up') : was.state, ewmaMs, publishedMs: ewmaMs, latencyGen: world.generation })
        if (flip) world.stateGeneration!++
        world.moved?.add(world.generation, [key])
      }
      all(`step ${step}`)
      // Then every check's EWMA wobbles within its band, as rounds that publish nothing leave it: no
      // generation moves, and the answers (cached or not) stay what the published values make them,
      // even for a region at the edge of a tolerance window (the uncached selector read the last
      // round's EWMA before, and disagreed with the cache there).
      for (const key of keys) {
        const was = world.health.get(key)!
        const band = Math.max(2, 0.25 * was.publishedMs!)
        world.health.set(key, { ...was, ewmaMs: was.publishedMs! + (next() * 2 - 1) * band })
      }
      all(`step ${step}, EWMAs within their bands`)
      const r = parseReply(h.cached.handle(buildQuery({ name: 'lat.c.test', type: TYPE.A, opt: { udpSize: 1232, options: [ecs('10.1.2.0', 24)] } }), 'udp', '127.0.0.1')!)
      answers.add(r.answers.map((a) => a.rdata.toString('hex')).join())
    }
    assert.ok(answers.size > 1, `the moves changed lat's answer (${answers.size} different)`)
  })
  }

  test('a health source that lists the checks that moved: a move compares those checks only; one that cannot list them, every check', () => {
    for (const listed of [true, false]) {
      const world: World = { set: build(PAIRS, 1), generation: 1, health: new Map(), moved: new MoveLog(4096, 1) }
      const keys = [...world.set.checks.keys()]
      for (const k of keys) world.health.set(k, { state: 'up', ewmaMs: 20, latencyGen: 1 })
      let reads = 0
      const h = new DnsHandler(() => world.set, createLogger('silent'), {}, {
        geo,
        health: (k) => (reads++, world.health.get(k)),
        rand: () => 0.37,
        generations: () => ({ generation: world.generation, stateGeneration: world.generation }),
        // Listing fails (as after a membership change) when `listed` is false.
        movedSince: (generation, visit) => listed && movedSinceOf(world)!(generation, visit),
      })
      const ask = () => assert.ok(h.handle(buildQuery({ name: 'static.c.test', type: TYPE.A, opt: { udpSize: 1232 } }), 'udp', '127.0.0.1'))
      ask()
      ask() // cached: a hit reads no health
      reads = 0
      world.generation++
      world.health.set(keys[0]!, { state: 'down', ewmaMs: 20, latencyGen: world.generation })
      world.moved!.add(world.generation, [keys[0]!])
      ask()
      assert.equal(reads, listed ? 1 : keys.length, listed ? 'the one check that moved' : 'every check')
    }
  })

  test('a zone set object current again after another: its old answers end if a check changed meanwhile', () => {
    const a = build(ZONE, 1)
    const b = build(ZONE, 2)
    const world: World = { set: a, generation: 1, health: new Map() }
    const h = handlers(world)
    same(h, 'set A, all up')
    // Under B only a static name is asked: A's entries stay in the LRU (B's would replace them).
    const asked = buildQuery({ name: 'static.c.test', type: TYPE.A })
    world.set = b
    h.cached.handle(asked, 'udp', '8.8.4.4')
    euDown(world.health, a)
    world.generation++
    h.cached.handle(asked, 'udp', '8.8.4.4')
    world.set = a
    same(h, 'set A again, eu down')
  })

  /** The check key of eu's first VIP. */
  const euCheck = (set: ZoneSet) => [...set.checks.keys()].find((k) => k.includes('198.51.100.1'))!

  /** A handler whose health generations and clock the test moves, with cache counters to read. */
  /** With `listed`, the health source lists the moves and when they were made (w.now at move()), as the poller does. */
  function latencyWorld(latencyGraceMs: number, zone = ZONE, listed = false) {
    const w = { generation: 1, stateGeneration: 1, now: 0, health: new Map<string, VipHealth>() }
    const set = build(zone, 1)
    const metrics = new Metrics({ processMetrics: false })
    const answerCache = { ...DEFAULT_ANSWER_CACHE, latencyGraceMs }
    const moves = new MoveLog(1024)
    const movedSince = listed ? (generation: number, visit: (key: string, at: number) => void) => moves.since(generation, w.generation, visit) : undefined
    const gslb = { geo, health: (k: string) => w.health.get(k), rand: () => 0.37, generations: () => ({ generation: w.generation, stateGeneration: w.stateGeneration }), now: () => w.now, movedSince }
    const h = new DnsHandler(() => set, createLogger('silent'), { answerCache }, gslb, metrics)
    const ask = (name: string, net = '81.2.69.0') => h.handle(buildQuery({ name, type: TYPE.A, opt: { udpSize: 1232, options: [ecs(net, 24)] } }), 'udp', '127.0.0.1')
    const hits = () => counter(metrics, 'meridian_dns_cache_hits_total')
    const graced = () => counter(metrics, 'meridian_dns_cache_latency_grace_total')
    /** A latency move of check `key` (eu's first VIP unless given), as the poller makes one: a new generation that publishes the check's EWMA. */
    const move = (key = euCheck(set), ewmaMs = 5 * w.generation): void => {
      w.generation++
      w.health.set(key, { state: w.health.get(key)?.state ?? 'up', ewmaMs, latencyGen: w.generation })
      moves.add(w.generation, [key], w.now)
    }
    return { w, set, ask: Object.assign(ask, { cache: () => h.cache }), hits, graced, move }
  }

  test('with no latency grace, a latency-only move rebuilds geo-latency answers at once and keeps the others', async () => {
    const { ask, hits, move } = latencyWorld(0)
    for (const name of ['wtd.c.test', 'lat.c.test']) ask(name)
    const before = await hits()
    move() // the poller saw a latency move of a check lat reads, no state change
    ask('wtd.c.test')
    assert.equal(await hits(), before + 1, 'the weighted answer is still cached')
    ask('lat.c.test')
    assert.equal(await hits(), before + 1, 'the geo-latency answer was rebuilt')
    ask('lat.c.test')
    assert.equal(await hits(), before + 2, 'and cached again')
  })

  test('a health record that does not say when its latency was published: every generation move counts as a move of it', async () => {
    const { w, set, ask, hits } = latencyWorld(0)
    w.health.set(euCheck(set), { state: 'up', ewmaMs: 10 })
    ask('lat.c.test')
    ask('lat.c.test')
    const before = await hits()
    w.generation++
    ask('lat.c.test')
    assert.equal(await hits(), before, 'rebuilt')
    ask('lat.c.test')
    assert.equal(await hits(), before + 1, 'and cached again')
  })

  test('within the latency grace a geo-latency answer outlives a latency move, each entry until its own deadline; a state change ends it at once', async () => {
    const GRACE = 2000
    const { w, set, ask, hits, graced, move } = latencyWorld(GRACE)
    // Geo-latency answers for many client networks (countries): entries with different deadlines.
    const nets = ['81.2.69.0', '8.8.8.0', '1.0.16.0', '100.1.2.0']
    const all = () => nets.map((n) => ask('lat.c.test', n)!.toString('hex'))
    const first = all()
    w.now = 1000
    move() // a latency move at t = 1000 ms
    // Step through the grace: each network's answer is served until its entry's deadline, then
    // rebuilt (a miss) once, then served from the rebuilt entry.
    const rebuilt: number[] = []
    let served = 0
    for (let t = 1000; t <= 1000 + GRACE; t += 50) {
      w.now = t
      for (const n of nets) {
        const before = await hits()
        ask('lat.c.test', n)
        if ((await hits()) > before) served++
        else rebuilt.push(t)
      }
    }
    assert.equal(rebuilt.length, nets.length, `each network rebuilt once: at ${rebuilt}`)
    assert.ok(rebuilt.every((t) => t < 1000 + GRACE), `every rebuild inside the grace: ${rebuilt}`)
    assert.ok(new Set(rebuilt).size > 1, `the rebuilds are spread out, not at one instant: ${rebuilt}`)
    const g = await graced()
    assert.ok(g > 0 && g < served, `answers served in the grace are counted (${g} of ${served} hits)`)
    // What was served in the grace is what was cached before the move (octets after the ID).
    assert.deepEqual(all().map((x) => x.slice(4)), first.map((x) => x.slice(4)))

    // A state change of a VIP the service reads ends its entries at once, grace or not.
    const h1 = await hits()
    w.now += 10
    w.health.set(euCheck(set), { state: 'down', ewmaMs: null })
    w.generation++ // the poller's bump moves both
    w.stateGeneration++
    for (const n of nets) ask('lat.c.test', n)
    assert.equal(await hits(), h1, 'no answer from before a state change')
  })

  test('the grace counts from when a listed move was made, not from the first query after it: a name asked after a quiet spell gets the new answer', async () => {
    const GRACE = 2000
    const { w, ask, hits, move } = latencyWorld(GRACE, ZONE, true)
    ask('lat.c.test')
    const before = await hits()
    w.now = 1000
    move() // the poller's move at t = 1000 ms; nobody asks for a while
    w.now = 1000 + GRACE + 1
    ask('lat.c.test')
    assert.equal(await hits(), before, 'rebuilt: the grace of that move was over before this first query')
    ask('lat.c.test')
    assert.equal(await hits(), before + 1, 'and cached again')
    // A query inside the grace of a move may still be served the answer from before it.
    const h = await hits()
    move()
    w.now += 1
    ask('lat.c.test')
    assert.equal(await hits(), h + 1, 'served within the grace')
  })

  test('a state change ends the answers of the services that read the check, not the others', async () => {
    const { w, set, ask, hits } = latencyWorld(0)
    // fo reads eu and us; jp is read by geo, near, lat and wtd (all regions) but not by fo, none reads only eu.
    const names = ['fo.c.test', 'none.c.test', 'static.c.test', 'wtd.c.test', 'geo.c.test']
    for (const name of names) ask(name)
    const jp = [...set.checks.keys()].filter((k) => k.includes('192.0.2.101'))
    assert.deepEqual(jp, [], 'jp has no check (its VIP is not checked)')
    // A us VIP goes down: fo, wtd and geo read it; none (eu only) and static do not.
    const us = [...set.checks.keys()].find((k) => k.includes('203.0.113.1'))!
    w.health.set(us, { state: 'down', ewmaMs: null })
    w.generation++
    w.stateGeneration++
    const kept: string[] = []
    for (const name of names) {
      const before = await hits()
      ask(name)
      if ((await hits()) > before) kept.push(name)
    }
    assert.deepEqual(kept, ['none.c.test', 'static.c.test'], 'only the answers that did not read the check are still cached')
    // The state generation moving with no state changed (a membership change elsewhere) ends nothing,
    // nor does a check with no record yet getting one that says unknown (the selector reads both alike).
    for (const name of names) ask(name)
    for (const change of [() => {}, () => w.health.set([...set.checks.keys()].find((k) => k.includes('198.51.100.2'))!, { state: 'unknown', ewmaMs: null })]) {
      change()
      w.generation++
      w.stateGeneration++
      const before = await hits()
      for (const name of names) ask(name)
      assert.equal((await hits()) - before, names.length)
    }
  })

  test('latency grace: an answer built before two moves still ends at its deadline after the first', async () => {
    const GRACE = 1000
    const { w, ask, hits, move } = latencyWorld(GRACE)
    // The name's first query: built by the full path (the lookup found no base and read no generation).
    ask('lat.c.test')
    move() // move 1, seen by the next query at t = 100
    // Moves every 100 ms: the entry's deadline counts from the first move, not the last.
    let rebuiltAt = -1
    for (let t = 100; t <= 2 * GRACE && rebuiltAt < 0; t += 100) {
      w.now = t
      move()
      const h = await hits()
      ask('lat.c.test')
      if ((await hits()) === h) rebuiltAt = t
    }
    assert.ok(rebuiltAt > 100 && rebuiltAt <= 100 + GRACE, `rebuilt at ${rebuiltAt} ms: served in the grace at first, rebuilt within it`)
  })

  test('latency grace: a service\'s old answers get one grace, not a second when another service first moves', async () => {
    // latus reads us and jp, lateu eu and jp: each moves its own latency generation.
    const GRACE = 2000
    const { w, set, ask, hits, move } = latencyWorld(GRACE, PAIRS)
    const us = [...set.checks.keys()].find((k) => k.includes('203.0.113.1'))!
    const eu = euCheck(set)
    const nets = ['81.2.69.0', '8.8.8.0', '1.0.16.0', '100.1.2.0']
    for (const n of nets) ask('latus.c.test', n)
    for (const n of nets) ask('lateu.c.test', n)
    const hitsOf = async (name: string) => {
      const before = await hits()
      for (const n of nets) ask(name, n)
      return (await hits()) - before
    }
    w.now = 1000
    move(us) // latus's answers have their grace from t = 1000; lateu's are untouched
    assert.equal(await hitsOf('lateu.c.test'), nets.length)
    // A minute later, eu moves for the first time: lateu's answers get their grace from now, and
    // latus's, long past theirs, must not get another.
    w.now = 61_000
    move(eu)
    assert.equal(await hitsOf('latus.c.test'), 0, 'latus: rebuilt, not served from before the us move')
    assert.ok((await hitsOf('lateu.c.test')) > 0, 'lateu: in its grace')
  })

  test('every cached answer has one hidden class, built fresh or again under a new health generation', () => {
    // V8 keeps a load monomorphic only while the objects it reads share a map; entries of many maps
    // sent every load of a hit through the megamorphic stub cache for the server's life (session 10).
    const sameMap = sameMapCheck()
    const { w, set, ask, move } = latencyWorld(2000)
    const lru = (ask as unknown as { cache: () => { lru: { values(): Iterable<{ marker: boolean }> } } }).cache().lru
    const nets = ['81.2.69.0', '8.8.8.0', '1.0.16.0', '100.1.2.0', '10.1.2.0']
    const names = ['lat.c.test', 'near.c.test', 'geo.c.test', 'wtd.c.test', 'fo.c.test', 'static.c.test', 'alias.c.test']
    // Every entry and marker the cache held at some point, old ones included (an IC sees them all).
    const seen: { marker: boolean }[] = []
    const everything = () => {
      names.forEach((n) => nets.forEach((net) => assert.ok(ask(n, net))))
      seen.push(...lru.values())
    }
    everything()
    w.now = 1
    move() // a latency move: geo-latency entries come due inside the grace and are rebuilt over the same octets
    w.now = 5000
    everything()
    euDown(w.health, set)
    w.generation++
    w.stateGeneration++ // a state change: every entry of a service that reads eu rebuilt
    everything()
    const entries = seen.filter((e) => !e.marker)
    const markers = seen.filter((e) => e.marker)
    assert.ok(entries.length > 50 && markers.length > 0, `entries ${entries.length}, markers ${markers.length}`)
    for (const e of entries) assert.ok(sameMap(e, entries[0]!), 'an entry with a hidden class of its own')
    for (const m of markers) assert.ok(sameMap(m, markers[0]!), 'a marker with a hidden class of its own')
  })

  test('a miss locates its client once: GeoIP is asked once per client network, however many misses follow', async () => {
    let generation = 1
    const set = build(ZONE, 1)
    const geoIp = countingGeo()
    const health = new Map<string, VipHealth>()
    const metrics = new Metrics({ processMetrics: false })
    // No latency grace, so that a latency move makes the geo-latency answers miss at once.
    const answerCache = { ...DEFAULT_ANSWER_CACHE, latencyGraceMs: 0 }
    const h = new DnsHandler(() => set, createLogger('silent'), { answerCache }, { geo: geoIp.lookup, health: (k) => health.get(k), rand: () => 0.37, generations: () => ({ generation, stateGeneration: 1 }) }, metrics)
    const ask = (name: string, net: string) => parseReply(h.handle(buildQuery({ name, type: TYPE.A, opt: { udpSize: 1232, options: [ecs(net, 24)] } }), 'udp', '127.0.0.1')!)
    assert.equal(ask('geo.c.test', '81.2.69.0').answers.length, 2)
    assert.equal(geoIp.calls, 1, 'the first miss locates the client')
    for (const name of ['lat.c.test', 'near.c.test', 'wtd.c.test', 'geo.c.test']) ask(name, '81.2.69.0')
    generation++ // a latency move of eu's check: the geo-latency answers miss again
    health.set(euCheck(set), { state: 'unknown', ewmaMs: 3, latencyGen: generation })
    const missesBefore = await counter(metrics, 'meridian_dns_cache_misses_total')
    for (const name of ['lat.c.test', 'near.c.test']) assert.ok(ask(name, '81.2.69.0').answers.length > 0)
    assert.equal(await counter(metrics, 'meridian_dns_cache_misses_total'), missesBefore + 2, 'both missed')
    assert.equal(geoIp.calls, 1, 'later misses for the same network reuse where it is')
    ask('geo.c.test', '8.8.8.0')
    assert.equal(geoIp.calls, 2, 'another network is located')
  })

  for (const kind of CLIENT_KINDS) {
    // The numeric kinds' open-addressed tables grow, so many; a Map keys the text kinds.
    const N = CLIENT_KINDS.indexOf(kind) < 3 ? 10_000 : 2_000
    test(`${N.toLocaleString('en')} ${kind}: each located once, then every query a hit`, async () => {
      const geoIp = countingGeo()
      const h = handlers({ set: build(ZONE, 1), generation: 1, health: new Map() }, undefined, geoIp.lookup)
      const ask = (i: number, again: string) => {
        const c = nthClient(kind, i)
        agree(h, buildQuery({ id: i, name: i % 2 ? 'wtd.c.test' : 'geo.c.test', type: TYPE.A, opt: c.opt }), c.peer, `${c.what}${again}`)
      }
      for (let i = 0; i < N; i++) ask(i, '')
      assert.equal(geoIp.calls, N, 'every client located once')
      const hits = await counter(h.metrics, 'meridian_dns_cache_hits_total')
      for (let i = 0; i < N; i++) ask(i, ', again')
      assert.equal(geoIp.calls, N, 'no client located again: every record is found')
      assert.equal((await counter(h.metrics, 'meridian_dns_cache_hits_total')) - hits, N, 'the second pass is all hits')
    })
  }

  test('clear(): after the GeoIP database changes every answer is the new database\'s, where the cache would keep the old one\'s', () => {
    let db = geo
    const switchable: GeoLookup = (address, prefix) => db(address, prefix)
    const h = sharedHandlers({ set: build(ZONE, 1), generation: 1, health: new Map() }, switchable)
    const names = ['geo.c.test', 'near.c.test', 'lat.c.test', 'wtd.c.test', 'alias.c.test']
    const asks = names.flatMap((name) => [
      { what: `${name}, ECS 81.2.69.0/24`, msg: buildQuery({ name, type: TYPE.A, opt: { udpSize: 1232, options: [ecs('81.2.69.0', 24)] } }), peer: '127.0.0.1' },
      { what: `${name}, resolver 81.9.9.9`, msg: buildQuery({ name, type: TYPE.A }), peer: '81.9.9.9' },
    ])
    for (const a of asks) agree(h, a.msg, a.peer, `${a.what}, the first database`)
    // The new database puts 81/8 (GB) in the US.
    db = (address, prefix) => geo(address.startsWith('81.') ? `8.${address.slice(3)}` : address, prefix)
    const stale = asks.filter((a) => h.cached.handle(a.msg, 'udp', a.peer)!.toString('hex') !== h.plain.handle(a.msg, 'udp', a.peer)!.toString('hex'))
    assert.ok(stale.length >= 4, `without clear() the cache answers from the old locations (${stale.length} of ${asks.length} differ)`)
    h.cached.cache!.clear()
    for (let round = 0; round < 2; round++) for (const a of asks) agree(h, a.msg, a.peer, `${a.what}, the new database, round ${round}`)
  })

  test('a resolver address whose number is an ECS network\'s is its own client', () => {
    const h = handlers({ set: build(ZONE, 1), generation: 1, health: new Map() })
    // 24.81.2.3 is 0x18510203, the number of ECS 81.2.3.0/24 (source 24, octets 81.2.3): GeoIP puts
    // one nowhere and the other in GB, and each keeps its own answer in either order.
    const viaEcs = buildQuery({ id: 1, name: 'geo.c.test', type: TYPE.A, opt: { udpSize: 1232, options: [ecs('81.2.3.0', 24)] } })
    const noEcs = buildQuery({ id: 1, name: 'geo.c.test', type: TYPE.A, opt: { udpSize: 1232 } })
    assert.equal(ipv4Number('24.81.2.3'), 0x18510203)
    for (let round = 0; round < 2; round++) {
      agree(h, viaEcs, '127.0.0.1', `ECS 81.2.3.0/24, round ${round}`)
      agree(h, noEcs, '24.81.2.3', `resolver 24.81.2.3, round ${round}`)
    }
    const records = (m: Buffer, from: string) => parseReply(h.cached.handle(m, 'udp', from)!).answers.map((a) => a.rdata.toString('hex'))
    assert.notDeepEqual(records(viaEcs, '127.0.0.1'), records(noEcs, '24.81.2.3'), 'the two clients get different records')
  })

  test('IPv6 ECS networks that differ in one octet of a /56, or only in the prefix, are told apart', () => {
    const geoIp = countingGeo()
    const h = handlers({ set: build(ZONE, 1), generation: 1, health: new Map() }, undefined, geoIp.lookup)
    const ask = (net: string, prefix: number, what: string) => agree(h, buildQuery({ id: prefix, name: 'wtd.c.test', type: TYPE.A, opt: { udpSize: 1232, options: [ecs(net, prefix)] } }), '::1', what)
    // One address, three prefixes: three clients.
    for (const prefix of [40, 48, 56]) ask('2a01:ab:cd00::', prefix, `2a01:ab:cd00::/${prefix}`)
    assert.equal(geoIp.calls, 3)
    // A /56 and the seven that differ from it in one octet each: eight clients, each found again.
    const octets = [0x2a, 0x02, 0x13, 0x24, 0x35, 0x46, 0x57]
    const v6 = (o: number[]) => `${hex(o[0]!)}${hex(o[1]!)}:${hex(o[2]!)}${hex(o[3]!)}:${hex(o[4]!)}${hex(o[5]!)}:${hex(o[6]!)}00::`
    const variants = [octets, ...octets.map((_, p) => octets.map((o, q) => (q === p ? o ^ 0x08 : o)))]
    for (let round = 0; round < 2; round++) {
      for (const o of variants) ask(v6(o), 56, `${v6(o)}/56, round ${round}`)
      assert.equal(geoIp.calls, 3 + variants.length, `round ${round}: each of the eight located once`)
    }
  })

  for (const kind of CLIENT_KINDS) {
    test(`more ${kind} than the client records hold: the records start again, answers unchanged`, () => {
      const world: World = { set: build(ZONE, 1), generation: 1, health: new Map() }
      // 1,000 entries: the smallest cache, so 1,000 client records; 2,500 clients go round them twice.
      const h = handlers(world, { maxEntries: 1000, maxBytes: 1 << 20 })
      for (let round = 0; round < 2; round++) {
        for (let i = 0; i < 2500; i++) {
          const { opt, peer, what } = nthClient(kind, i)
          for (const name of ['wtd.c.test', 'lat.c.test']) agree(h, buildQuery({ id: i, name, type: TYPE.A, opt }), peer, `${name} from ${what}, round ${round}`)
        }
      }
      assert.ok(h.cached.cache!.size <= 1000)
    })
  }

  test('when an id space runs out the cache empties itself and answers stay the uncached ones', async () => {
    // Tiny id spaces (8 location/bucket ids, 6 base ids) so that both run out many times over.
    for (const idSpaces of [{ parts: 8, bases: 1 << 30 }, { parts: 1 << 20, bases: 6 }]) {
      const world: World = { set: build(ZONE, 1), generation: 1, health: new Map() }
      const { cached, plain, metrics } = handlers(world, { ...DEFAULT_ANSWER_CACHE, idSpaces })
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 60; i++) {
          const net = `${[81, 8, 1, 100][i % 4]}.${i}.${round}.0`
          for (const [name, type] of NAMES.slice(0, 10)) {
            const msg = buildQuery({ id: i, name, type, opt: { udpSize: 1232, options: [ecs(net, 24)] } })
            const a = cached.handle(msg, 'udp', '127.0.0.1')!
            assert.equal(a.toString('hex'), plain.handle(msg, 'udp', '127.0.0.1')!.toString('hex'), `${name}/${type} from ${net}/24 (id spaces ${JSON.stringify(idSpaces)})`)
          }
        }
      }
      assert.ok(cached.cache!.flushes >= 5, `emptied ${cached.cache!.flushes} times (id spaces ${JSON.stringify(idSpaces)})`)
      const hits = await counter(metrics, 'meridian_dns_cache_hits_total')
      assert.ok(hits >= 100, `between the flushes the cache still answers: ${hits} hits of 1,800 queries`)
    }
  })

  test('LRU keys stay small integers (V8 Smis) after a thousand names and types queried once, and when the base table fills', async () => {
    for (const baseTable of [undefined, 64]) {
      const world: World = { set: build(ZONE, 1), generation: 1, health: new Map() }
      const { cached, plain, metrics } = handlers(world, { ...DEFAULT_ANSWER_CACHE, idSpaces: { parts: 2 ** 21, bases: 2 ** 30, baseTable } })
      const ask = (name: string, type: number, net: string, label: string) => {
        const msg = buildQuery({ id: type & 0xffff, name, type, opt: { udpSize: 1232, options: [ecs(net, 24)] } })
        const a = cached.handle(msg, 'udp', '127.0.0.1')!
        assert.equal(a.toString('hex'), plain.handle(msg, 'udp', '127.0.0.1')!.toString('hex'), label)
        return a
      }
      // GSLB names first, then 1,000 cacheable NODATA answers of their own base each, then more GSLB.
      for (const name of ['geo.c.test', 'wtd.c.test']) ask(name, TYPE.A, '81.2.69.0', `${name} first`)
      for (let t = 0; t < 1000; t++) {
        const nodata = parseReply(ask('static.c.test', 1000 + t, '8.8.8.0', `static.c.test type ${1000 + t}`))
        assert.equal(nodata.rcode, 0)
        assert.equal(nodata.answers.length, 0, 'NODATA: a base of its own per type')
      }
      for (const name of ['lat.c.test', 'near.c.test']) ask(name, TYPE.A, '8.8.8.0', `${name} after the others`)
      const hits = await counter(metrics, 'meridian_dns_cache_hits_total')
      for (const name of ['geo.c.test', 'wtd.c.test', 'lat.c.test', 'near.c.test']) ask(name, TYPE.A, name === 'geo.c.test' || name === 'wtd.c.test' ? '81.2.69.0' : '8.8.8.0', `${name} again`)
      assert.equal((await counter(metrics, 'meridian_dns_cache_hits_total')) - hits, 4, `the GSLB answers are still cached (base table ${baseTable ?? 'default'})`)
      assert.ok([...lruOf(cached).keys()].length > 1000)
      // What lookups add parts to and pass to the LRU: each base's key, as V8 holds it.
      const isSmi = isSmiCheck()
      const bases = baseKeysOf(cached)
      assert.ok(bases.length >= (baseTable ? 4 : 1000), `${bases.length} bases in the table`)
      assert.deepEqual(bases.filter((k) => !isSmi(k)), [], `every base key a V8 Smi (base table ${baseTable ?? 'default'})`)
    }
  })

  test('more client-dependent names than the Smi slots hold: every slot is used, the rest key by exact doubles, answers unchanged', async () => {
    const slots = new BaseKeys(2 ** 22).slots
    assert.equal(slots, 2 ** (SMI_BITS - 22))
    // geo services x A and AAAA: 200 client-dependent bases more than the slots.
    const count = slots / 2 + 100
    const services = Array.from({ length: count }, (_, i) => `  s${i}: { policy: geo, answers: 1 }`).join('\n')
    const world: World = { set: build(ZONE.replace(/\nservices:\n/, `\nservices:\n${services}\n`), 1), generation: 1, health: new Map() }
    const { cached, plain, metrics } = handlers(world)
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < count; i++) {
        for (const type of [TYPE.A, TYPE.AAAA]) {
          for (const net of ['81.2.69.0', '8.8.8.0']) {
            const msg = buildQuery({ id: i, name: `s${i}.c.test`, type, opt: { udpSize: 1232, options: [ecs(net, 24)] } })
            assert.equal(cached.handle(msg, 'udp', '127.0.0.1')!.toString('hex'), plain.handle(msg, 'udp', '127.0.0.1')!.toString('hex'), `s${i}/${type} from ${net}/24, round ${round}`)
          }
        }
      }
    }
    assert.equal(await counter(metrics, 'meridian_dns_cache_hits_total'), count * 4, 'the second round is all hits, past the slots too')
    // (Once a base's key is a double, V8 holds every base's key field as one: read back, none is a
    // Smi; lookups add parts to them in optimized code and get Smis again.)
    const bases = baseKeysOf(cached)
    assert.equal(bases.length, count * 2)
    const small = bases.filter((k) => k >= -(2 ** (SMI_BITS - 1)) && k < 2 ** (SMI_BITS - 1))
    assert.equal(small.length, slots, 'every slot went to a base before any key left the Smi range')
    assert.ok(bases.every((k) => Number.isSafeInteger(k)), 'the others exact integers')
  })

  test('a new zone set is seen at once: no stale answer after a reload', () => {
    const world: World = { set: build(ZONE, 1), generation: 1, health: new Map() }
    const h = handlers(world)
    same(h, 'before')
    world.set = build(ZONE.replace('static: { A: [192.0.2.1, 192.0.2.2], TXT: hello }', 'static: { A: 192.0.2.9, TXT: changed }').replace('wtd: { policy: weighted, answers: 1 }', 'wtd: { policy: failover, answers: 1 }'), 2)
    same(h, 'after')
    const r = parseReply(h.cached.handle(buildQuery({ name: 'static.c.test', type: TYPE.A }), 'udp', '127.0.0.1')!)
    assert.deepEqual(r.answers.map((x) => [...x.rdata].join('.')), ['192.0.2.9'])
  })

  test('rotation still spreads a region over its VIPs on cache hits', () => {
    const world: World = { set: build(ZONE, 1), generation: 1, health: new Map() }
    let i = 0
    const seq = [0.1, 0.5, 0.9]
    const h = new DnsHandler(() => world.set, createLogger('silent'), {}, { geo, health: () => undefined, rand: () => seq[i++ % 3]!, generations: () => ({ generation: 1, stateGeneration: 1 }) })
    const firsts = new Set<string>()
    for (let n = 0; n < 12; n++) {
      const r = parseReply(h.handle(buildQuery({ name: 'geo.c.test', type: TYPE.A, opt: { udpSize: 1232, options: [ecs('81.2.69.0', 24)] } }), 'udp', '127.0.0.1')!)
      assert.equal(r.answers.length, 2)
      firsts.add([...r.answers[0]!.rdata].join('.'))
    }
    assert.deepEqual([...firsts].sort(), ['198.51.100.1', '198.51.100.2', '198.51.100.3'])
    assert.ok(h.cache!.size > 0)
  })

  test('NXDOMAIN on the hot path: the octets of the full path, only for names no zone has, in the longest zone', async () => {
    // A second zone below the first, and empty non-terminals (b.deep, deep) that must stay NODATA.
    const withDeep = ZONE.replace('  alias: { CNAME: geo }', '  alias: { CNAME: geo }\n  a.b.deep: { A: 192.0.2.8 }')
    const world: World = { set: build(withDeep, 1, [{ file: 'sub.yaml', text: SUB_ZONE }]), generation: 1, health: new Map() }
    const h = handlers(world)
    const cache = h.cached.cache!
    const nx = ['nothere.c.test', 'NoThErE.C.TeSt', 'x.y.z.nothere.c.test', 'c.b.deep.c.test', 'x.static.c.test', 'sub2.c.test', 'nothere.sub.c.test', 'x.www.sub.c.test']
    const there = ['deep.c.test', 'b.deep.c.test', 'a.b.deep.c.test', 'static.c.test', 'c.test', 'sub.c.test', 'www.SUB.c.test', 'geo.c.test']
    const types = [TYPE.A, TYPE.AAAA, TYPE.MX, TYPE.TXT, TYPE.ANY, 257, 99]
    let expected = 0
    for (let round = 0; round < 2; round++) {
      for (const name of nx) {
        for (const type of types) {
          for (const c of CLIENTS) {
            const msg = buildQuery({ id: (round * 31 + type) & 0xffff, name, type, rd: c.rd, cd: c.cd, opt: c.opt })
            const a = h.cached.handle(msg, 'udp', c.peer)!
            const b = h.plain.handle(msg, 'udp', c.peer)!
            const what = `${name} type ${type}, ${c.name}`
            assert.equal(parseReply(a).rcode, 3, what)
            assert.deepEqual(shape(parseReply(a)), shape(parseReply(b)), what)
            // The octets the full path's cached NXDOMAIN (the cache's negative()) gives.
            const parsed = parseQuery(msg)
            assert.ok(parsed.kind === 'query')
            const full = cache.negative(parsed.query, respond(world.set, parsed.query, c.peer), 512)!
            assert.equal(a.toString('hex'), full.toString('hex'), what)
            const zone = parseReply(a).authority[0]!
            assert.equal(zone.name.toLowerCase(), name.toLowerCase().includes('sub.c.test') ? 'sub.c.test' : 'c.test', `${what}: the SOA of the longest zone`)
            expected++
          }
        }
      }
    }
    assert.equal(await counter(h.metrics, 'meridian_dns_cache_nxdomain_total'), expected, 'every NXDOMAIN above came from the hot path')
    // Names the zones have, types the full path refuses, names outside every zone: never NXDOMAIN.
    for (const name of there) {
      for (const type of types) {
        const msg = buildQuery({ name, type, opt: { udpSize: 1232 } })
        // The first answer takes the full path (and is cached), the second is a hit where it can be.
        assert.notEqual(parseReply(h.cached.handle(msg, 'udp', '127.0.0.1')!).rcode, 3, `${name} type ${type}`)
        assert.equal(h.cached.handle(msg, 'udp', '127.0.0.1')!.toString('hex'), h.plain.handle(msg, 'udp', '127.0.0.1')!.toString('hex'))
      }
    }
    for (const [name, type] of [['nothere.c.test', 252], ['nothere.c.test', 251], ['nothere.elsewhere.test', TYPE.A], ['test', TYPE.A]] as const) {
      const msg = buildQuery({ name, type })
      assert.notEqual(parseReply(h.cached.handle(msg, 'udp', '127.0.0.1')!).rcode, 3, `${name} type ${type}`)
      assert.equal(h.cached.handle(msg, 'udp', '127.0.0.1')!.toString('hex'), h.plain.handle(msg, 'udp', '127.0.0.1')!.toString('hex'))
    }
    assert.equal(await counter(h.metrics, 'meridian_dns_cache_nxdomain_total'), expected, 'and nothing else was')
    // A name added by a reload exists at once.
    world.set = build(ZONE.replace('  alias: { CNAME: geo }', '  alias: { CNAME: geo }\n  nothere: { A: 192.0.2.9 }'), 2)
    const r = parseReply(h.cached.handle(buildQuery({ name: 'nothere.c.test', type: TYPE.A }), 'udp', '127.0.0.1')!)
    assert.equal(r.rcode, 0)
    assert.deepEqual(r.answers.map((x) => [...x.rdata].join('.')), ['192.0.2.9'])
  })

  test('answers past 512 octets are cached and served from the cache to the clients that take them whole; the others get the full path\'s truncated reply', async () => {
    // TXT sets of ~0.6, ~1.5 and ~5 KB, and a geo service of 16 AAAA answers under a long name.
    const MANY = `many-${'v'.repeat(40)}`
    const txt = (n: number, c: string) => JSON.stringify(Array.from({ length: n }, (_, i) => `${c}${i}`.padEnd(200, c)))
    const v6 = Array.from({ length: 16 }, (_, i) => `"2001:db8:b::${i + 1}"`).join(', ')
    const zone = ZONE.replace('  alias: { CNAME: geo }', `  alias: { CNAME: geo }\n  t600: { TXT: ${txt(3, 'a')} }\n  t1500: { TXT: ${txt(7, 'b')} }\n  t5000: { TXT: ${txt(24, 'c')} }`)
      .replace('  jp: {', `  wide: { location: { country: GB }, vips: [${v6}] }\n  jp: {`)
      .replace('  none: {', `  ${MANY}: { policy: geo, regions: [wide], answers: 16 }\n  none: {`)
    const world: World = { set: build(zone, 1), generation: 1, health: new Map() }
    const h = handlers(world)
    const names: [string, number][] = [['t600.c.test', TYPE.TXT], ['T1500.c.test', TYPE.TXT], ['t5000.c.test', TYPE.TXT], [`${MANY}.c.test`, TYPE.AAAA]]
    // Each reply's whole length, from TCP (asked first), per name and client.
    const whole = new Map<string, number>()
    for (const transport of ['tcp', 'udp'] as const) {
      for (const [name, type] of names) {
        for (const c of CLIENTS) {
          const before = await counter(h.metrics, 'meridian_dns_cache_hits_total')
          const limit = transport === 'tcp' ? 65535 : c.opt ? Math.min(Math.max((c.opt as { udpSize?: number }).udpSize ?? 512, 512), 1232) : 512
          const what = `${transport} ${name} ${c.name}`
          for (let round = 0; round < 3; round++) {
            const msg = buildQuery({ id: round * 7919 + name.length, name, type, rd: c.rd, cd: c.cd, opt: c.opt })
            const a = h.cached.handle(msg, transport, c.peer)!
            const b = h.plain.handle(msg, transport, c.peer)!
            assert.equal(a.toString('hex'), b.toString('hex'), `${what}, round ${round}`)
            if (transport === 'tcp') whole.set(`${name} ${c.name}`, a.length)
            assert.equal(parseReply(a).tc, whole.get(`${name} ${c.name}`)! > limit, `${what}: TC exactly when the whole reply is past ${limit}`)
          }
          const hits = (await counter(h.metrics, 'meridian_dns_cache_hits_total')) - before
          // Taken whole: rounds 2 and 3 (at least) come from the cache. Cut: none does.
          if (whole.get(`${name} ${c.name}`)! <= limit) assert.ok(hits >= 2, `${what}: ${hits} hits`)
          else assert.equal(hits, 0, `${what}: a truncated reply never comes from the cache`)
        }
      }
    }
    const most = (name: string) => Math.max(...CLIENTS.map((c) => whole.get(`${name} ${c.name}`)!))
    const least = (name: string) => Math.min(...CLIENTS.map((c) => whole.get(`${name} ${c.name}`)!))
    // The sizes this test meant: each past 512 for every client, the large TXT sets past 1232 (UDP cuts them for everyone).
    for (const [name] of names) assert.ok(least(name) > 512, `${name}: ${least(name)}-${most(name)} octets`)
    assert.ok(least('t600.c.test') < 1232 - 30 && least('T1500.c.test') > 1232 && least('t5000.c.test') > 4096, `${least('t600.c.test')}, ${least('T1500.c.test')}, ${least('t5000.c.test')}`)
  })

  test('large answers stay within the byte bound: the entries the LRU evicted are not kept by the table of built entries either', async () => {
    // 300 names of a 2 KB TXT set each, over TCP: 600 KB of answers for a 400 KB cache.
    const records = Array.from({ length: 300 }, (_, i) => `  big${i}: { TXT: ${JSON.stringify(Array.from({ length: 8 }, (_, j) => `${i}-${j}-`.padEnd(250, 'x')))} }`).join('\n')
    const world: World = { set: build(ZONE.replace('  alias: { CNAME: geo }', `  alias: { CNAME: geo }\n${records}`), 1), generation: 1, health: new Map() }
    const maxBytes = 400_000
    const h = handlers(world, { ...DEFAULT_ANSWER_CACHE, maxBytes })
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 300; i++) {
        const msg = buildQuery({ id: i, name: `big${i}.c.test`, type: TYPE.TXT })
        const a = h.cached.handle(msg, 'tcp', '127.0.0.1')!
        assert.equal(a.toString('hex'), h.plain.handle(msg, 'tcp', '127.0.0.1')!.toString('hex'), `big${i}`)
        assert.ok(a.length > 2000, `big${i}: ${a.length} octets`)
      }
    }
    type Octets = { head: Buffer; blocks: Buffer; tail: Buffer }
    const built = [...(h.cached.cache as unknown as { built: { values(): IterableIterator<Octets> } }).built.values()]
    const builtOctets = built.reduce((n, e) => n + e.head.length + e.blocks.length + e.tail.length, 0)
    assert.ok(h.cached.cache!.bytes <= maxBytes, `the LRU accounts ${h.cached.cache!.bytes} octets`)
    assert.ok(h.cached.cache!.size > 100, `the LRU holds ${h.cached.cache!.size} of the 300 answers`)
    assert.ok(builtOctets <= maxBytes / 4, `the built entries hold ${builtOctets} octets (${built.length} entries)`)
  })

  test('messages the hot path does not read go the full way: FORMERR, BADVERS, class CH, TC', () => {
    const world: World = { set: build(ZONE, 1), generation: 1, health: new Map() }
    const h = handlers(world)
    const cases = [
      buildQuery({ name: 'geo.c.test', opt: { udpSize: 1232, version: 1 } }),
      buildQuery({ name: 'geo.c.test', opt: { udpSize: 1232, options: [ecsOption(1, 24, 0, [81, 2, 69, 1])] } }),
      buildQuery({ name: 'geo.c.test', opt: { udpSize: 1232, options: [ecsOption(1, 33, 0, [81, 2, 69, 1, 0])] } }),
      buildQuery({ name: 'geo.c.test', opt: { udpSize: 1232, options: [ecs('81.2.69.0', 24), ecs('81.2.69.0', 24)] } }),
      buildQuery({ name: 'geo.c.test', class: 3 }),
      buildQuery({ name: 'geo.c.test', trailing: Buffer.from([1, 2]) }),
      buildQuery({ name: 'geo.c.test', opt: [{ udpSize: 1232 }, { udpSize: 1232 }] }),
    ]
    for (let round = 0; round < 2; round++) {
      for (const msg of cases) assert.equal(h.cached.handle(msg, 'udp', '127.0.0.1')?.toString('hex'), h.plain.handle(msg, 'udp', '127.0.0.1')?.toString('hex'))
    }
  })
})

describe('BaseKeys: LRU key prefixes', () => {
  test('SMI_BITS is how wide V8 keeps integers unboxed in this node', () => {
    const isSmi = isSmiCheck()
    // As int32s (`| 0`): V8 keeps a double result boxed even when it is whole.
    const end = 2 ** (SMI_BITS - 1)
    assert.ok(isSmi((end - 1) | 0) && isSmi(-end | 0), `[-2^${SMI_BITS - 1}, 2^${SMI_BITS - 1}) are Smis`)
    if (SMI_BITS === 31) assert.ok(!isSmi((2 ** 31 - 1) | 0), '31 bits: 2^31 - 1 is not')
  })

  for (const bits of [31, 32]) {
    test(`${bits}-bit Smis: slots tile the range; single keys share slots; past them exact doubles; nothing given twice`, () => {
      const space = 2 ** 22
      const min = -(2 ** (bits - 1))
      const end = 2 ** (bits - 1)
      const inRange = (k: number) => Number.isInteger(k) && k >= min && k < end
      const keys = new BaseKeys(space, bits)
      const isSmi = isSmiCheck()
      const slots = 2 ** (bits - 22)
      assert.equal(keys.slots, slots)
      const slotOf = (k: number) => Math.floor((k - min) / space)
      // Single keys: consecutive within a slot, a new slot when one is full; which slots they took.
      const singleSlots = new Set<number>()
      let prev = NaN
      const single = (n: number) => {
        for (let i = 0; i < n; i++) {
          const k = keys.single()
          assert.ok(inRange(k), `single key ${k} in the Smi range`)
          if (bits <= SMI_BITS && (i & 0xffff) === 0) assert.ok(isSmi(k), `single key ${k} a Smi`)
          if (k !== prev + 1) {
            assert.equal((k - min) % space, 0, `a single key starts a slot or follows the last one: ${k} after ${prev}`)
            assert.ok(!singleSlots.has(slotOf(k)), 'a slot is taken once')
          }
          singleSlots.add(slotOf(k))
          prev = k
        }
      }
      single(space + 1) // fills one slot, starts a second
      const ownSmi: boolean[] = []
      const own = Array.from({ length: slots + 90 }, () => {
        const k = keys.ownSlot()
        ownSmi.push(isSmi(k)) // as returned (an array of numbers holds them as doubles)
        return k
      })
      single(space - 1) // fills the second
      const past = Array.from({ length: 3 }, () => keys.single())
      assert.deepEqual([...singleSlots], [0, 1])
      const small = own.slice(0, slots - 2)
      assert.ok(small.every(inRange) && !own.slice(slots - 2).some(inRange), 'two slots went to single keys, the rest to own slots')
      assert.deepEqual(small.map(slotOf), Array.from({ length: slots - 2 }, (_, i) => i + 2), 'each own slot once, none of the single keys\' slots')
      assert.deepEqual(own.slice(slots - 2), Array.from({ length: 92 }, (_, i) => end + i * space), 'past the Smi range, own slots go on above it')
      assert.ok(Number.isSafeInteger(own.at(-1)! + space - 1), 'exact')
      assert.deepEqual(past, [min - 1, min - 2, min - 3], 'single keys past the slots: below the Smi range')
      assert.ok(keys.isSmall(own[0]!) && !keys.isSmall(own.at(-1)!))
      if (bits <= SMI_BITS) assert.ok(ownSmi.slice(0, slots - 2).every(Boolean), 'prefixes in the range are Smis, not whole doubles')
      keys.reset()
      assert.equal(keys.ownSlot(), min, 'reset: from the first slot again')
    })
  }
})

describe('ipv4Number', () => {
  test('a dotted quad as its 32 bits (signed), anything else -1', () => {
    assert.equal(ipv4Number('0.0.0.0'), 0)
    assert.equal(ipv4Number('1.2.3.4'), 0x01020304)
    assert.equal(ipv4Number('127.0.0.1'), 0x7f000001)
    assert.equal(ipv4Number('128.0.0.1'), 0x80000001 | 0)
    assert.equal(ipv4Number('203.0.113.254'), (203 << 24) | (113 << 8) | 254)
    assert.equal(ipv4Number('255.255.255.254'), -2)
    for (const bad of ['', '1.2.3', '1.2.3.4.5', '1..2.3', '.1.2.3', '1.2.3.', '256.1.1.1', '1.2.3.1000', '1.2.3.4 ', 'a.b.c.d', '::1', '::ffff:1.2.3.4', '2001:db8::1', '255.255.255.255']) {
      assert.equal(ipv4Number(bad), -1, JSON.stringify(bad))
    }
  })
})
