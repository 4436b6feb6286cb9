/**
 * Helpers for the GSLB end-to-end tests: simulated L7 pools on loopback VIPs, a zone file in a
 * temporary directory pointing at them, ECS queries built with the raw wire helper, many queries
 * in flight over one UDP socket, and polling a DNS answer until it changes (with the time taken).
 */
import { readFile, writeFile } from 'node:fs/promises'
import { isIPv4 } from 'node:net'
import path from 'node:path'
import { startPool, type SimPool } from '../../src/sim/index.js'
import { buildQuery, ecsOption, parseReply, TYPE, udpExchange, UdpClient, type Reply } from './wire.js'

// ---------------------------------------------------------------------------------------------
// Addresses

/** The 4 or 16 octets of an IPv4 or IPv6 address (no zone index, no embedded IPv4 needed here). */
export function addressBytes(address: string): Buffer {
  if (isIPv4(address)) return Buffer.from(address.split('.').map(Number))
  const [head = '', tail = ''] = address.split('::')
  const h = head ? head.split(':') : []
  const t = address.includes('::') && tail ? tail.split(':') : []
  const groups = address.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h
  if (groups.length !== 8) throw new Error(`not an IPv6 address: ${address}`)
  const out = Buffer.alloc(16)
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2))
  return out
}

