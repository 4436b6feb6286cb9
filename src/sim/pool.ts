/**
 * One simulated region: a reverse proxy on the region's VIP that round-robins over its backends,
 * probes them itself, and answers its own /healthz like an HAProxy or ALB pool would.
 */
import { EventEmitter } from 'node:events'
import http from 'node:http'
import type { Socket } from 'node:net'
import { closeServer, listen, SimBackend } from './backend.js'

export interface PoolSpec {
  /** Region name, e.g. `eu-west`; backends are named `eu-west-b1`, `eu-west-b2`... */
  region: string
  /** Address the proxy listens on (any 127.x.y.z on Linux). Default 127.0.0.1. */
  vip?: string
  /** Port of the proxy; 0 (default) lets the OS choose, and the chosen port is kept across stop/start. */
  port?: number
  /** Number of backends, default 2. */
  backends?: number
  /** How often the pool probes each backend's /healthz, default 200 ms. */
  healthIntervalMs?: number
  /** Delay added to every response of the proxy (its own /healthz included), default 0. */
  latencyMs?: number
  /**
   * Answer `POST /_sim/fail` (stop every backend: /healthz turns 503), `POST /_sim/recover` (start them
   * again) and `POST /_sim/latency?ms=N`, so a person can take the demo's regions down with curl.
   * Default false.
   */
  control?: boolean
}

/** What the proxy's own /healthz answers. */
export interface PoolHealthReply {
  region: string
  healthy: number
  backends: number
}

/** Counters, for tests to prove what happened on the wire. */
export interface PoolStats {
  /** TCP connections accepted by the proxy. */
  connections: number
  /** Requests the proxy received (its /healthz included). */
  requests: number
  /** Requests to the proxy's own /healthz. */
  healthz: number
  /** Requests whose client went away before the response was complete. */
  clientAborts: number
  /** 502 answers (no healthy backend, or the backend failed). */
  badGateway: number
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

/** Headers minus the hop-by-hop ones (RFC 9110 §7.6.1), including those named by `Connection`. */
function endToEnd(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const named = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
  )
  const out: http.OutgoingHttpHeaders = {}
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || HOP_BY_HOP.has(k) || named.has(k)) continue
    out[k] = v
  }
  return out
}

export class SimPool extends EventEmitter {
  readonly region: string
  readonly vip: string
  port: number
  readonly backends: readonly SimBackend[]
  readonly healthIntervalMs: number
  readonly control: boolean
  readonly stats: PoolStats = { connections: 0, requests: 0, healthz: 0, clientAborts: 0, badGateway: 0 }
  private latencyMs: number
  private server: http.Server | null = null
  private healthy: boolean[]
  /** Backends the operator wants running (stopBackend/startBackend), restored by start() after stop(). */
  private wanted: boolean[]
  private rr = 0
  private timer: NodeJS.Timeout | null = null
  private probing: Promise<void> | null = null
  private readonly agent = new http.Agent({ keepAlive: true, timeout: 10_000 })

