#!/usr/bin/env -S node --max-semi-space-size=1 --heap-growing-percent=50
/**
 * The composition root: the only module that wires the others together.
 *   meridian serve     answer DNS for the zones under --zones, and the admin API on --admin
 *   meridian check     validate the zone files, print every error, exit non-zero on any
 *   meridian explain   the selector's decision trace for one question (offline, or from a running server)
 */
import { readFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { Command, InvalidArgumentError, Option } from 'commander'
import { buildAdminApp, type Readiness } from './admin/app.js'
import { isLoopback, loadAdminToken } from './admin/auth.js'
import { explain, formatTrace, parseExplainRequest, type ExplainTrace, type Resolver } from './admin/explain.js'
import { buildZoneSet, formatBytes, listZoneDir, MAX_ZONE_FILE_BYTES, parseMaxZoneFileBytes, readZoneSources } from './config/load.js'
import { ZoneSetBuilder } from './config/build-thread.js'
import { PLACES } from './config/places.js'
import { locateClient, type GeoLookup } from './dns/client.js'
import { formatAddress, maskAddress } from './model/address.js'
import { DnsHandler, type HandlerOptions } from './dns/handler.js'
import { DEFAULT_ANSWER_CACHE, LATENCY_GRACE_MS } from './dns/answer-cache.js'
import { respond } from './dns/responder.js'
import type { Query } from './dns/wire.js'
import { findZone } from './dns/zone-index.js'
import { DnsListener, parseListen, type ListenAddress } from './dns/server.js'
import { DEFAULT_EDNS_UDP_SIZE } from './dns/encode.js'
import { DNS_V8_FLAGS, DnsWorkers, GEODB_SYNC_MS, parseWorkers, unsetDnsV8Flags, WORKER_HANG_TIMEOUT_MS } from './cluster/primary.js'
import { ConfigError, formatIssue, MeridianError, type ErrorCode } from './errors.js'
import { DEFAULT_GEODB_FILE, GEODB_DIR, GeoDb, GeoSource, type GeoReload } from './geo/index.js'
import { HEALTH_SAVE_EVERY_MS, HEALTH_STATE_MAX_AGE_S, HealthPoller } from './health/poller.js'
import { Metrics, removedSeries } from './metrics/index.js'
import { healthReport } from './admin/health.js'
import { createLogger, type Logger } from './log.js'
import type { VipHealth } from './model/gslb.js'
import type { ZoneSet } from './model/types.js'
import { startPool, type SimPool } from './sim/index.js'
import { FileConfigStore } from './store/file-store.js'
import { SerialBook } from './store/serials.js'
import { removeStaleLinkedTemps, removeStaleTemps } from './store/atomic.js'

/** How zone files resolve `location: { country }` and `{ city }` (geodb/countries.json, places.json). */

const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version

/** `meridian: CODE: message`, as every fatal error is printed. */
const errorLine = (err: unknown): string => `meridian: ${err instanceof MeridianError ? `${err.code}: ` : ''}${(err as Error).message}\n`

/** Every issue of a rejected set, one `file:line:col: path: message` line each, on stderr. */
function printIssues(err: ConfigError): void {
  for (const i of err.issues) process.stderr.write(formatIssue(i) + '\n')
}

/** `--max-zone-file-bytes`, as the offline commands take it too. */
const maxZoneFileBytesOption = () =>
  new Option('--max-zone-file-bytes <size>', 'the largest zone file read, in bytes or with KiB or MiB (16MiB); a larger one is refused unread (a guard against a log or a dump written there by mistake)')
    .default(MAX_ZONE_FILE_BYTES, formatBytes(MAX_ZONE_FILE_BYTES))
    .argParser((v) => {
      try {
        return parseMaxZoneFileBytes(v)
      } catch (err) {
        throw new InvalidArgumentError((err as Error).message)
      }
    })

const intOption = (min: number, max: number) => (v: string) => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`must be an integer ${min}..${max}`)
  return n
}
/**
 * `--nsid`: the server's identifier (RFC 5001) as printable ASCII (1-128 characters, e.g. a host
 * name), or `0x` and 1-128 octets in hex; kept as hex.
 */
