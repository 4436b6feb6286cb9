/**
 * One contract for every kind of check, `Check.run(signal)`, and its two implementations:
 * HTTP(S) on undici (a connection of its own per round, closed after it) and a plain TCP connect.
 *
 * A round never throws: it resolves with `{ ok, latencyMs, error?, status? }`. It ends at the
 * latest `timeoutMs` after it started: the timeout closes the round's connection for real (the
 * socket is destroyed, the server sees the client go, a TLS handshake still in progress too), it
 * is not merely a result ignored later; and it opens no other connection to the pool.
 */
import net from 'node:net'
import tls from 'node:tls'
import { Client, type Dispatcher } from 'undici'
import type { CheckResult } from './state.js'
import { CHECK_DEFAULTS, type ResolvedSpec } from './spec.js'

export interface Check {
  readonly spec: ResolvedSpec
  /** One round. `signal` cancels it from outside (the target was removed, the poller closes). */
  run(signal: AbortSignal): Promise<CheckResult>
}

/**
 * What a poller's HTTP(S) rounds share: a connector per certificate verification (on, or off for
 * checks that turn it off), and the rounds in flight, so that close() ends them.
 *
 * Each round has an undici Client of its own (one origin, one connection, one request) whose
 * connections this connector makes, so that the round holds its socket:
 * - A round that times out destroys its Client (and a socket still connecting). It used to abort
 *   its request on a shared Agent, and an aborted undici request is put back in the queue and a
 *   new connection is opened for it (nodejs/undici#5845): each timed-out round against a pool that
 *   accepted and never answered cost that pool two connections, and a connection whose TLS
 *   handshake never came lived on up to a second past its round (undici's connect timer).
 * - No TLS session is kept between connections: every round makes a full handshake. undici's
 *   connector resumes sessions (its cache keyed by SNI name or address) whenever a connection of the
 *   same origin was still open, so two checks of one origin whose rounds overlapped measured one
 *   round with a full handshake and the next with a resumed one (one round trip less in TLS 1.2).
 */
export class RoundClients {
  private readonly live = new Set<Client>()
  private closed = false

  /** A Client for one round to `origin`; `onSocket` is told of the socket as soon as it is made. */
  client(origin: string, verify: boolean, onSocket: (socket: net.Socket) => void): Client {
    const client = new Client(origin, { connect: connector(verify, onSocket), pipelining: 1 })
    if (this.closed) void client.destroy(new Error('closed'))
    else this.live.add(client)
    return client
  }

  /** The round that used `client` is over. */
  release(client: Client): void {
    this.live.delete(client)
  }

  async close(): Promise<void> {
    this.closed = true
    const clients = [...this.live]
    this.live.clear()
    // destroy, not close: a close would wait for requests in flight, and we want them gone now.
    await Promise.all(clients.map((c) => c.destroy()))
  }
}

/**
 * undici's connector for one round: a TCP (or TLS) connection, told to `onSocket` at once, with no
 * TLS session offered (a full handshake every time) and no connect timer of its own (the round's
 * deadline destroys the socket). SNI: the name undici gives (the `servername` option, or the Host
 * header's name), none for an IP address; the certificate is verified for that name, or for the
 * address without one.
 */
function connector(verify: boolean, onSocket: (socket: net.Socket) => void): (o: { hostname: string; port: string; protocol: string; servername?: string | null }, cb: (...args: [null, net.Socket] | [Error, null]) => void) => void {
  return (o, cb) => {
    const host = o.hostname.replace(/^\[(.*)\]$/, '$1')
    const https = o.protocol === 'https:'
    const port = Number(o.port) || (https ? 443 : 80)
    const socket = https
      ? tls.connect({ host, port, servername: o.servername || undefined, rejectUnauthorized: verify, ALPNProtocols: ['http/1.1'] })
      : net.connect({ host, port })
    socket.setNoDelay(true)
    onSocket(socket)
    const settle = (err: Error | null): void => {
      socket.off(https ? 'secureConnect' : 'connect', onConnect).off('error', settle).off('close', onClose)
      if (err) cb(err, null)
      else cb(null, socket)
    }
    const onConnect = (): void => settle(null)
    const onClose = (): void => settle(new Error('connection closed before it was made'))
    socket.once(https ? 'secureConnect' : 'connect', onConnect).once('error', settle).once('close', onClose)
  }
}

