#!/usr/bin/env node
/**
 * The composition root: the only module that wires the others together.
 *   meridian serve   answer DNS for the zones under --zones
 *   meridian check   validate the zone files, print every error, exit non-zero on any
 */
import { statSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { Command, InvalidArgumentError, Option } from 'commander'
import { buildZoneSet, readZoneSources, type BuildOptions } from './config/load.js'
import { DnsHandler } from './dns/handler.js'
import { DnsListener, formatAddress, parseListen, type ListenAddress } from './dns/server.js'
import { DEFAULT_EDNS_UDP_SIZE } from './dns/encode.js'
import { ConfigError, formatIssue, MeridianError } from './errors.js'
import { countryLocation, DEFAULT_GEODB_FILE, GeoDb, placeLocation } from './geo/index.js'
import { HealthPoller } from './health/poller.js'
import { createLogger, type Logger } from './log.js'
import type { VipHealth } from './model/gslb.js'
import type { ZoneSet } from './model/types.js'
import { startPool, type SimPool } from './sim/index.js'
import { FileConfigStore } from './store/file-store.js'
import { SerialBook } from './store/serials.js'

/** How zone files resolve `location: { country }` and `{ city }` (geodb/countries.json, places.json). */
const PLACES: BuildOptions = {
  countryPoint: (code) => countryLocation(code),
  cityPoint: (code) => placeLocation(code),
}

/** `--geodb` names a database file, or a directory holding the default one. */
function geodbFile(p: string): string {
  try {
    if (statSync(p).isDirectory()) return path.join(p, DEFAULT_GEODB_FILE)
  } catch {
    // not there: GeoDb.open reports it
  }
  return p
}

const intOption = (min: number, max: number) => (v: string) => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`must be an integer ${min}..${max}`)
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
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  ednsUdpSize: number
  tcpIdleTimeout: number
  tcpMaxConnections: number
  queryLog: boolean
  watch: boolean
  healthWait: number
}

/**
 * `--health-wait`: before the DNS sockets open, wait until every check has a state (up or down,
 * measured or restored from the saved view), or the timeout passes; unknown ones then count as the
 * services say (`unknown: up` by default).
 */
function waitForHealth(poller: HealthPoller, timeoutMs: number, log: Logger): Promise<void> {
  const unknown = () => [...poller.view().targets.values()].filter((t) => t.state === 'unknown').length
  if (timeoutMs <= 0 || unknown() === 0) return Promise.resolve()
  const started = Date.now()
  return new Promise((resolve) => {
    const done = (why: string) => {
      clearTimeout(timer)
      off()
      log.info({ waitedMs: Date.now() - started, unknown: unknown() }, why)
      resolve()
    }
    const timer = setTimeout(() => done('health wait timed out; unknown checks count as their services say'), timeoutMs)
    const off = poller.onChange(() => {
      if (unknown() === 0) done('every health check has a state')
    })
  })
}

