// In-process profile of DnsHandler.handle on the bench traffic (no sockets): where a query's time
// goes, hits and misses alike. `node bench/handler-profile.mjs [--seconds N]`, after npm run build;
// add `node --cpu-prof --cpu-prof-dir DIR` to get a profile. Health is taken as all up.
// --only a|aaaa|nx: one kind of query. --bump N: move the health generation every N queries (as a
// latency move does), so geo-latency answers miss and are rebuilt: the miss path under a live poller.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { option, ROOT } from './common.mjs'
import { ORIGIN, REGIONS, SERVICES, zoneYaml } from './zone.mjs'
import { buildTraffic, clientNetworks, DEFAULT_GEODB } from './traffic.mjs'

const seconds = Number(option('--seconds', 5))
const only = option('--only', '')
const bump = Number(option('--bump', 0))
const dist = path.join(ROOT, 'dist', 'src')
const { DnsHandler } = await import(path.join(dist, 'dns', 'handler.js'))
const { countryLocation, GeoDb, placeLocation } = await import(path.join(dist, 'geo', 'index.js'))
const { Metrics } = await import(path.join(dist, 'metrics', 'index.js'))
const { createLogger } = await import(path.join(dist, 'log.js'))

const dir = mkdtempSync(path.join(tmpdir(), 'meridian-prof-'))
writeFileSync(path.join(dir, `${ORIGIN}.yaml`), zoneYaml(Object.fromEntries(REGIONS.map((r) => [r.name, 80]))))
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
const msgs = only ? all.filter((m) => m.readUInt16BE(m.indexOf(0, 12) + 1) === want && m.includes('nx-') === (only === 'nx')) : all
const geo = await GeoDb.open(DEFAULT_GEODB)
const metrics = new Metrics({ processMetrics: false })
const gens = { generation: 0, stateGeneration: 0 }
const h = new DnsHandler(() => set, createLogger('error'), process.env.CACHE ? { answerCache: { maxEntries: Number(process.env.CACHE), maxBytes: 256 * 1048576 } } : {}, { geo: (a, p) => geo.locate(a, p), health: () => undefined, rand: Math.random, generations: () => gens }, metrics)
let n = 0
const t0 = performance.now()
const end = t0 + seconds * 1000
while (performance.now() < end) {
  for (let i = 0; i < 10000; i++) {
    h.handle(msgs[n++ % msgs.length], 'udp', '127.0.0.1')
    if (bump > 0 && n % bump === 0) gens.generation++
  }
}
const ms = performance.now() - t0
const text = await metrics.render()
const num = (name) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? 0)
console.log(`${n} queries in ${(ms / 1000).toFixed(1)} s: ${((ms * 1000) / n).toFixed(2)} us/query, ${Math.round(n / (ms / 1000))} q/s; cache hits ${num('meridian_dns_cache_hits_total')}, misses ${num('meridian_dns_cache_misses_total')}, entries ${h.cache?.size}`)