function nsidOption(v: string): string {
  if (/^0x([0-9a-f]{2}){1,128}$/i.test(v)) return v.slice(2).toLowerCase()
  if (/^[\x21-\x7e]{1,128}$/.test(v) && !v.startsWith('0x')) return Buffer.from(v, 'latin1').toString('hex')
  throw new InvalidArgumentError('must be 1-128 printable ASCII characters without spaces, or 0x and 1-128 octets in hex (an even number of digits)')
}
/** `--worker-hang-timeout`: 0 (never), or 5 s to 10 min (a worker reports every 2 s, so less would kill healthy ones). */
const hangTimeoutOption = (v: string): number => {
  const n = intOption(0, 600_000)(v)
  if (n !== 0 && n < 5000) throw new InvalidArgumentError('must be 0 (never) or an integer 5000..600000 (ms)')
  return n
}
const listenOption = (v: string, prev: ListenAddress[] | undefined): ListenAddress[] => {
  try {
    return [...(prev ?? []), parseListen(v)]
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message)
  }
}

interface ServeOptions {
  zones: string
  geodb: string
  listen?: ListenAddress[]
  admin: ListenAddress
  /** --admin was given (not the default): failing to bind it is fatal. */
  adminExplicit: boolean
  adminTokenFile?: string
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  ednsUdpSize: number
  tcpIdleTimeout: number
  tcpMaxConnections: number
  queryLog: boolean
  watch: boolean
  healthWait: number
  /** Saved health states older than this (seconds) start from unknown (--health-state-max-age). */
  healthStateMaxAge: number
  /** Where health.json and serials.json are kept (--state-dir); undefined: <zones>/.meridian. */
  stateDir?: string
  /** DNS worker processes; 1 answers in this process (no cluster). */
  workers: number
  /** Most answers the answer cache keeps (per DNS process); 0 turns it off. */
  answerCache: number
  /** How long a geo-latency answer may outlive the latency move that superseded it (ms; 0: none). */
  latencyGrace: number
  /** Export the per-GC pause histogram with the process metrics (off: it costs every scavenge). */
  gcMetrics: boolean
  /** This server's NSID (RFC 5001), as hex (nsidOption); undefined: none. */
  nsid?: string
  /** How long an answering DNS worker may stay silent before it is killed and replaced (ms; 0: never). */
  workerHangTimeout: number
  /** The largest zone file read (bytes); larger ones are refused unread. */
  maxZoneFileBytes: number
}

/**
 * `--health-wait`: before the DNS sockets open, wait until every check has a state (up or down,
 * measured or restored from the saved view), or the timeout passes; unknown ones then count as the
 * services say (`unknown: up` by default). Counted again at each state change and each new zone set
 * (a reload during the wait may remove the last check without one; the store's listeners run in
 * order, so the poller has the new set's checks by then).
 */
function waitForHealth(poller: HealthPoller, store: Pick<FileConfigStore, 'onChange'>, timeoutMs: number, log: Logger): Promise<void> {
  const unknown = () => [...poller.view().targets.values()].filter((t) => t.state === 'unknown').length
  if (timeoutMs <= 0 || unknown() === 0) return Promise.resolve()
  const started = Date.now()
  return new Promise((resolve) => {
    const done = (why: string) => {
      clearTimeout(timer)
      offHealth()
      offZones()
      log.info({ waitedMs: Date.now() - started, unknown: unknown() }, why)
      resolve()
    }
    const timer = setTimeout(() => done('health wait timed out; unknown checks count as their services say'), timeoutMs)
    const recount = () => {
      if (unknown() === 0) done('every health check has a state')
    }
    const offHealth = poller.onChange(recount)
    const offZones = store.onChange(recount)
  })
}

/**
 * Answers one question the way the DNS server does (the same responder, client locator, GeoIP and
 * health), for the explain trace. Record rotation is fixed (rand 0): the trace shows the unrotated order.
 */
function makeResolver(zones: () => ZoneSet, geo: GeoLookup | undefined, health: (key: string) => VipHealth | undefined): Resolver {
  return (q) => {
    const ecs = q.ecs
      ? { family: q.ecs.family === 4 ? (1 as const) : (2 as const), sourcePrefix: q.ecs.prefix, scopePrefix: 0, address: maskAddress(q.ecs.address, q.ecs.prefix), bytes: Buffer.alloc(0) }
      : null
    const query: Query = { id: 0, rd: false, qname: q.name, qkey: q.name, oddName: false, questionWire: Buffer.alloc(0), qtype: q.qtype, qclass: 1, edns: ecs ? { udpSize: 1232, version: 0, dnssecOk: false, ecs } : null }
    const set = zones()
    const out = respond(set, query, q.client, { geo, health, rand: () => 0 })
    // A service answer says where it took the client to be; for other names, locate it for the trace.
    const zone = out.zone ?? findZone(set, q.name)
    const client = out.client ?? (zone ? locateClient(query, q.client, geo, zone.defaultLocation) : null)
    return { rcode: out.rcode, zone: out.zone, answer: out.answer, ecsScope: out.ecsScope, selection: out.selection, client }
  }
}

