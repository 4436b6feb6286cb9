/**
 * A DNS worker (`meridian serve --workers N`, N >= 2): the entry module node:cluster forks. It owns
 * no state of its own: the control process sends the zone set (on start and on every change)
 * and the health view (whole on start, then deltas: health-sync.ts), and the worker answers from the last ones received with its own DnsHandler and
 * GeoIP reader, on sockets node:cluster shares between all workers. It exits when told to stop, on
 * SIGTERM, and when the IPC channel to the control process closes (the control process is gone).
 */
import cluster from 'node:cluster'
import { DnsHandler } from '../dns/handler.js'
import type { GslbContext } from '../dns/responder.js'
import { DnsListener, type BoundAddress } from '../dns/server.js'
import { formatAddress } from '../model/address.js'
import { GeoDb } from '../geo/index.js'
import { HealthReplica } from './health-sync.js'
import { createLogger, type Logger } from '../log.js'
import { Metrics } from '../metrics/index.js'
import type { VipHealth } from '../model/gslb.js'
import type { ServedZoneSet } from '../model/types.js'
import type { FromWorker, HealthUpdate, ToWorker, WorkerInit } from './protocol.js'

function send(msg: FromWorker): void {
  // An error here (EPIPE: the control process just died) is not this worker's to report: its
  // 'disconnect' handler stops it. Without the callback it would be an uncaught 'error'.
  if (process.connected) process.send!(msg, undefined, undefined, () => undefined)
}

/** How often a worker sends its counters unasked. */
const REPORT_MS = 2000