/** RFC 5952 text of 4 or 16 octets (`127.0.1.1`, `2001:db8:2::1`). */
export function addressText(b: Buffer): string {
  if (b.length === 4) return [...b].join('.')
  if (b.length !== 16) throw new Error(`an address has 4 or 16 octets, not ${b.length}`)
  const groups = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2))
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen) {
      best = i
      bestLen = j - i
    }
    i = j
  }
  const hex = groups.map((g) => g.toString(16))
  if (best < 0) return hex.join(':')
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`
}

/** `address` in canonical text (so `2001:0db8:2:0::1` and `2001:db8:2::1` compare equal). */
export const canonical = (address: string): string => addressText(addressBytes(address))

// ---------------------------------------------------------------------------------------------
// Queries

export interface Subnet {
  address: string
  prefix: number
}

/** `192.0.2.0/26` -> { address, prefix }. */
export function subnet(text: string): Subnet {
  const [address = '', prefix = ''] = text.split('/')
  return { address, prefix: Number(prefix) }
}

/** A query for `name` with an ECS option carrying exactly the prefix's octets (bits past it zero). */
export function ecsQuery(name: string, type: number, client: Subnet | null, id = 0x1234): Buffer {
  const opt = { udpSize: 1232, options: [] as ReturnType<typeof ecsOption>[] }
  if (client) {
    const bytes = addressBytes(client.address)
    const n = Math.ceil(client.prefix / 8)
    const cut = Buffer.from(bytes.subarray(0, n))
    if (client.prefix % 8 !== 0) cut[n - 1] = cut[n - 1]! & (0xff << (8 - (client.prefix % 8))) & 0xff
    opt.options.push(ecsOption(bytes.length === 4 ? 1 : 2, client.prefix, 0, cut))
  }
  return buildQuery({ id, name, type, rd: false, opt })
}

/** The addresses of a reply's A and AAAA answer records, in order. */
export function addressesOf(r: Reply): string[] {
  return r.answers.filter((a) => a.type === TYPE.A || a.type === TYPE.AAAA).map((a) => addressText(a.rdata))
}

/** One ECS query over UDP, parsed; retried once on a lost datagram. */
export async function ask(port: number, name: string, type: number, client: Subnet | null): Promise<Reply> {
  const id = Math.floor(Math.random() * 0xffff)
  for (let attempt = 0; attempt < 3; attempt++) {
    const reply = await udpExchange(port, ecsQuery(name, type, client, id), 1000)
    if (reply) return parseReply(reply)
  }
  throw new Error(`no reply to ${name} type ${type} for ${client ? `${client.address}/${client.prefix}` : 'no ECS'} after 3 tries`)
}

/**
 * Sends every query over one UDP socket (the wire helper's UdpClient), at most `window` in flight
 * (a burst much larger than the server socket's receive buffer would only be dropped), resends
 * what got no reply within `resendMs`, and returns the parsed replies in the order of `queries`.
 * The DNS ID of query i is i, so at most 65,536 queries per call.
 */
export async function askMany(port: number, queries: { name: string; type: number; client: Subnet | null }[], window = 64, resendMs = 500): Promise<Reply[]> {
  if (queries.length > 0x10000) throw new RangeError('askMany: at most 65536 queries (one DNS ID each)')
  const client = await UdpClient.open(port)
  const out: Reply[] = new Array(queries.length)
  const wire = queries.map((q, i) => ecsQuery(q.name, q.type, q.client, i))
  const pending = new Map<number, { sentAt: number; tries: number }>()
  let next = 0
  let done = 0
  try {
    await new Promise<void>((resolve, reject) => {
      const send = (i: number) => {
        const p = pending.get(i)
        pending.set(i, { sentAt: performance.now(), tries: (p?.tries ?? 0) + 1 })
        client.send(wire[i]!).catch(fail)
      }
      const pump = () => {
        while (pending.size < window && next < queries.length) send(next++)
        if (done === queries.length) finish()
      }
      const onMessage = (m: Buffer) => {
        if (m.length < 2) return
        const id = m.readUInt16BE(0)
        if (!pending.has(id)) return // a late duplicate
        pending.delete(id)
        try {
          out[id] = parseReply(m)
        } catch (err) {
          return fail(err as Error)
        }
        done++
        pump()
      }
      const timer = setInterval(() => {
        const now = performance.now()
        for (const [i, p] of pending) {
          if (now - p.sentAt < resendMs) continue
          if (p.tries >= 5) return fail(new Error(`query ${i} (${queries[i]!.name} for ${JSON.stringify(queries[i]!.client)}) got no reply after 5 sends`))
          send(i)
        }
        client.received.length = 0
      }, resendMs / 4)
      const finish = () => {
        clearInterval(timer)
        client.sock.off('message', onMessage)
        resolve()
      }
      function fail(err: Error) {
        clearInterval(timer)
        client.sock.off('message', onMessage)
        reject(err)
      }
      client.sock.on('message', onMessage)
      pump()
    })
  } finally {
    await client.close()
  }
  return out
}

/**
 * Asks the same question until `done(reply)` holds or `timeoutMs` passes (every `everyMs`);
 * resolves with the reply that satisfied it and the time it took. Throws with the last reply.
 */
export async function pollAnswer(
  port: number,
  q: { name: string; type: number; client: Subnet | null },
  done: (r: Reply) => boolean,
  opts: { timeoutMs: number; everyMs?: number; what: string; t0?: number },
): Promise<{ reply: Reply; ms: number }> {
  const t0 = opts.t0 ?? performance.now()
  const deadline = t0 + opts.timeoutMs
  let last: Reply | undefined
  for (;;) {
    last = await ask(port, q.name, q.type, q.client)
    if (done(last)) return { reply: last, ms: performance.now() - t0 }
    if (performance.now() >= deadline) {
      throw new Error(`${opts.what}: not within ${opts.timeoutMs} ms (last answer: ${JSON.stringify(addressesOf(last))}, rcode ${last.rcode})`)
    }
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 20))
  }
}

// ---------------------------------------------------------------------------------------------
// Pools and zone files

export interface PoolSpec {
  region: string
  /** The loopback IPv4 VIP the pool listens on. */
  vip: string
}

/**
 * Starts one simulated pool per spec on its VIP, port chosen by the OS. A pool probes its backends
 * every `healthIntervalMs` with a timeout of the same (at most 1 s), and one probe that times out
 * takes a backend out: with 100 ms, a loaded host (this process stalled for 100 ms, the timer run
 * before the reply is read) turned a pool's /healthz 503 with every backend running, and the
 * region went down under tests about geography. So 1 s, unless a test is about the pool's probes;
 * a test that stops backends calls `pool.probeNow()` rather than waiting for a probe round.
 */
export async function startPools(specs: PoolSpec[], healthIntervalMs = 1000): Promise<Map<string, SimPool>> {
  const pools = await Promise.all(specs.map((s) => startPool({ region: s.region, vip: s.vip, port: 0, backends: 2, healthIntervalMs })))
  return new Map(pools.map((p) => [p.region, p]))
}

/**
 * Check timings (seconds, as in a zone file) for tests that need a region to stay up while they
 * run, not about how fast a check reacts: a 1 s timeout (a loaded 2-CPU host has stalled the pool's
 * process, or the server's, for hundreds of ms) and two failures in a row to go down. A stopped
 * pool refuses connections at once, so it still goes down within fall x interval.
 */
export const STEADY = { interval: 1.2, timeout: 1, rise: 2, fall: 2 }

/** The `check:` of a region whose status page is the pool's own /healthz, shared by all its VIPs. */
export function checkFor(pool: SimPool, timing = STEADY): string {
  return `{ url: "http://${pool.vip}:${pool.port}/healthz", interval: ${timing.interval}, timeout: ${timing.timeout}, rise: ${timing.rise}, fall: ${timing.fall} }`
}

/** Client networks in 16 different /24s: weighted answers hash the /24, which spreads them over two regions. */
export const SPREAD_NETWORKS: Subnet[] = Array.from({ length: 16 }, (_, i) => subnet(`81.2.${i}.0/24`))

/**
 * Two simulated pools, regions `a` and `b` (London, one VIP each, checked with STEADY timings at
 * the pool's /healthz), and the text of a zone file of `origin` serving `www` over both (weighted,
 * one answer, TTL 5), with `moreServices` (lines under `services:`) after it.
 */
export async function twoRegionZone(origin: string, vips: { a: string; b: string }, moreServices = ''): Promise<{ pools: Map<string, SimPool>; text: string }> {
  const pools = await startPools([
    { region: 'a', vip: vips.a },
    { region: 'b', vip: vips.b },
  ])
  const region = (name: 'a' | 'b') => `  ${name}:\n    location: { lat: 51.51, lon: -0.13 }\n    vips: [${vips[name]}]\n    check: ${checkFor(pools.get(name)!)}`
  const text = `origin: ${origin}\nsoa: { mname: ns1, rname: hostmaster.${origin}., minimum: 60 }\nns: [ns1]\nrecords:\n  ns1: { A: 127.0.0.1 }\nregions:\n${region('a')}\n${region('b')}\nservices:\n  www: { regions: [a, b], policy: weighted, answers: 1, ttl: 5 }\n${moreServices}`
  return { pools, text }
}

export async function writeZone(dir: string, file: string, yaml: string): Promise<string> {
  const p = path.join(dir, file)
  await writeFile(p, yaml)
  return p
}

export interface SavedTarget {
  state: 'up' | 'down' | 'unknown'
}

/** The server's saved health view (`<zones>/.meridian/health.json`), or null when not written yet. */
export async function savedHealth(zonesDir: string): Promise<Record<string, SavedTarget> | null> {
  try {
    const f = JSON.parse(await readFile(path.join(zonesDir, '.meridian', 'health.json'), 'utf8')) as { targets: Record<string, SavedTarget> }
    return f.targets
  } catch {
    return null
  }
}

/** The saved state of the check whose URL is on `pool` (`<pool.url>/...`), if there is one. */
export function savedStateOf(targets: Record<string, SavedTarget>, pool: SimPool): SavedTarget['state'] | undefined {
  return Object.entries(targets).find(([k]) => k.startsWith(pool.url + '/'))?.[1].state
}
