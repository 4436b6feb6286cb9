/**
 * One contract for every kind of check, `Check.run(signal)`, and its two implementations:
 * HTTP(S) on undici (keep-alive connections reused across rounds) and a plain TCP connect.
 *
 * A round never throws: it resolves with `{ ok, latencyMs, error?, status? }`. It ends at the
 * latest `timeoutMs` after it started: the timeout aborts the request for real (the socket is
 * destroyed, the server sees the client go), it is not merely a result ignored later.
 */
import net from 'node:net'
import { Agent, type Dispatcher } from 'undici'
import type { CheckResult } from './state.js'
import { CHECK_DEFAULTS, type ResolvedSpec } from './spec.js'

export interface Check {
  readonly spec: ResolvedSpec
  /** One round. `signal` cancels it from outside (the target was removed, the poller closes). */
  run(signal: AbortSignal): Promise<CheckResult>
}

/**
 * The undici dispatchers a poller owns: one Agent for plain HTTP and verified TLS, and a second
 * one, made only if some check turns certificate verification off (undici takes TLS options per
 * Agent, not per request). Each keeps one pool of keep-alive connections per origin.
 */
export class HttpAgents {
  private verified: Agent | null = null
  private insecure: Agent | null = null

  get(verify: boolean): Agent {
    if (verify) return (this.verified ??= new Agent({ connect: { rejectUnauthorized: true } }))
    return (this.insecure ??= new Agent({ connect: { rejectUnauthorized: false } }))
  }

  async close(): Promise<void> {
    const agents = [this.verified, this.insecure].filter((a): a is Agent => a !== null)
    this.verified = this.insecure = null
    // destroy, not close: a close would wait for requests in flight, and we want them gone now.
    await Promise.all(agents.map((a) => a.destroy()))
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
 * Combines the caller's signal with a round's timeout. `done()` must be called when the round
 * ends: it clears the timer and the listener on `outer`. (Not AbortSignal.timeout + AbortSignal.any:
 * their timer cannot be cleared, so every round that ended in time still fired a TimeoutError
 * DOMException and an abort event `timeoutMs` later, garbage that adds up at thousands of rounds
 * a second.)
 */
function roundSignal(outer: AbortSignal, timeoutMs: number): { signal: AbortSignal; timedOut: () => boolean; done: () => void } {
  const ac = new AbortController()
  let fired = false
  const onOuter = (): void => ac.abort(outer.reason)
  const timer = setTimeout(() => {
    fired = true
    ac.abort(new DOMException(`timeout after ${timeoutMs} ms`, 'TimeoutError'))
  }, timeoutMs)
  timer.unref()
  if (outer.aborted) onOuter()
  else outer.addEventListener('abort', onOuter, { once: true })
  return {
    signal: ac.signal,
    timedOut: () => fired && !outer.aborted,
    done: () => {
      clearTimeout(timer)
      outer.removeEventListener('abort', onOuter)
    },
  }
}

const USER_AGENT = 'meridian-health/1'

/**
 * An HTTP(S) check on undici's dispatch() with a handler of its own (one object per round, below),
 * not request(): request() builds a Readable body, a promise chain and an AbortSignal per round,
 * and a check runs rarely enough that its code stays cold. Measured on the bench machine, a round
 * against a simulated pool every 20-200 ms: ~0.86 ms of CPU with request(), ~0.5 ms with dispatch
 * (docs/benchmarks.md, session 9). With `--workers 1` that CPU is taken from the DNS thread.
 */
export class HttpCheck implements Check {
  /** The dispatch options, the same every round (undici reads them, it does not keep them). */
  private readonly opts: Dispatcher.DispatchOptions

  constructor(
    readonly spec: ResolvedSpec,
    private readonly agents: HttpAgents,
  ) {
    if (spec.kind === 'tcp' || !spec.url) throw new RangeError(`HttpCheck needs an http(s) spec, got ${spec.kind}`)
    const url = new URL(spec.url)
    const headers: Record<string, string> = { 'user-agent': USER_AGENT }
    if (spec.host !== undefined) headers.host = spec.host
    this.opts = {
      origin: url.origin,
      path: url.pathname + url.search,
      method: (spec.method ?? CHECK_DEFAULTS.method) as Dispatcher.HttpMethod,
      headers,
      headersTimeout: spec.timeoutMs,
      bodyTimeout: spec.timeoutMs,
      // `servername` is a dispatch option undici honours (lib/core/request.js) but does not type.
      ...(spec.servername !== undefined ? ({ servername: spec.servername } as object) : {}),
    }
  }

  run(outer: AbortSignal): Promise<CheckResult> {
    return new Promise((resolve) => new HttpRound(this.spec, outer, resolve).start(this.agents.get(this.spec.verify ?? CHECK_DEFAULTS.verify), this.opts))
  }
}

/**
 * One round of an HttpCheck: undici's handler for the request, and the round's timer. It settles
 * exactly once: at the end of the response, at an error, at the timeout or when `outer` aborts,
 * whichever comes first; a request still running then is aborted (its socket destroyed).
 */
class HttpRound implements Dispatcher.DispatchHandler {
  private readonly t0 = performance.now()
  private controller: Dispatcher.DispatchController | null = null
  private timer: NodeJS.Timeout | null = null
  private status = 0
  private text = ''
  private bytes = 0
  /** Why the round ended early (timeout, cancelled): the request is aborted with it. */
  private abortReason: Error | null = null
  private settled = false
  private readonly onOuter = (): void => this.stop(new Error('cancelled'), 'cancelled')

  constructor(
    private readonly spec: ResolvedSpec,
    private readonly outer: AbortSignal,
    private readonly resolve: (r: CheckResult) => void,
  ) {}

  start(dispatcher: Dispatcher, opts: Dispatcher.DispatchOptions): void {
    if (this.outer.aborted) return this.finish({ ok: false, latencyMs: elapsed(this.t0), error: 'cancelled' })
    this.outer.addEventListener('abort', this.onOuter, { once: true })
    this.timer = setTimeout(() => this.stop(new Error('timeout'), `timeout after ${this.spec.timeoutMs} ms`), this.spec.timeoutMs)
    this.timer.unref()
    try {
      dispatcher.dispatch(opts, this)
    } catch (err) {
      this.finish({ ok: false, latencyMs: elapsed(this.t0), error: errorText(err) })
    }
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller
    // The round already ended (timeout while connecting): this request is not wanted any more.
    if (this.abortReason) controller.abort(this.abortReason)
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number): void {
    this.status = statusCode
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.settled) return
    this.bytes += chunk.length
    if (this.spec.body !== undefined) this.text += chunk.toString('utf8')
    // Enough read to judge (a body match is looked for in the first BODY_LIMIT bytes): stop here.
    if (this.bytes >= BODY_LIMIT) {
      this.complete()
      this.abortReason = new Error('body limit')
      controller.abort(this.abortReason)
    }
  }

  onResponseEnd(): void {
    this.complete()
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.settled) return
    const code = (err as NodeJS.ErrnoException).code
    const timeout = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT'
    this.finish({ ok: false, latencyMs: elapsed(this.t0), error: timeout ? `timeout after ${this.spec.timeoutMs} ms` : errorText(err) })
  }