function main(): void {
  const id = cluster.worker?.id ?? 0
  let log: Logger = createLogger('info').child({ worker: id })
  // The last zone set and health view received: what every answer is computed from.
  let zones: ServedZoneSet | undefined
  let health: HealthReplica | undefined
  let metrics: Metrics | undefined
  const listeners: DnsListener[] = []
  /** The GeoIP database the control process sent last, and the handler answering (once init came). */
  let geo: GeoDb | undefined
  let handler: DnsHandler | undefined

  /** A GeoIP database arriving in pieces ('geodb-part'), and how many of its octets are in. */
  let incoming: { seq: number; path: string; buf: Buffer; got: number } | null = null
  /** The sequence number of the oldest database change not answered from yet (0: none). */
  let holdFrom = 0
  /** The highest sequence number handled. */
  let latest = 0
  /** The sequence number of the zone set answering (its reports are tagged with it). */
  let zonesSeq = 0
  /** Acknowledges `seq`, but never a database change this worker does not answer from yet. */
  const ack = (seq: number) => {
    latest = Math.max(latest, seq)
    send({ type: 'ack', seq: holdFrom > 0 ? Math.min(latest, holdFrom - 1) : latest, zones: zonesSeq })
  }

  /** Everything but the sockets, before the next message is read: a 'geodb-part' one finds what it replaces. */
  function prepare(init: WorkerInit): void {
    // The 'advanced' serialization delivers a Buffer as a Buffer.
    geo = GeoDb.fromBuffer(init.geodb.bytes, init.geodb.path)
    // DNS counters only: the control process reports the process metrics and everything else.
    const m = new Metrics({ processMetrics: false })
    const gslb: GslbContext = {
      geo: (address: string, prefix?: number) => geo!.locate(address, prefix),
      health: (key: string): VipHealth | undefined => health!.view.targets.get(key),
      rand: Math.random,
      generations: () => health!.view,
      movedSince: (generation, visit) => health!.movedSince(generation, visit),
    }
    handler = new DnsHandler(() => zones!, log.child({ mod: 'dns' }), init.handler, gslb, m)
    metrics = m
  }

  async function start(init: WorkerInit): Promise<BoundAddress[]> {
    prepare(init)
    // Before the sockets: the first queries find the answer cache's index of the set built.
    handler!.prepare()
    for (const at of init.listen) listeners.push(new DnsListener(at, handler!, init.tcp, log.child({ mod: 'dns' })))
    const bound: BoundAddress[] = []
    for (const l of listeners) bound.push(...(await l.start()))
    return bound
  }

  /** Brings the health view to the control process's: a whole view, or a delta. */
  const updateHealth = (msg: HealthUpdate): void => {
    if (!health) return
    if (msg.type === 'health') health.replace(msg.health)
    // Deltas come in order on one channel after the init's whole view: one that does not follow
    // on means a message was lost, and this worker would answer from a view it cannot trust.
    else if (!health.apply(msg)) {
      log.fatal({ from: msg.from, have: health.view.generation }, 'dns worker: a health update does not follow on from its view; exiting to be replaced')
      stop('a health update out of order', 1)
    }
  }

  let stopping = false
  const stop = (why: string, code = 0) => {
    if (stopping) return
    stopping = true
    let said = false
    const stopped = (queries?: number) => {
      if (said) return
      said = true
      log.info({ why, pid: process.pid, queries }, 'dns worker stopped')
    }
    // With the control process gone node:cluster exits at once (its own 'disconnect' listener):
    // said then, without the count.
    process.once('exit', () => stopped())
    setTimeout(() => process.exit(code), 3000).unref()
    Promise.all(listeners.map((l) => l.close().catch(() => undefined)))
      .then(async () => stopped(await answered()))
      .finally(() => process.exit(code))
  }
  /** Sends this worker's counters: for scrape `id`, or unasked (id 0) every REPORT_MS. */
  const report = (id: number) => {
    const seq = zonesSeq
    if (!metrics) send({ type: 'metrics', id, seq, metrics: [] })
    else
      metrics.registry.getMetricsAsJSON().then(
        (json) => send({ type: 'metrics', id, seq, metrics: json }),
        (err: Error) => log.error({ err: err.message }, 'cannot collect the metrics'),
      )
  }
  // The control process keeps the last counters a worker sent when it dies: sent unasked as well,
  // so a worker that dies between scrapes takes at most REPORT_MS of its counts with it.
  setInterval(() => report(0), REPORT_MS).unref()
  /** Queries this worker answered (every label set of meridian_dns_queries_total). */
  const answered = async () => {
    const q = (await metrics?.registry.getSingleMetric('meridian_dns_queries_total')?.get())?.values ?? []
    return q.reduce((sum, v) => sum + v.value, 0)
  }
  // The control process orders the shutdown and reloads: a Ctrl-C or hangup reaching the whole
  // process group is its business (SIGHUP would otherwise end a worker).
  process.on('SIGINT', () => undefined)
  process.on('SIGHUP', () => undefined)
  process.on('SIGTERM', () => stop('SIGTERM'))
  // The control process is gone (even killed with SIGKILL): do not linger. Before node:cluster's own
  // listener, which calls process.exit() at once.
  process.prependOnceListener('disconnect', () => stop('the control process disconnected'))
  process.on('message', (msg: ToWorker) => {
    switch (msg.type) {
      case 'init':
        latest = zonesSeq = msg.seq
        log = createLogger(msg.logLevel as Parameters<typeof createLogger>[0]).child({ worker: id })
        zones = msg.zones
        health = new HealthReplica(msg.health)
        start(msg).then(
          (bound) => {
            log.info({ pid: process.pid, listen: bound.map((b) => `${b.transport}://${formatAddress(b.address, b.port)}`) }, 'dns worker ready')
            send({ type: 'ready', pid: process.pid, bound })
          },
          (err: Error) => {
            log.fatal({ err: err.message, pid: process.pid }, 'dns worker cannot start')
            send({ type: 'fatal', message: err.message })
            stop('cannot start', 1)
          },
        )
        break
      case 'zones':
        // The set and its checks' health in the same turn: no query is answered from one without the other.
        if (msg.health) updateHealth(msg.health)
        // A zone, service or region gone from the set takes its series with it, from this report on
        // (the control process strips them from the reports tagged with an older set: cluster/metrics.ts).
        if (msg.removed.length > 0) metrics?.forgetSeries(msg.removed)
        zones = msg.zones
        zonesSeq = msg.seq
        // Before the ack: the control process sends a staggered set's second half once this one
        // answers from it at full speed, its answer cache's index of the set built.
        handler?.prepare()
        // Said before the ack: on the stdout the workers share with the control process, this line
        // comes before anything the control process does on the ack (a staggered set's release).
        log.debug({ seq: msg.seq }, 'dns worker: zone set applied')
        ack(msg.seq)
        break
      case 'health':
      case 'health-delta':
        updateHealth(msg)
        break
      case 'metrics':
        report(msg.id)
        break
      case 'geodb-part': {
        if (incoming?.seq !== msg.seq) {
          // A new database; one still arriving, if any, is superseded (its acknowledgement comes with this one's).
          if (holdFrom === 0) holdFrom = msg.seq
          incoming = { seq: msg.seq, path: msg.path, buf: Buffer.allocUnsafe(msg.size), got: 0 }
        }
        msg.bytes.copy(incoming.buf, msg.offset)
        incoming.got += msg.bytes.length
        if (incoming.got < incoming.buf.length) break
        const db = incoming
        incoming = null
        // The control process opened these octets already: a failure here is a bug. Not acknowledged
        // (this worker would answer from another database than the others): it exits to be replaced.
        let next: GeoDb
        try {
          next = GeoDb.fromBuffer(db.buf, db.path)
        } catch (err) {
          log.fatal({ geodb: db.path, err: (err as Error).message }, 'dns worker: the GeoIP database sent cannot be opened; exiting to be replaced')
          stop('the GeoIP database sent cannot be opened', 1)
          break
        }
        const old = geo
        geo = next
        // Where each client network is may have changed: every cached answer and location goes.
        handler?.cache?.clear()
        old?.close()
        log.debug({ geodb: db.path, buildEpoch: next.info.buildEpoch }, 'dns worker: GeoIP database replaced')
        holdFrom = 0
        ack(db.seq)
        break
      }
      case 'stop':
        stop('asked by the control process')
        break
    }
  })
  // Only now is the listener in place: ask for the init message.
  send({ type: 'hello' })
}

if (cluster.isWorker) main()