/**
 * Ends a start-up that cannot go on: `meridian: CODE: reason` on stderr and a fatal log line with
 * the code (docs/errors.md), exit 1.
 */
function cannotStart(log: Logger, code: ErrorCode, reason: string, fields: Record<string, unknown> = {}): never {
  process.stderr.write(`meridian: ${code}: ${reason}\n`)
  log.fatal({ code, ...fields }, `cannot start: ${reason}`)
  process.exit(1)
}

/** The admin token, or exit 1 when it is unreadable, or missing for a non-loopback --admin. */
async function adminToken(opts: { admin: ListenAddress; adminTokenFile?: string }, log: Logger): Promise<string | undefined> {
  let token: string | undefined
  try {
    token = await loadAdminToken(opts.adminTokenFile)
  } catch (err) {
    cannotStart(log, 'E_ADMIN_TOKEN', `the admin token cannot be read: ${(err as Error).message}`)
  }
  if (token === undefined && !isLoopback(opts.admin.host)) {
    const at = formatAddress(opts.admin.host, opts.admin.port)
    cannotStart(log, 'E_ADMIN_TOKEN', `the admin API address ${at} is not a loopback address, and no token is configured: set MERIDIAN_ADMIN_TOKEN or pass --admin-token-file (or listen on 127.0.0.1)`, { admin: at })
  }
  return token
}

