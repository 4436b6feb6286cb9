/**
 * One contract for every kind of check, `Check.run(signal)`, and its two implementations:
 * HTTP(S) on undici (keep-alive connections reused across rounds) and a plain TCP connect.
 *
 * A round never throws: it resolves with `{ ok, latencyMs, error?, status? }`. It ends at the
 * latest `timeoutMs` after it started: the timeout aborts the request for real (the socket is
 * destroyed, the server sees the client go), it is not merely a result ignored later.
 */
import net from 'node:net'
import { Agent, request } from 'undici'
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
 * Combines the caller's signal with this round's timeout. `done()` must be called when the round
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

export class HttpCheck implements Check {
  constructor(
    readonly spec: ResolvedSpec,
    private readonly agents: HttpAgents,
  ) {
    if (spec.kind === 'tcp' || !spec.url) throw new RangeError(`HttpCheck needs an http(s) spec, got ${spec.kind}`)
  }

  async run(outer: AbortSignal): Promise<CheckResult> {
    const s = this.spec
    const t0 = performance.now()
    const { signal, timedOut, done } = roundSignal(outer, s.timeoutMs)
    try {
      const headers: Record<string, string> = { 'user-agent': 'meridian-health/1' }
      if (s.host !== undefined) headers.host = s.host
      const res = await request(s.url!, {
        dispatcher: this.agents.get(s.verify ?? CHECK_DEFAULTS.verify),
        method: s.method ?? CHECK_DEFAULTS.method,
        headers,
        signal,
        headersTimeout: s.timeoutMs,
        bodyTimeout: s.timeoutMs,
        // `servername` is a dispatch option undici honours (lib/core/request.js) but does not type.
        ...(s.servername !== undefined ? ({ servername: s.servername } as object) : {}),
      })
      let text = ''
      if (s.body !== undefined) {
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          text += chunk.toString('utf8')
          if (text.length >= BODY_LIMIT) break
        }
        if (!res.body.destroyed) res.body.destroy()
      } else {
        await res.body.dump({ limit: BODY_LIMIT, signal })
      }
      const latencyMs = elapsed(t0)
      const status = res.statusCode
      const expect: readonly number[] = s.expect ?? CHECK_DEFAULTS.expect
      if (!expect.includes(status)) return { ok: false, latencyMs, status, error: `status ${status}, expected ${expect.join(' or ')}` }
      if (s.body !== undefined && !text.includes(s.body)) return { ok: false, latencyMs, status, error: `body does not contain ${JSON.stringify(s.body)}` }
      return { ok: true, latencyMs, status }
    } catch (err) {
      const latencyMs = elapsed(t0)
      if (timedOut()) return { ok: false, latencyMs, error: `timeout after ${s.timeoutMs} ms` }
      if (outer.aborted) return { ok: false, latencyMs, error: 'cancelled' }
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return { ok: false, latencyMs, error: `timeout after ${s.timeoutMs} ms` }
      return { ok: false, latencyMs, error: errorText(err) }
    } finally {
      done()
    }
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