/** Text for a person from whatever was thrown: `ECONNREFUSED: connect ECONNREFUSED 127.0.1.1:80`. */
export function errorText(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return errorText(err.errors[0])
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code
    const msg = err.message || err.name
    return code && !msg.includes(code) ? `${code}: ${msg}` : msg
  }
  return String(err)
}

const BODY_LIMIT = 64 * 1024

function elapsed(t0: number): number {
  return performance.now() - t0
}

/**
 * A round's deadline: calls `end(error)` once, when `timeoutMs` passes (`timeout after N ms`) or
 * `outer` aborts (`cancelled`), unless the clear function it returns was called first (call it when
 * the round ends otherwise; calling it again is harmless). `outer` must not be aborted yet. One
 * timer and one listener, no AbortController: not AbortSignal.timeout + AbortSignal.any either,
 * whose timer cannot be cleared, so every round that ended in time still fired a TimeoutError
 * DOMException and an abort event `timeoutMs` later, garbage that adds up at thousands of rounds
 * a second.
 */
function roundDeadline(outer: AbortSignal, timeoutMs: number, end: (error: string) => void): () => void {
  const clear = (): void => {
    clearTimeout(timer)
    outer.removeEventListener('abort', onOuter)
  }
  const onOuter = (): void => {
    clear()
    end('cancelled')
  }
  const timer = setTimeout(() => {
    clear()
    end(`timeout after ${timeoutMs} ms`)
  }, timeoutMs)
  timer.unref()
  outer.addEventListener('abort', onOuter, { once: true })
  return clear
}

const USER_AGENT = 'meridian-health/1'

/**
 * An HTTP(S) check on undici's dispatch() with a handler of its own (one object per round, below),
 * not request(): request() builds a Readable body, a promise chain and an AbortSignal per round,
 * and a check runs rarely enough that its code stays cold. Measured on the bench machine, a round
 * against a simulated pool every 20 ms: 0.60-0.68 ms of CPU with request(), 0.47-0.52 ms with
 * dispatch (docs/benchmarks.md, session 9). With `--workers 1` that CPU is taken from the DNS thread.
 */
export class HttpCheck implements Check {
  /** The dispatch options, the same every round (undici reads them, it does not keep them). */
  private readonly opts: Dispatcher.DispatchOptions

  constructor(
    readonly spec: ResolvedSpec,
    private readonly clients: RoundClients,
  ) {
    if (spec.kind === 'tcp' || !spec.url) throw new RangeError(`HttpCheck needs an http(s) spec, got ${spec.kind}`)
    const url = new URL(spec.url)
    const headers: Record<string, string> = { 'user-agent': USER_AGENT }
    // The Host header: `host`; else the SNI name, with the URL's port, so that a pool that routes
    // by Host (nginx server_name, an ALB rule) answers for the site whose certificate was asked
    // for, not for the address; else undici's default, the URL's host. (Without `servername`,
    // undici takes the SNI name from `host`: the two follow each other either way.)
    const host = spec.host ?? (spec.servername !== undefined ? spec.servername + (url.port ? `:${url.port}` : '') : undefined)
    if (host !== undefined) headers.host = host
    this.opts = {
      origin: url.origin,
      path: url.pathname + url.search,
      method: (spec.method ?? CHECK_DEFAULTS.method) as Dispatcher.HttpMethod,
      headers,
      headersTimeout: spec.timeoutMs,
      bodyTimeout: spec.timeoutMs,
      // A new connection every round (a Client of its own, RoundClients), closed after it
      // (`Connection: close`), as HAProxy's httpchk does: a check tests the path a new client
      // takes. Over a kept-alive connection a pool that no longer accepts connections, or now
      // presents a certificate that does not verify, stayed up; and the latency measured the
      // handshake in some rounds and not in others. Nor is a TLS session resumed (RoundClients).
      reset: true,
      // `servername` is a dispatch option undici honours (lib/core/request.js) but does not type.
      ...(spec.servername !== undefined ? ({ servername: spec.servername } as object) : {}),
    }
  }

