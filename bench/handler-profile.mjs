// In-process profile of DnsHandler.handle on the bench traffic (no sockets): where a query's time
// goes, hits and misses alike. `node bench/handler-profile.mjs [--seconds N]`, after npm run build;
// add `node --cpu-prof --cpu-prof-dir DIR` to get a profile. Health is taken as all up.
// --only a|aaaa|nx: one kind of query. --bump N: every N queries one check's latency moves (the first
// VIP of the region named by --flap-region, default us-east), as the poller publishes a move: a new
// health generation and the check's new latencyGen, so the geo-latency answers of the services that
// read it miss (after their share of the latency grace) and are rebuilt: the miss path under a live
// poller. (Before session 14 the cache ended every geo-latency answer on any generation move, and
// --bump moved only the generation.)
// --pair-regions: each service reads two of the five regions (see below).
// --flap N: every N queries one check goes down or back up (the first VIP of the region named by
// --flap-region, default us-east), and the generations move as the poller moves them: the answers
// of the services that read it are rebuilt at their next query.
// --syscall: one system call (a 1-byte write to /dev/null) before every query, as a server's
// recvmsg/sendmsg do: on a kernel with page-table isolation and no PCID each one flushes the TLB,
// so the handler runs cold as it does under load (docs/benchmarks.md, session 6). The figure
// printed is then the handler's: the time per query minus that of the system calls alone
// (measured first, for the same number of calls).
// --warm: two passes over every message before measuring (the cache filled: steady state).
// --part parse|lookup: time only the answer cache's parse() or lookup() (parse, LRU, assemble) of
// each message instead of the whole handler (use with --warm, so lookups hit). Since session 13
// parse() leaves the client's key to keyClient(), which lookup() runs when it needs a record, so
// --part parse figures from before then include work that now counts under lookup.
// --bases N: first answer N queries that each make a base key of their own (NODATA for svc00 with
// query types 1000, 1001, ...: cacheable, client-independent), as a long-running server has seen
// names and types beyond its services'; the bench traffic's bases then come after them.
// --clients resolver: the same queries without ECS (EDNS with no option), each from a resolver
// address in its client network (a.b.c.1), as resolvers that send no ECS ask (the bench's traffic
// all carries ECS); each query gets a new string of its address, as from dgram.
// --clients ecs6: the same queries with IPv6 ECS /56 instead (as Google Public DNS sends for IPv6
// clients), network a.b.c becoming 2a00:aabb:cc00::/56.
import { mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { option, ROOT } from './common.mjs'
import { ORIGIN, REGIONS, SERVICES, zoneYaml } from './zone.mjs'
import { buildQuery, buildTraffic, clientNetworks, DEFAULT_GEODB } from './traffic.mjs'

const seconds = Number(option('--seconds', 5))
const only = option('--only', '')
const bump = Number(option('--bump', 0))
const flap = Number(option('--flap', 0))
const flapRegion = option('--flap-region', 'us-east')
const syscall = process.argv.includes('--syscall')
const devNull = syscall ? openSync('/dev/null', 'w') : -1
const oneByte = Buffer.alloc(1)
const part = option('--part', '')
const priorBases = Number(option('--bases', 0))
if (part && part !== 'parse' && part !== 'lookup') throw new Error('--part takes parse or lookup')
const dist = path.join(ROOT, 'dist', 'src')
const { DnsHandler } = await import(path.join(dist, 'dns', 'handler.js'))
const { countryLocation, GeoDb, placeLocation } = await import(path.join(dist, 'geo', 'index.js'))
const { Metrics } = await import(path.join(dist, 'metrics', 'index.js'))
const { createLogger } = await import(path.join(dist, 'log.js'))

const dir = mkdtempSync(path.join(tmpdir(), 'meridian-prof-'))
let yaml = zoneYaml(Object.fromEntries(REGIONS.map((r) => [r.name, 80])))
// --pair-regions: service i reads two regions (i and i + 1 of the five) instead of (nearly) all, as
// services over pools of their own do, so a region's check is read by 8 of the 20 services.
if (process.argv.includes('--pair-regions')) {
  yaml = yaml.replace(/^ {2}svc(\d\d): \{ policy: (\S+), regions: (?:all|\[[^\]]*\]),/gm, (_, n, policy) => `  svc${n}: { policy: ${policy}, regions: [${REGIONS[Number(n) % 5].name}, ${REGIONS[(Number(n) + 1) % 5].name}],`)
}
writeFileSync(path.join(dir, `${ORIGIN}.yaml`), yaml)
const { FileConfigStore } = await import(path.join(dist, 'store', 'file-store.js'))
const store = new FileConfigStore(dir, createLogger('error'), undefined, { countryPoint: countryLocation, cityPoint: placeLocation })
await store.reload('profile')
const set = store.current()
rmSync(dir, { recursive: true, force: true })
const { networks } = clientNetworks({ count: 10000 })
const { data } = buildTraffic({ origin: ORIGIN, services: SERVICES, networks, count: 200000 })
const all = []
for (let off = 0; off < data.length; ) {
  const len = data.readUInt16BE(off)
  all.push(data.subarray(off + 2, off + 2 + len))
  off += 2 + len
}
const want = { a: 1, aaaa: 28, nx: 1 }[only]
const clients = option('--clients', 'ecs')
if (clients !== 'ecs' && clients !== 'resolver' && clients !== 'ecs6') throw new Error('--clients takes ecs, ecs6 or resolver')
const msgs = only ? all.filter((m) => m.readUInt16BE(m.indexOf(0, 12) + 1) === want && m.includes('nx-') === (only === 'nx')) : all
// Every traffic message ends with its OPT (11 octets) holding one ECS option (11 octets: a.b.c.0/24).
const peers = msgs.map((m) => (clients === 'ecs' ? '127.0.0.1' : `${m[m.length - 3]}.${m[m.length - 2]}.${m[m.length - 1]}.1`))
if (clients === 'resolver') {
  for (let i = 0; i < msgs.length; i++) {
    const m = Buffer.from(msgs[i].subarray(0, msgs[i].length - 11))
    m.writeUInt16BE(0, m.length - 2) // the OPT's RDLENGTH: no options
    msgs[i] = m
  }
}
if (clients === 'ecs6') {
  for (let i = 0; i < msgs.length; i++) {
    const old = msgs[i]
    const net = old.subarray(old.length - 3)
    const ecs6 = Buffer.from([0, 8, 0, 11, 0, 2, 56, 0, 0x2a, 0x00, net[0], net[1], net[2], 0, 0])
    const m = Buffer.concat([old.subarray(0, old.length - 11), ecs6])
    m.writeUInt16BE(ecs6.length, m.length - ecs6.length - 2) // the OPT's RDLENGTH
    msgs[i] = m
  }
}
const geo = await GeoDb.open(DEFAULT_GEODB)
const metrics = new Metrics({ processMetrics: false })
let gens = { generation: 0, stateGeneration: 0 }
const health = new Map()
const flapRegionDef = REGIONS.find((r) => r.name === flapRegion)
const moving = flap > 0 || bump > 0
if (moving && !flapRegionDef) throw new Error(`--flap-region: no region ${flapRegion} in the bench zone`)
const flapKey = moving ? [...set.checks.keys()].find((k) => k.includes(flapRegionDef.vip)) : undefined
if (moving && !flapKey) throw new Error(`--flap, --bump: no check of ${flapRegionDef.vip} among ${[...set.checks.keys()].join(', ')}`)
const h = new DnsHandler(() => set, createLogger('error'), process.env.CACHE ? { answerCache: { maxEntries: Number(process.env.CACHE), maxBytes: 256 * 1048576 } } : {}, { geo: (a, p) => geo.locate(a, p), health: (k) => health.get(k), rand: Math.random, generations: () => gens }, metrics)
for (let i = 0; i < priorBases; i++) {
  const reply = h.handle(buildQuery(i & 0xffff, `${SERVICES[0]}.${ORIGIN}`, 1000 + i, [8, 8, 8]), 'udp', '127.0.0.1')
  if (!reply || (reply[3] & 0xf) !== 0 || reply.readUInt16BE(6) !== 0) throw new Error(`--bases: query type ${1000 + i} did not get NODATA`)
}
// The system calls alone, for as long, to subtract their cost per call.
let callUs = 0
if (syscall) {
  let calls = 0
  const c0 = performance.now()
  while (performance.now() < c0 + Math.min(2, seconds) * 1000) {
    for (let i = 0; i < 10000; i++) writeSync(devNull, oneByte)
    calls += 10000
  }
  callUs = ((performance.now() - c0) * 1000) / calls
}
if (process.argv.includes('--warm')) for (let w = 0; w < 2; w++) for (let i = 0; i < msgs.length; i++) h.handle(msgs[i], 'udp', peers[i])
// The cache's own parts (private in TypeScript, plain methods here).
const cache = h.cache
if (part && !cache) throw new Error('--part times the answer cache, which CACHE=0 turns off')
const run = part === 'parse' ? (m, p) => cache.parse(m, p) : part === 'lookup' ? (m, p) => cache.lookup(m, p) : (m, p) => h.handle(m, 'udp', p)
let n = 0
const t0 = performance.now()
const end = t0 + seconds * 1000
while (performance.now() < end) {
  for (let i = 0; i < 10000; i++) {
    if (syscall) writeSync(devNull, oneByte)
    const k = n++ % msgs.length
    // A new address string per query, as dgram's rinfo gives the server (its hash not yet computed).
    run(msgs[k], clients === 'resolver' ? (' ' + peers[k]).slice(1) : peers[k])
    if (bump > 0 && n % bump === 0) {
      // A latency move of the check, its state as it was (unknown, as no record says): 5 ms <-> 50 ms.
      gens = { generation: gens.generation + 1, stateGeneration: gens.stateGeneration }
      const was = health.get(flapKey)
      health.set(flapKey, { state: was?.state ?? 'unknown', ewmaMs: was?.ewmaMs === 5 ? 50 : 5, latencyGen: gens.generation })
    }
    if (flap > 0 && n % flap === 0) {
      if (health.has(flapKey)) health.delete(flapKey)
      else health.set(flapKey, { state: 'down', ewmaMs: null })
      gens = { generation: gens.generation + 1, stateGeneration: gens.stateGeneration + 1 }
    }
  }
}
const ms = performance.now() - t0 - (n * callUs) / 1000
const text = await metrics.render()
const num = (name) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? 0)
if (syscall) console.log(`a system call before each query: ${callUs.toFixed(2)} us each alone, subtracted below`)
console.log(`${n} queries in ${(ms / 1000).toFixed(1)} s: ${((ms * 1000) / n).toFixed(2)} us/query, ${Math.round(n / (ms / 1000))} q/s; cache hits ${num('meridian_dns_cache_hits_total')}, misses ${num('meridian_dns_cache_misses_total')}, entries ${h.cache?.size}`)