  /** The response is in: judge its status and body. */
  private complete(): void {
    if (this.settled) return
    const s = this.spec
    const latencyMs = elapsed(this.t0)
    const status = this.status
    const expect: readonly number[] = s.expect ?? CHECK_DEFAULTS.expect
    if (!expect.includes(status)) return this.finish({ ok: false, latencyMs, status, error: `status ${status}, expected ${expect.join(' or ')}` })
    if (s.body !== undefined && !this.text.includes(s.body)) return this.finish({ ok: false, latencyMs, status, error: `body does not contain ${JSON.stringify(s.body)}` })
    this.finish({ ok: true, latencyMs, status })
  }

  /** Ends the round early (`error` is its result) and aborts the request if it started. */
  private stop(reason: Error, error: string): void {
    if (this.settled) return
    this.finish({ ok: false, latencyMs: elapsed(this.t0), error })
    this.abortReason = reason
    this.controller?.abort(reason)
  }

  private finish(r: CheckResult): void {
    if (this.settled) return
    this.settled = true
    if (this.timer) clearTimeout(this.timer)
    this.outer.removeEventListener('abort', this.onOuter)
    this.resolve(r)
  }
}

export class TcpCheck implements Check {
  constructor(readonly spec: ResolvedSpec) {}

  run(outer: AbortSignal): Promise<CheckResult> {
    const s = this.spec
    const t0 = performance.now()
    const { signal, timedOut, done: settled } = roundSignal(outer, s.timeoutMs)
    return new Promise((resolve) => {
      const socket = net.connect({ host: s.address, port: s.port })
      const done = (r: CheckResult): void => {
        signal.removeEventListener('abort', onAbort)
        settled()
        socket.destroy()
        resolve(r)
      }
      const onAbort = (): void => done({ ok: false, latencyMs: elapsed(t0), error: timedOut() ? `timeout after ${s.timeoutMs} ms` : 'cancelled' })
      if (signal.aborted) return onAbort()
      signal.addEventListener('abort', onAbort, { once: true })
      socket.once('connect', () => done({ ok: true, latencyMs: elapsed(t0) }))
      socket.once('error', (err) => done({ ok: false, latencyMs: elapsed(t0), error: errorText(err) }))
    })
  }
}

/** The check for a spec. */
export function createCheck(spec: ResolvedSpec, agents: HttpAgents): Check {
  return spec.kind === 'tcp' ? new TcpCheck(spec) : new HttpCheck(spec, agents)
}