  run(outer: AbortSignal): Promise<CheckResult> {
    return new Promise((resolve) => new HttpRound(this.spec, outer, resolve).start(this.clients, this.opts))
  }
}

/**
 * One round of an HttpCheck: undici's handler for the request, and the round's timer. It settles
 * exactly once: when the response decides it (its headers without a body check or with a status
 * outside `expect`; the substring found with one; else its end), at an error, at the timeout or
 * when `outer` aborts, whichever comes first. A body still coming when the round is decided is read
 * and dropped until it ends, BODY_LIMIT octets, or the round's deadline. The round's Client (its
 * one connection) closes itself once the response has ended, or is destroyed at once when the round
 * gives up on it (deadline, BODY_LIMIT, `outer`): never an abort of the request, which makes undici
 * open a spare connection to the pool (nodejs/undici#5845).
 */
class HttpRound implements Dispatcher.DispatchHandler {
  private readonly t0 = performance.now()
  private client: Client | null = null
  /** The round's socket from its first moment (a TLS handshake in progress too), to destroy at the deadline. */
  private socket: net.Socket | null = null
  private clearDeadline: () => void = () => undefined
  private status = 0
  /**
   * A body check: whether the substring has come, and the last octets before the next chunk (one
   * fewer than the substring's), so a substring cut between two chunks is found, as octets (a
   * character cut between two chunks is not mangled), and each chunk is searched once.
   */
  private found = false
  private tail: Buffer = Buffer.alloc(0)
  private bytes = 0
  private settled = false
  /** Judged before the response ended (judge()): the rest of the body is read and dropped. */
  private draining = false

  constructor(
    private readonly spec: ResolvedSpec,
    private readonly outer: AbortSignal,
    private readonly resolve: (r: CheckResult) => void,
  ) {}

  start(clients: RoundClients, opts: Dispatcher.DispatchOptions): void {
    if (this.outer.aborted) return this.finish({ ok: false, latencyMs: elapsed(this.t0), error: 'cancelled' })
    this.clearDeadline = roundDeadline(this.outer, this.spec.timeoutMs, (error) => this.stop(error))
    const client = (this.client = clients.client(opts.origin as string, this.spec.verify ?? CHECK_DEFAULTS.verify, (s) => (this.socket = s)))
    const release = (): void => clients.release(client)
    try {
      client.dispatch(opts, this)
      // Closes itself (and its connection) once this request is over; nothing else is queued on it.
      client.close().then(release, release)
    } catch (err) {
      release()
      this.hangUp(err as Error)
      this.finish({ ok: false, latencyMs: elapsed(this.t0), error: errorText(err) })
    }
  }