async function serve(opts: ServeOptions, beforeListen?: (set: ZoneSet, log: Logger) => Promise<() => Promise<void>>): Promise<void> {
  const log = createLogger(opts.logLevel)
  // Signals from the first moment: during start-up (a --health-wait can last minutes) a stop ends
  // the process at once (nothing is served yet, and DNS workers exit when it disconnects), and a
  // SIGHUP is kept for when the sockets are bound. Both are replaced once serving (below).
  let stop = (signal: string): void => {
    log.info({ signal }, 'stopped during start-up')
    process.exit(0)
  }
  let reload: (() => void) | undefined = undefined
  let reloadAsked = false
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGHUP', () => (reload ? reload() : (reloadAsked = true)))
  const listen = opts.listen ?? [parseListen('127.0.0.1:5300')]
  const token = await adminToken(opts, log)
  let geo: GeoSource
  try {
    geo = await GeoSource.open(opts.geodb)
  } catch (err) {
    cannotStart(log, 'E_GEODB', `the GeoIP database cannot be opened: ${(err as Error).message}`, { geodb: opts.geodb })
  }
  // Sets after the first are built off the event loop (src/config/build-thread.ts), with the same PLACES.
  // Meridian's own state (health.json, serials.json): beside the zones unless --state-dir says where.
  const stateDir = opts.stateDir ?? path.join(opts.zones, '.meridian')
  const builder = new ZoneSetBuilder()
  const store = new FileConfigStore(opts.zones, log.child({ mod: 'config' }), new SerialBook(path.join(stateDir, 'serials.json')), PLACES, { maxFileBytes: opts.maxZoneFileBytes }, builder)
  // Temporary files of writes a crash interrupted (the files themselves are whole: old or new).
  for (const dir of new Set([opts.zones, path.join(opts.zones, '.meridian'), stateDir])) {
    const removed = await removeStaleTemps(dir)
    if (removed.length > 0) log.info({ dir, removed }, 'removed temporary files left by an interrupted write')
  }
  for (const { dir, removed } of await removeStaleLinkedTemps(opts.zones)) log.info({ dir, removed }, 'removed temporary files left by an interrupted write (beside a linked zone file)')
  // Health: one poller for every check of the set, its last view kept beside the zones.
  const metrics = new Metrics({ gcMetrics: opts.gcMetrics })
  // A check no longer run takes its series with it (a removed region, the old key of an edited check).
  const poller = new HealthPoller({ log, onResult: (key, r) => metrics.checkResult(key, r.ok, r.latencyMs), onRemoved: (keys) => metrics.forgetTargets(keys) })
  poller.onChange((_view, changes) => {
    for (const c of changes) metrics.stateChange(c.key, c.to)
  })
  // A zone, service or region no longer in the set takes its DNS series with it. With workers this
  // process counts no DNS: each worker forgets its own, and DnsWorkers strips what they reported.
  let servedZones: ZoneSet | undefined
  store.onChange((next) => {
    metrics.reload(true)
    if (servedZones && opts.workers <= 1) metrics.forgetSeries(removedSeries(servedZones, next))
    servedZones = next
  })
  store.onReloadFailure(() => metrics.reload(false))
  metrics.config(() => store.rejectedNow)
  metrics.targets(function* () {
    for (const [key, h] of poller.view().targets) yield [key, h.state]
  })
  // Up means healthy, drained or not: a planned drain is meridian_region_drained, not a region down.
  metrics.regions(() => healthReport(store.current(), poller.view()).regions.map((r) => ({ zone: r.zone, region: r.region, up: r.healthyVips >= r.minHealthy, drained: r.drained })))
  const healthFile = path.join(stateDir, 'health.json')
  await poller.loadState(healthFile, { maxAgeMs: opts.healthStateMaxAge * 1000 }).catch((err: Error) => log.warn({ err: err.message }, 'saved health state ignored; checks start from unknown'))
  let saving: NodeJS.Timeout | undefined
  // A state directory that cannot be written (a read-only volume) is said once, and its recovery once.
  let saveFailing = false
  const saveHealth = () =>
    mkdir(path.dirname(healthFile), { recursive: true })
      .then(() => poller.saveState(healthFile))
      .then(
        () => {
          if (saveFailing) log.info({ file: healthFile }, 'the health state is saved again')
          saveFailing = false
        },
        (err: Error) => {
          if (!saveFailing) log.warn({ err: err.message, file: healthFile }, 'cannot save the health state (said once until it can; a restart then starts every check from unknown): give --state-dir a writable directory')
          saveFailing = true
        },
      )
  poller.onChange(() => {
    clearTimeout(saving)
    saving = setTimeout(saveHealth, 100)
  })
  // Saved on every change and at a stop; also every HEALTH_SAVE_EVERY_MS, so that after a crash the
  // file's time says when its states were last known true, which --health-state-max-age reads.
  const savingAnyway = setInterval(saveHealth, HEALTH_SAVE_EVERY_MS)
  savingAnyway.unref()
  store.onChange((set) => poller.setTargets([...set.checks.values()]))
  try {
    await store.reload('start-up')
  } catch (err) {
    if (err instanceof ConfigError) {
      printIssues(err)
      cannotStart(log, err.code, `the zone files in ${opts.zones} cannot be loaded (${err.issues.length} error(s), listed above)`, { zones: opts.zones })
    }
    throw err
  }
  // The poller's TargetHealth is a VipHealth: handed over as it is, nothing allocated per query.
  const health = (key: string): VipHealth | undefined => poller.view().targets.get(key)
  const stopExtras = beforeListen ? await beforeListen(store.current(), log) : async () => undefined
  const geoLookup: GeoLookup = geo.locate
  metrics.geodb(() => geo.info.buildEpoch)
  // Each file taken or refused is logged and counted once, whichever reloads shared the run.
  geo.onReport((r, why) => {
    metrics.geodbReload(!r.error)
    if (r.error) log.error({ code: 'E_GEODB', geodb: r.path, err: r.error, why }, 'the new GeoIP database cannot be opened; the last good one keeps answering')
    else log.info({ geodb: r.path, buildEpoch: r.buildEpoch, why }, 'GeoIP database reloaded')
  })
  /**
   * Takes the GeoIP database file again if it was replaced (SIGHUP, the API, the watch). Resolves
   * once every DNS worker answers from a new database (or after GEODB_SYNC_MS, with a warning: a
   * City database is tens of MB for each worker).
   */
  const reloadGeo = async (why: string): Promise<GeoReload> => {
    const r = await geo.reload(why)
    if (r.changed) await workers?.synced(GEODB_SYNC_MS)
    return r
  }

  const handlerOptions: Partial<HandlerOptions> = {
    ednsUdpSize: opts.ednsUdpSize,
    queryLog: opts.queryLog,
    answerCache: { ...DEFAULT_ANSWER_CACHE, maxEntries: opts.answerCache, latencyGraceMs: opts.latencyGrace },
    nsid: opts.nsid,
  }
  const tcpOptions = { idleTimeoutMs: opts.tcpIdleTimeout, maxConnections: opts.tcpMaxConnections }
  // --workers N >= 2: N processes answer DNS (src/cluster/); this one keeps the store, the poller and the admin API.
  const workers =
    opts.workers > 1
      ? new DnsWorkers({ count: opts.workers, listen, tcp: tcpOptions, handler: handlerOptions, geodb: () => ({ path: geo.info.path, bytes: geo.current.bytes }), logLevel: opts.logLevel, log, store, poller, metrics, hangTimeoutMs: opts.workerHangTimeout })
      : undefined

  // The admin API opens before the DNS sockets (so /readyz can say why it is not ready yet).
  let dnsBound = false
  const ready = (): Readiness => {
    const reasons: string[] = []
    if (store.current().zones.size === 0) reasons.push(`no zones loaded from ${opts.zones}`)
    if (!dnsBound) reasons.push('DNS sockets not bound yet')
    else if (workers && workers.answering === 0) reasons.push('no DNS worker is answering (every one died; being replaced)')
    return { ready: reasons.length === 0, reasons }
  }
  const admin = buildAdminApp({
    store: workers ? workers.syncedStore(store) : store,
    health: () => poller.view(),
    resolve: makeResolver(() => store.current(), geoLookup, health),
    token,
    readsNeedToken: !isLoopback(opts.admin.host),
    logger: log,
    metrics: () => (workers ? workers.renderMetrics() : metrics.render()),
    reloadGeo: () => reloadGeo('admin API'),
    ready,
    version: VERSION,
  })
  try {
    await admin.listen({ host: opts.admin.host, port: opts.admin.port })
    const a = admin.server.address()
    const url = a && typeof a === 'object' ? `http://${formatAddress(a.address, a.port)}` : String(a)
    log.info({ url, auth: token ? 'bearer token' : 'none: read-only', readsNeedToken: !isLoopback(opts.admin.host) }, 'admin API listening')
  } catch (err) {
    const at = formatAddress(opts.admin.host, opts.admin.port)
    if (opts.adminExplicit) cannotStart(log, 'E_LISTEN', `the admin API address ${at} cannot be bound: ${(err as Error).message}`, { admin: at })
    // The default address is best effort (another Meridian may hold it): DNS comes first. An
    // address given with --admin is required (above).
    log.warn({ admin: at, err: (err as Error).message }, 'admin API not started: its default address cannot be bound; DNS is served without it (pass --admin ADDR:PORT to require it)')
  }

  await waitForHealth(poller, store, opts.healthWait * 1000, log)
  // With workers this process answers no DNS: no handler (nor answer cache) here.
  const handler = workers ? undefined : new DnsHandler(() => store.current(), log.child({ mod: 'dns' }), handlerOptions, {
    geo: geoLookup,
    health,
    rand: Math.random,
    generations: () => poller.generations(),
    movedSince: (generation, visit) => poller.movedSince(generation, visit),
  }, metrics)
  // Where each client network is may have changed: cached answers and locations go, in this
  // process or in every worker (each is sent the database this process opened).
  geo.onChange(() => (workers ? workers.geodbChanged() : handler?.cache?.clear()))
  // The answer cache's index of the set built before the sockets, as a worker does: the first
  // queries do not wait for it.
  handler?.prepare()
  // And of each later set, as the build thread's sets are read back, in steps between queries.
  if (handler) builder.prepareWith((set) => handler.prepareNext(set))
  const listeners = handler ? listen.map((at) => new DnsListener(at, handler, tcpOptions, log.child({ mod: 'dns' }))) : []
  const bound = []
  try {
    for (const l of listeners) bound.push(...(await l.start()))
    if (workers) bound.push(...(await workers.start()))
  } catch (err) {
    cannotStart(log, 'E_LISTEN', `a DNS listen address cannot be bound: ${(err as Error).message}`)
  }
  dnsBound = true
  if (opts.watch) {
    store.watch()
    const watchFailed = (err: Error) => log.error({ err: err.message }, 'GeoIP database watch failed; SIGHUP and POST /v1/reload still reload it')
    try {
      geo.watch(() => void reloadGeo('file changed'), watchFailed)
    } catch (err) {
      // No inotify watch left (ENOSPC), say: DNS is already served, so said, not fatal.
      watchFailed(err as Error)
    }
  }
  reload = () => {
    store.reload('SIGHUP').catch(() => undefined)
    void reloadGeo('SIGHUP')
  }
  if (reloadAsked) reload()
  let stopping = false
  stop = (signal: string) => {
    if (stopping) return
    stopping = true
    log.info({ signal }, 'shutting down: closing sockets')
    store.close()
    geo.close()
    clearTimeout(saving)
    clearInterval(savingAnyway)
    Promise.all([...listeners.map((l) => l.close()), workers?.stop(), admin.close(), saveHealth().then(() => poller.close()), stopExtras()]).then(
      () => {
        log.info('stopped')
        process.exit(0)
      },
      () => process.exit(1),
    )
  }
  // The one-process server answers DNS itself: without the DNS V8 flags (the `meridian`
  // executable's #! line sets them) it holds more memory and its p99 is longer. Said once, with the fix.
  const unset = workers ? [] : unsetDnsV8Flags(process.execArgv, process.env.NODE_OPTIONS)
  if (unset.length > 0) {
    log.warn(
      { unset, run: `node ${[...process.execArgv, ...unset].join(' ')} ${process.argv.slice(1).join(' ')}` },
      `answering DNS in one process without node's ${unset.join(' ')}: V8 then holds more memory with a full answer cache and pauses longer for GC (docs/benchmarks.md); run the meridian executable (its #! line sets ${DNS_V8_FLAGS.join(' ')}) or give node these flags`,
    )
  }
  const set = store.current()
  log.info(
    {
      listen: bound.map((b) => `${b.transport}://${formatAddress(b.address, b.port)}`),
      zones: [...set.zones.keys()],
      zonesDir: opts.zones,
      ednsUdpSize: opts.ednsUdpSize,
      ...(opts.nsid ? { nsid: `0x${opts.nsid}` } : {}),
      pid: process.pid,
      workers: opts.workers,
      nodeArgs: process.execArgv,
    },
    `meridian serving ${set.zones.size} zone(s) on ${[...new Set(bound.map((b) => formatAddress(b.address, b.port)))].join(', ')}`,
  )
}