async function serve(opts: ServeOptions, beforeListen?: (set: ZoneSet, log: Logger) => Promise<() => Promise<void>>): Promise<void> {
  const log = createLogger(opts.logLevel)
  let geo: GeoDb
  try {
    geo = await GeoDb.open(geodbFile(opts.geodb))
  } catch (err) {
    log.fatal({ geodb: opts.geodb, err: (err as Error).message }, 'cannot start: the GeoIP database cannot be opened')
    process.exit(1)
  }
  const store = new FileConfigStore(opts.zones, log.child({ mod: 'config' }), undefined, PLACES)
  // Health: one poller for every check of the set, its last view kept beside the zones.
  const poller = new HealthPoller({ log })
  const healthFile = path.join(opts.zones, '.meridian', 'health.json')
  await poller.loadState(healthFile).catch((err: Error) => log.warn({ err: err.message }, 'saved health state ignored; checks start from unknown'))
  let saving: NodeJS.Timeout | undefined
  const saveHealth = () =>
    mkdir(path.dirname(healthFile), { recursive: true })
      .then(() => poller.saveState(healthFile))
      .catch((err: Error) => log.warn({ err: err.message }, 'cannot save the health state'))
  poller.onChange(() => {
    clearTimeout(saving)
    saving = setTimeout(saveHealth, 100)
  })
  store.onChange((set) => poller.setTargets([...set.checks.values()]))
  try {
    await store.reload('start-up')
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const i of err.issues) process.stderr.write(formatIssue(i) + '\n')
      log.fatal({ zones: opts.zones }, 'cannot start: the zone files have errors (listed above)')
      process.exit(1)
    }
    throw err
  }
  const health = (key: string): VipHealth | undefined => {
    const t = poller.view().targets.get(key)
    return t ? { state: t.state, ewmaMs: t.ewmaMs ?? undefined } : undefined
  }
  const stopExtras = beforeListen ? await beforeListen(store.current(), log) : async () => undefined
  await waitForHealth(poller, opts.healthWait * 1000, log)
  const handler = new DnsHandler(() => store.current(), log.child({ mod: 'dns' }), { ednsUdpSize: opts.ednsUdpSize, queryLog: opts.queryLog }, {
    geo: (address, prefix) => geo.locate(address, prefix),
    health,
    rand: Math.random,
  })
  const listeners = (opts.listen ?? [parseListen('127.0.0.1:5300')]).map(
    (at) => new DnsListener(at, handler, { idleTimeoutMs: opts.tcpIdleTimeout, maxConnections: opts.tcpMaxConnections }, log.child({ mod: 'dns' })),
  )
  const bound = []
  try {
    for (const l of listeners) bound.push(...(await l.start()))
  } catch (err) {
    log.fatal({ err: (err as Error).message }, 'cannot start: a listen address cannot be bound')
    process.exit(1)
  }
  if (opts.watch) store.watch()
  process.on('SIGHUP', () => {
    store.reload('SIGHUP').catch(() => undefined)
  })
  let stopping = false
  const stop = (signal: string) => {
    if (stopping) return
    stopping = true
    log.info({ signal }, 'shutting down: closing sockets')
    store.close()
    clearTimeout(saving)
    Promise.all([...listeners.map((l) => l.close()), saveHealth().then(() => poller.close()), stopExtras()]).then(
      () => {
        log.info('stopped')
        process.exit(0)
      },
      () => process.exit(1),
    )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  const set = store.current()
  log.info(
    {
      listen: bound.map((b) => `${b.transport}://${formatAddress(b.address, b.port)}`),
      zones: [...set.zones.keys()],
      zonesDir: opts.zones,
      ednsUdpSize: opts.ednsUdpSize,
      pid: process.pid,
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

async function check(opts: { zones: string }): Promise<number> {
  try {
    const set = buildZoneSet(await readZoneSources(opts.zones), (o, h) => new SerialBook(undefined).serialFor(o, h), 1, PLACES)
    for (const z of set.zones.values()) {
      process.stdout.write(`${z.file}: zone ${z.origin} OK (${z.nodes.size} names)\n`)
    }
    if (set.zones.size === 0) process.stdout.write(`${opts.zones}: no zone files (*.yaml)\n`)
    return 0
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const i of err.issues) process.stderr.write(formatIssue(i) + '\n')
      process.stderr.write(`${err.issues.length} error(s); nothing would be served from these files\n`)
      return 1
    }
    throw err
  }
}

export function program(): Command {
  const cmd = new Command('meridian').description('Meridian: authoritative DNS global server load balancer').showHelpAfterError()
  const serveOptions = (c: Command) =>
    c
      .option('--zones <dir>', 'directory of zone files (*.yaml)', 'zones')
      .option('--geodb <path>', `GeoIP database: an .mmdb file, or a directory holding ${DEFAULT_GEODB_FILE}`, 'geodb')
      .option('--listen <addr:port>', 'DNS address, UDP and TCP; repeat for more (e.g. 0.0.0.0:53 and [::]:53 in production)', listenOption)
      .addOption(new Option('--admin <addr:port>', 'admin API address').default(parseListen('127.0.0.1:8053'), '127.0.0.1:8053').argParser((v) => listenOption(v, [])[0]!))
      .addOption(new Option('--log-level <level>', 'log level').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'))
      .option('--edns-udp-size <bytes>', 'EDNS UDP payload size to advertise and answer within', intOption(512, 4096), DEFAULT_EDNS_UDP_SIZE)
      .option('--tcp-idle-timeout <ms>', 'close idle TCP connections after this long', intOption(100, 600000), 10000)
      .option('--tcp-max-connections <n>', 'concurrent TCP connections per listen address', intOption(1, 100000), 1024)
      .option('--query-log', 'log every query at debug level', false)
      .option('--no-watch', 'do not watch --zones for changes (SIGHUP still reloads)')
      .option('--health-wait <seconds>', 'before answering, wait up to this long for every health check to have a state', intOption(0, 600), 0)
  serveOptions(cmd.command('serve').description('answer DNS queries for the zones in --zones')).action(async (o: ServeOptions) => serve(o))
  serveOptions(cmd.command('demo').description('serve, and start a simulated L7 pool on port 8080 of every loopback VIP')).action(async (o: ServeOptions) => serve(o, startDemoPools))
  cmd
    .command('check')
    .description('validate the zone files; print every error as file:line:col and exit non-zero on any')
    .option('--zones <dir>', 'directory of zone files (*.yaml)', 'zones')
    .action(async (o: { zones: string }) => {
      process.exitCode = await check(o)
    })
  return cmd
}

program()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    process.stderr.write(`meridian: ${err instanceof MeridianError ? `${err.code}: ` : ''}${(err as Error).message}\n`)
    process.exit(2)
  })