  onRequestStart(): void {
    // The round already ended (timeout or cancelled while connecting): the request is not wanted.
    if (this.settled && !this.draining) this.hangUp(new Error('round over'))
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number): void {
    // A 1xx (103 Early Hints) is not the answer: the final response follows.
    if (this.settled || statusCode < 200) return
    this.status = statusCode
    // A status outside `expect` decides the round now: waiting for its body (a 503 page that
    // streams or stalls) reported `timeout` instead of the status. So does an expected one when no
    // body is looked for: the body cannot change the verdict, and waiting for its end failed a
    // healthy pool whose page streams or trickles (a status page that flushes as it renders) with
    // `timeout`, and made its latency the body's length.
    if (this.spec.body === undefined || !(this.spec.expect ?? CHECK_DEFAULTS.expect).includes(statusCode)) this.judge()
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.settled && !this.draining) return
    this.bytes += chunk.length
    if (this.spec.body !== undefined && !this.settled) {
      const window = this.tail.length > 0 ? Buffer.concat([this.tail, chunk]) : chunk
      // Judged as soon as the substring is in (a body that goes on after it changes nothing).
      if (window.includes(this.spec.body)) {
        this.found = true
        this.judge()
      } else {
        const keep = Buffer.byteLength(this.spec.body) - 1
        this.tail = Buffer.from(window.subarray(Math.max(0, window.length - keep)))
      }
    }
    // Enough read to judge (a body match is looked for in the first BODY_LIMIT bytes), or to
    // drain: stop here.
    if (this.bytes >= BODY_LIMIT) {
      this.complete()
      this.clearDeadline()
      this.hangUp(new Error('body limit'))
    }
  }

  onResponseEnd(): void {
    this.complete()
    this.clearDeadline()
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.clearDeadline()
    if (this.settled) return
    const code = (err as NodeJS.ErrnoException).code
    const timeout = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT'
    this.finish({ ok: false, latencyMs: elapsed(this.t0), error: timeout ? `timeout after ${this.spec.timeoutMs} ms` : errorText(err) })
  }

  /**
   * The round is decided before the response ends: settle it now, and let the rest of the body
   * drain until it ends, BODY_LIMIT, or the round's deadline (which then hangs up, without changing
   * the round's result). Not hung up at once: a socket closed with a response still unread is
   * reset (RST), and the rest of a page that ends soon costs less than a reset on every round.
   */
  private judge(): void {
    if (this.settled) return
    this.draining = true
    this.complete()
  }

  /** The response is in: judge its status and body. */
  private complete(): void {
    if (this.settled) return
    const s = this.spec
    const latencyMs = elapsed(this.t0)
    const status = this.status
    const expect: readonly number[] = s.expect ?? CHECK_DEFAULTS.expect
    if (!expect.includes(status)) return this.finish({ ok: false, latencyMs, status, error: `status ${status}, expected ${expect.join(' or ')}` })
    // The UTF-8 octets of the substring among the body's octets: decoding chunk by chunk turned a
    // character cut between two chunks into two U+FFFD, and a body check naming it failed.
    if (s.body !== undefined && !this.found) return this.finish({ ok: false, latencyMs, status, error: `body does not contain ${JSON.stringify(s.body)}` })
    this.finish({ ok: true, latencyMs, status })
  }

  /** Ends the round early (`error` is its result, unless it was judged already) and closes its connection, made or being made. */
  private stop(error: string): void {
    this.finish({ ok: false, latencyMs: elapsed(this.t0), error })
    this.hangUp(new Error(error))
  }

  /**
   * Destroys the round's Client and socket: the connection closes now, whatever state it is in
   * (connecting, in the TLS handshake, waiting for headers, reading a body), and, the Client being
   * destroyed rather than its request aborted, undici opens no other connection for the request.
   */
  private hangUp(err: Error): void {
    void this.client?.destroy(err)
    this.socket?.destroy()
  }

  private finish(r: CheckResult): void {
    if (this.settled) return
    this.settled = true
    // A round judged early keeps its deadline for the body it drains.
    if (!this.draining) this.clearDeadline()
    this.resolve(r)
  }
}

export class TcpCheck implements Check {
  constructor(readonly spec: ResolvedSpec) {}

  run(outer: AbortSignal): Promise<CheckResult> {
    const s = this.spec
    const t0 = performance.now()
    if (outer.aborted) return Promise.resolve({ ok: false, latencyMs: 0, error: 'cancelled' })
    return new Promise((resolve) => {
      const socket = net.connect({ host: s.address, port: s.port })
      let settled = false
      const done = (r: CheckResult): void => {
        if (settled) return
        settled = true
        clearDeadline()
        socket.destroy()
        resolve(r)
      }
      const clearDeadline = roundDeadline(outer, s.timeoutMs, (error) => done({ ok: false, latencyMs: elapsed(t0), error }))
      socket.once('connect', () => done({ ok: true, latencyMs: elapsed(t0) }))
      socket.once('error', (err) => done({ ok: false, latencyMs: elapsed(t0), error: errorText(err) }))
    })
  }
}

/** The check for a spec. */
export function createCheck(spec: ResolvedSpec, clients: RoundClients): Check {
  return spec.kind === 'tcp' ? new TcpCheck(spec) : new HttpCheck(spec, clients)
}