/**
 * `meridian demo`: `serve`, plus a simulated L7 pool (a real reverse proxy over real backends) on
 * port 8080 of every loopback IPv4 VIP of the zones, so the demo's regions have something to check.
 */
async function startDemoPools(set: ZoneSet, log: Logger): Promise<() => Promise<void>> {
  const pools: SimPool[] = []
  for (const zone of set.zones.values()) {
    for (const region of zone.regions.values()) {
      const vip = region.vips.find((v) => v.family === 4 && v.address.startsWith('127.'))
      if (!vip) continue
      pools.push(await startPool({ region: region.name, vip: vip.address, port: 8080, backends: 2, control: true }))
    }
  }
  log.info({ pools: pools.map((p) => `${p.region} http://${p.vip}:${p.port}/`) }, `demo: ${pools.length} simulated L7 pool(s) started`)
  return async () => {
    await Promise.all(pools.map((p) => p.close()))
  }
}

/** The zone set of a directory, for the offline commands (check, explain): serials from a throwaway book. */
async function readZoneSet(dir: string, maxFileBytes: number): Promise<ZoneSet> {
  return buildZoneSet(await readZoneSources(dir, { maxFileBytes }), new SerialBook(undefined).plan().serialOf, 1, PLACES)
}

async function check(opts: { zones: string; maxZoneFileBytes: number }): Promise<number> {
  try {
    // Directories named like zone files are not read (as the server skips them, with a warning).
    const { directories } = await listZoneDir(opts.zones).catch(() => ({ directories: [] as string[] }))
    for (const d of directories) process.stderr.write(`${d}: a directory, not a zone file: not read\n`)
    const set = await readZoneSet(opts.zones, opts.maxZoneFileBytes)
    for (const z of set.zones.values()) {
      process.stdout.write(`${z.file}: zone ${z.origin} OK (${z.nodes.size} names)\n`)
    }
    if (set.zones.size === 0) {
      // Nothing would be served: most often a mistyped directory.
      process.stderr.write(`${opts.zones}: no zone files (*.yaml, *.yml); a server on this directory would refuse every query\n`)
      return 1
    }
    return 0
  } catch (err) {
    if (err instanceof ConfigError) {
      printIssues(err)
      process.stderr.write(`${err.issues.length} error(s); nothing would be served from these files\n`)
      return 1
    }
    throw err
  }
}