  constructor(spec: PoolSpec) {
    super()
    const n = spec.backends ?? 2
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`backends must be a positive integer, got ${n}`)
    this.region = spec.region
    this.vip = spec.vip ?? '127.0.0.1'
    this.port = spec.port ?? 0
    this.healthIntervalMs = spec.healthIntervalMs ?? 200
    this.control = spec.control ?? false
    this.latencyMs = spec.latencyMs ?? 0
    this.backends = Array.from({ length: n }, (_, i) => new SimBackend(spec.region, i))
    this.healthy = this.backends.map(() => false)
    this.wanted = this.backends.map(() => true)
  }

  /** Base URL of the proxy, e.g. `http://127.0.1.1:40123`. */
  get url(): string {
    return `http://${this.vip}:${this.port}`
  }

  get listening(): boolean {
    return this.server !== null
  }

  /** Backends the pool currently considers healthy. */
  healthyCount(): number {
    return this.healthy.filter(Boolean).length
  }

  isHealthy(i: number): boolean {
    return this.healthy[this.checkIndex(i)] === true
  }

  /** Requests received by the backends for `path` (all paths when omitted), the pool's own probes excluded. */
  hits(path?: string): number {
    return this.backends.reduce((n, b) => n + b.hits(path), 0)
  }

  setLatency(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`latency must be >= 0, got ${ms}`)
    this.latencyMs = ms
  }

  /**
   * Starts the wanted backends, probes them once (so the pool is ready when this resolves), then
   * listens on the VIP and keeps probing every healthIntervalMs.
   */
  async start(): Promise<void> {
    if (this.server) return
    await Promise.all(this.backends.map((b, i) => (this.wanted[i] ? b.start() : undefined)))
    await this.probeNow()
    const server = http.createServer((req, res) => this.handle(req, res))
    server.on('connection', (_s: Socket) => {
      this.stats.connections++
    })
    this.port = await listen(server, this.port, this.vip)
    this.server = server
    this.schedule()
  }

  /** The whole region goes away: the VIP socket is closed (connects are refused), every connection is cut, the backends stop. */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    const server = this.server
    this.server = null
    if (server) await closeServer(server)
    await this.probing
    await Promise.all(this.backends.map((b) => b.stop()))
    this.healthy = this.backends.map(() => false)
    this.agent.destroy()
  }

  /** Stops everything for good (same as stop(); kept as the name tests hand to `t.after`). */
  async close(): Promise<void> {
    await this.stop()
  }

  /** Backend i crashes; the pool notices at its next probe (or at once if a proxied request fails on it). */
  async stopBackend(i: number): Promise<void> {
    this.wanted[this.checkIndex(i)] = false
    await this.backends[i]!.stop()
  }

  /** Backend i comes back; the pool takes it in again at its next probe (if the pool is stopped, it comes back with start()). */
  async startBackend(i: number): Promise<void> {
    this.wanted[this.checkIndex(i)] = true
    if (this.server) await this.backends[i]!.start()
  }

  /** Probes every backend now and updates the table; resolves when done. */
  probeNow(): Promise<void> {
    if (!this.probing) {
      this.probing = Promise.all(this.backends.map((b) => this.probe(b))).then((oks) => {
        oks.forEach((ok, i) => this.mark(i, ok))
        this.probing = null
      })
    }
    return this.probing
  }

  private checkIndex(i: number): number {
    if (!Number.isInteger(i) || i < 0 || i >= this.backends.length) throw new RangeError(`no backend ${i} in pool ${this.region}`)
    return i
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.timer = null
      void this.probeNow().then(() => {
        if (this.server) this.schedule()
      })
    }, this.healthIntervalMs)
  }

  private mark(i: number, ok: boolean): void {
    if (this.healthy[i] === ok) return
    this.healthy[i] = ok
    this.emit('backend', { index: i, name: this.backends[i]!.name, healthy: ok })
  }

  private probe(b: SimBackend): Promise<boolean> {
    if (!b.running) return Promise.resolve(false)
    return new Promise((resolve) => {
      const req = http.get(
        { host: b.host, port: b.port, path: '/healthz', headers: { 'x-sim-probe': '1' }, agent: false, timeout: Math.max(50, Math.min(1000, this.healthIntervalMs)) },
        (res) => {
          res.resume()
          res.on('end', () => resolve(res.statusCode === 200))
          res.on('error', () => resolve(false))
        },
      )
      req.on('timeout', () => req.destroy(new Error('probe timeout')))
      req.on('error', () => resolve(false))
    })
  }

  /** Next healthy backend after the last one used, or null. */
  private pick(): SimBackend | null {
    const n = this.backends.length
    for (let k = 0; k < n; k++) {
      const i = (this.rr + k) % n
      if (this.healthy[i]) {
        this.rr = (i + 1) % n
        return this.backends[i]!
      }
    }
    return null
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.stats.requests++
    let timer: NodeJS.Timeout | null = null
    res.once('close', () => {
      if (timer) clearTimeout(timer)
      if (!res.writableFinished) this.stats.clientAborts++
    })
    const go = (): void => {
      timer = null
      if (res.destroyed) return
      const path = (req.url ?? '/').split('?')[0]
      if (path === '/healthz') this.answerHealthz(req, res)
      else if (this.control && path?.startsWith('/_sim/')) this.answerControl(req, res, path)
      else this.proxy(req, res)
    }
    if (this.latencyMs > 0) timer = setTimeout(go, this.latencyMs)
    else go()
  }

  private answerControl(req: http.IncomingMessage, res: http.ServerResponse, path: string): void {
    const reply = (status: number, body: object) => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ region: this.region, ...body }) + '\n')
    }
    if (req.method !== 'POST') return reply(405, { error: 'use POST' })
    const all = this.backends.map((_, i) => i)
    const done = (action: string) => () => reply(200, { action, latencyMs: this.latencyMs })
    const failed = (err: Error) => reply(500, { error: err.message })
    if (path === '/_sim/fail') void Promise.all(all.map((i) => this.stopBackend(i))).then(done('fail'), failed)
    else if (path === '/_sim/recover') void Promise.all(all.map((i) => this.startBackend(i))).then(done('recover'), failed)
    else if (path === '/_sim/latency') {
      const ms = Number(new URL(req.url ?? '', 'http://x').searchParams.get('ms'))
      if (!Number.isInteger(ms) || ms < 0 || ms > 60000) return reply(400, { error: 'ms must be an integer 0..60000' })
      this.setLatency(ms)
      done('latency')()
    } else reply(404, { error: 'unknown control; POST /_sim/fail, /_sim/recover or /_sim/latency?ms=N' })
  }

  private answerHealthz(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.stats.healthz++
    req.resume()
    const healthy = this.healthyCount()
    const reply: PoolHealthReply = { region: this.region, healthy, backends: this.backends.length }
    this.reply(req, res, healthy > 0 ? 200 : 503, reply)
  }

  private reply(req: http.IncomingMessage, res: http.ServerResponse, status: number, body: object): void {
    const text = JSON.stringify(body)
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-sim-region': this.region })
    res.end(req.method === 'HEAD' ? undefined : text)
  }

  private badGateway(req: http.IncomingMessage, res: http.ServerResponse, error: string): void {
    this.stats.badGateway++
    req.resume()
    this.reply(req, res, 502, { region: this.region, error })
  }

  private proxy(req: http.IncomingMessage, res: http.ServerResponse): void {
    const b = this.pick()
    if (!b) return this.badGateway(req, res, 'no healthy backend')
    const headers = endToEnd(req.headers)
    const client = req.socket.remoteAddress ?? ''
    const xff = req.headers['x-forwarded-for']
    headers['x-forwarded-for'] = xff ? `${String(xff)}, ${client}` : client
    headers['x-forwarded-proto'] = 'http'
    if (req.headers.host) headers['x-forwarded-host'] = req.headers.host
    const upstream = http.request({ host: b.host, port: b.port, method: req.method, path: req.url, headers, agent: this.agent })
    upstream.on('response', (ures) => {
      const out = endToEnd(ures.headers)
      out['x-sim-pool'] = this.region
      res.writeHead(ures.statusCode ?? 502, out)
      ures.pipe(res)
      ures.on('error', (err) => res.destroy(err))
    })
    upstream.on('error', (err) => {
      if (res.headersSent) {
        res.destroy(err)
        return
      }
      // Passive check: a backend that fails a request is out until its next good probe.
      this.mark(b.index, false)
      this.badGateway(req, res, `backend ${b.name}: ${(err as NodeJS.ErrnoException).code ?? err.message}`)
    })
    res.once('close', () => {
      if (!res.writableFinished) upstream.destroy()
    })
    req.pipe(upstream)
  }
}

/** Creates and starts one pool. */
export async function startPool(spec: PoolSpec): Promise<SimPool> {
  const pool = new SimPool(spec)
  await pool.start()
  return pool
}

/** Starts several pools at once; if one fails, the others are stopped and the error is thrown. */
export async function startPools(specs: readonly PoolSpec[]): Promise<SimPool[]> {
  const pools = specs.map((s) => new SimPool(s))
  const results = await Promise.allSettled(pools.map((p) => p.start()))
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed) {
    await Promise.all(pools.map((p) => p.stop()))
    throw failed.reason
  }
  return pools
}