interface ExplainOptions {
  client: string
  ecs?: string
  zones: string
  /** The largest zone file read offline (bytes). */
  maxZoneFileBytes: number
  geodb: string
  admin?: string
  adminTokenFile?: string
  json: boolean
}

/**
 * `meridian explain NAME [TYPE] --client IP [--ecs CIDR]`: offline, loads the zones and the GeoIP
 * database itself (no health results: unknown counts as each service's `unknown:` says); with
 * `--admin URL`, asks a running server (its live health view). Exit 0, 1 (cannot load or ask), 2 (usage).
 */
async function explainCommand(name: string, type: string | undefined, o: ExplainOptions): Promise<number> {
  const fail = (code: number, msg: string) => {
    process.stderr.write(`meridian explain: ${msg}\n`)
    return code
  }
  let trace: ExplainTrace
  if (o.admin) {
    const base = /^https?:\/\//.test(o.admin) ? o.admin.replace(/\/+$/, '') : `http://${o.admin}`
    let token: string | undefined
    try {
      token = await loadAdminToken(o.adminTokenFile)
    } catch (err) {
      return fail(1, (err as Error).message)
    }
    const qs = new URLSearchParams({ name, type: type ?? 'A', client: o.client, ...(o.ecs ? { ecs: o.ecs } : {}) })
    let res: Response
    try {
      res = await fetch(`${base}/v1/explain?${qs}`, { headers: token ? { authorization: `Bearer ${token}` } : {} })
    } catch (err) {
      return fail(1, `cannot reach the admin API at ${base}: ${((err as Error).cause as Error | undefined)?.message ?? (err as Error).message}`)
    }
    const body = (await res.json().catch(() => null)) as (ExplainTrace & { error?: string; message?: string }) | null
    // A server that is not Meridian's admin API (another service on that port, a proxy) answers
    // without Meridian's error body: say so, not "404:  Not Found".
    if (!res.ok && typeof body?.error !== 'string') return fail(1, `${base} answered GET /v1/explain with ${res.status} ${res.statusText}, not as Meridian's admin API does: is --admin its address? (the log line "admin API listening" gives it, e.g. http://127.0.0.1:8053)`)
    if (!res.ok || !body) return fail(res.status === 400 ? 2 : 1, `${res.status}: ${body?.error ?? ''} ${body?.message ?? res.statusText}`)
    trace = body
  } else {
    let question
    try {
      question = parseExplainRequest({ name, type, client: o.client, ecs: o.ecs })
    } catch (err) {
      return fail(2, (err as Error).message)
    }
    let set: ZoneSet
    try {
      set = await readZoneSet(o.zones, o.maxZoneFileBytes)
    } catch (err) {
      if (err instanceof ConfigError) {
        printIssues(err)
        return fail(1, `the zone files in ${o.zones} have errors (listed above)`)
      }
      throw err
    }
    let geo: GeoDb
    try {
      geo = await GeoDb.open(o.geodb)
    } catch (err) {
      return fail(1, `cannot open the GeoIP database ${o.geodb}: ${(err as Error).message}`)
    }
    try {
      trace = explain(question, makeResolver(() => set, (a, p) => geo.locate(a, p), () => undefined), () => undefined)
    } finally {
      geo.close()
    }
  }
  process.stdout.write(o.json ? JSON.stringify(trace, null, 2) + '\n' : formatTrace(trace) + (o.admin ? '' : 'health:   not known offline (unknown counts as each service says); --admin URL asks the running server\n'))
  return 0
}

export function program(): Command {
  const cmd = new Command('meridian').description('Meridian: authoritative DNS global server load balancer').showHelpAfterError()
  const serveOptions = (c: Command) =>
    c
      .option('--zones <dir>', 'directory of zone files (*.yaml)', 'zones')
      .addOption(new Option('--geodb <path>', `GeoIP database: an .mmdb file, or a directory holding ${DEFAULT_GEODB_FILE}`).default(GEODB_DIR, "Meridian's own geodb/"))
      .option('--listen <addr:port>', 'DNS address, UDP and TCP; repeat for more (e.g. 0.0.0.0:53 and [::]:53 in production) (default: 127.0.0.1:5300)', listenOption)
      .addOption(new Option('--admin <addr:port>', 'admin API address (a non-loopback one needs a token)').default(parseListen('127.0.0.1:8053'), '127.0.0.1:8053').argParser((v) => listenOption(v, [])[0]!))
      .option('--admin-token-file <file>', 'file holding the admin API bearer token (else MERIDIAN_ADMIN_TOKEN)')
      .addOption(new Option('--log-level <level>', 'log level').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'))
      .option('--edns-udp-size <bytes>', 'EDNS UDP payload size to advertise and answer within', intOption(512, 4096), DEFAULT_EDNS_UDP_SIZE)
      .option('--tcp-idle-timeout <ms>', 'close idle TCP connections after this long', intOption(100, 600000), 10000)
      .option('--tcp-max-connections <n>', 'concurrent TCP connections per listen address, counted by each DNS worker', intOption(1, 100000), 1024)
      .option('--query-log', 'log every query at debug level', false)
      .option('--nsid <id>', "this server's name server identifier (RFC 5001), sent to queries that ask for it (dig +nsid): text such as a host name, or 0x and hex octets; off by default", nsidOption)
      .option('--gc-metrics', "export meridian_nodejs_gc_duration_seconds, a histogram of this process's garbage-collection pauses (off by default: observing every collection lengthens the DNS thread's own collections)", false)
      .option('--answer-cache <entries>', 'encoded answers kept per DNS process (0 turns the cache off)', intOption(0, 10_000_000), DEFAULT_ANSWER_CACHE.maxEntries)
      .option('--latency-grace <ms>', 'after a latency move of a check, the geo-latency answers of the services reading it may be served this much longer (each its own share of it, so rebuilds spread out); 0 rebuilds at once. Health state changes always apply at once', intOption(0, 60_000), LATENCY_GRACE_MS)
      .option('--no-watch', 'do not watch --zones and the --geodb file for changes (SIGHUP and POST /v1/reload still reload)')
      .option('--health-wait <seconds>', 'before answering, wait up to this long for every health check to have a state', intOption(0, 600), 0)
      .option('--state-dir <dir>', "where Meridian keeps its state: health.json (the checks' last states) and serials.json (serial: auto); default <zones>/.meridian. Zones deleted through the API are kept in <zones>/.meridian/deleted/ whatever this says")
      .option('--health-state-max-age <seconds>', 'at start-up, trust the health states the last run saved (zones/.meridian/health.json) only if saved at most this long ago; older ones start every check from unknown (0: never trust them)', intOption(0, 31_536_000), HEALTH_STATE_MAX_AGE_S)
      .option('--worker-hang-timeout <ms>', 'with --workers 2 or more: a DNS worker that sends nothing for this long (it reports every 2 s; its event loop is stuck) is killed and replaced; 0 never', hangTimeoutOption, WORKER_HANG_TIMEOUT_MS)
      .addOption(maxZoneFileBytesOption())
      .addOption(new Option('--workers <n>', 'DNS worker processes sharing the sockets: 1..256, or auto (one per CPU); 1 answers in this process').default(parseWorkers('auto'), 'auto').argParser(parseWorkers))
  const explicit = (c: Command) => c.getOptionValueSource('admin') !== 'default'
  serveOptions(cmd.command('serve').description('answer DNS queries for the zones in --zones')).action(async (o: ServeOptions, c: Command) => serve({ ...o, adminExplicit: explicit(c) }))
  serveOptions(cmd.command('demo').description('serve, and start a simulated L7 pool on port 8080 of every loopback VIP')).action(async (o: ServeOptions, c: Command) =>
    serve({ ...o, adminExplicit: explicit(c) }, startDemoPools),
  )
  cmd
    .command('check')
    .description('validate the zone files; print every error as file:line:col and exit non-zero on any')
    .option('--zones <dir>', 'directory of zone files (*.yaml)', 'zones')
    .addOption(maxZoneFileBytesOption())
    .action(async (o: { zones: string; maxZoneFileBytes: number }) => {
      process.exitCode = await check(o)
    })
  cmd
    .command('explain')
    .description("print the selector's decision trace for NAME asked by --client: client location, every region and why it was kept or dropped, the answer")
    .argument('<name>', 'the name asked, e.g. www.gslb.example.com')
    .argument('[type]', 'A, AAAA, ANY, TXT... (default A)')
    .requiredOption('--client <ip>', 'the address the query comes from (a resolver, or the client itself)')
    .option('--ecs <cidr>', 'EDNS Client Subnet sent with the query, e.g. 81.2.69.0/24')
    .option('--zones <dir>', 'directory of zone files (*.yaml), when not asking a server', 'zones')
    .addOption(maxZoneFileBytesOption())
    .addOption(new Option('--geodb <path>', 'GeoIP database, when not asking a server').default(GEODB_DIR, "Meridian's own geodb/"))
    .option('--admin <url>', 'ask the running server at this admin API address (http://127.0.0.1:8053) for its live view')
    .option('--admin-token-file <file>', 'file holding the admin API token (else MERIDIAN_ADMIN_TOKEN); needed for a non-loopback --admin')
    .option('--json', 'print the trace as JSON (as GET /v1/explain returns it)', false)
    .action(async (name: string, type: string | undefined, o: ExplainOptions) => {
      process.exitCode = await explainCommand(name, type, o)
    })
  return cmd
}

program()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    process.stderr.write(errorLine(err))
    process.exit(2)
  })
