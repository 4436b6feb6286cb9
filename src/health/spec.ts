/**
 * What to check and how often: the check spec, its defaults, its validation, and its stable key.
 */
import { createHash } from 'node:crypto'

import { formatAddress } from '../model/address.js'
import type { CheckKind, CheckSpec } from '../model/gslb.js'

export type { CheckKind, CheckSpec }

/** A spec with every default applied and the fields that do not apply to its kind removed. */
export interface ResolvedSpec {
  readonly kind: CheckKind
  readonly address: string
  readonly port: number
  /** HTTP(S) only: the URL requested (origin + path). */
  readonly url?: string
  readonly host?: string
  readonly method?: 'GET' | 'HEAD'
  readonly expect?: readonly number[]
  readonly body?: string
  readonly servername?: string
  readonly verify?: boolean
  readonly intervalMs: number
  readonly timeoutMs: number
  readonly rise: number
  readonly fall: number
}

export const CHECK_DEFAULTS = {
  path: '/healthz',
  method: 'GET',
  expect: [200],
  verify: true,
  intervalMs: 5000,
  timeoutMs: 2000,
  rise: 2,
  fall: 3,
} as const

function bad(what: string): never {
  // Specs reaching here were validated by the zone schema; a bad one is a programming error.
  throw new RangeError(`invalid health check: ${what}`)
}

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) bad(`${name} must be a positive integer, got ${String(v)}`)
  return v
}

/** A spec without a URL must give where to connect. */
function addressAndPort(spec: CheckSpec): void {
  if (!spec.address) bad('address is required')
  if (!Number.isInteger(spec.port) || spec.port < 1 || spec.port > 65535) bad(`port must be 1..65535, got ${String(spec.port)}`)
}

/** Applies defaults, checks ranges, and drops what does not apply to the kind. */
export function resolveSpec(spec: CheckSpec): ResolvedSpec {
  const { kind } = spec
  if (kind !== 'http' && kind !== 'https' && kind !== 'tcp') bad(`kind must be http, https or tcp, got ${String(kind)}`)
  const intervalMs = positiveInt('intervalMs', spec.intervalMs ?? CHECK_DEFAULTS.intervalMs)
  const timeoutMs = positiveInt('timeoutMs', spec.timeoutMs ?? CHECK_DEFAULTS.timeoutMs)
  if (timeoutMs >= intervalMs) bad(`timeoutMs (${timeoutMs}) must be less than intervalMs (${intervalMs})`)
  const rise = positiveInt('rise', spec.rise ?? CHECK_DEFAULTS.rise)
  const fall = positiveInt('fall', spec.fall ?? CHECK_DEFAULTS.fall)
  const timing = { intervalMs, timeoutMs, rise, fall }

  if (kind === 'tcp') {
    addressAndPort(spec)
    return Object.freeze({ kind, address: spec.address, port: spec.port, ...timing })
  }

  let url: URL
  if (spec.url !== undefined) {
    try {
      url = new URL(spec.url)
    } catch {
      bad(`url is not a URL: ${spec.url}`)
    }
    if (url.protocol !== `${kind}:`) bad(`url ${spec.url} does not match kind ${kind}`)
    if (url.username || url.password) bad('url must not carry credentials')
  } else {
    addressAndPort(spec)
    const path = spec.path ?? CHECK_DEFAULTS.path
    if (!path.startsWith('/')) bad(`path must start with /, got ${path}`)
    url = new URL(`${kind}://${formatAddress(spec.address, spec.port)}${path}`)
  }
  url.hash = ''
  const method = spec.method ?? CHECK_DEFAULTS.method
  if (method !== 'GET' && method !== 'HEAD') bad(`method must be GET or HEAD, got ${String(method)}`)
  const expect = [...new Set(spec.expect ?? CHECK_DEFAULTS.expect)].sort((a, b) => a - b)
  if (expect.length === 0 || expect.some((c) => !Number.isInteger(c) || c < 100 || c > 599)) bad(`expect must list status codes 100..599, got ${JSON.stringify(spec.expect)}`)
  if (spec.body !== undefined && method === 'HEAD') bad('a body substring cannot be checked with HEAD')
  const port = url.port ? Number(url.port) : kind === 'https' ? 443 : 80
  const out: ResolvedSpec = {
    kind,
    address: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port,
    url: url.href,
    ...(spec.host !== undefined ? { host: spec.host } : {}),
    method,
    expect: Object.freeze(expect),
    ...(spec.body !== undefined ? { body: spec.body } : {}),
    ...(kind === 'https' && spec.servername !== undefined ? { servername: spec.servername } : {}),
    ...(kind === 'https' ? { verify: spec.verify ?? CHECK_DEFAULTS.verify } : {}),
    ...timing,
  }
  return Object.freeze(out)
}

/** JSON with object keys sorted, so that key order never changes the text. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`
  if (v && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`).join(',')}}`
  }
  return JSON.stringify(v)
}

/**
 * A stable key for a spec: two specs that check the same thing the same way (after defaults,
 * whatever their key order) get the same key, and so share one schedule whatever the number of
 * users. Readable prefix for logs, then a hash of everything else:
 * `http://127.0.1.1:8080/healthz#3f2a9c1d`, `tcp://127.0.1.1:443#77b0e2aa`.
 */
export function checkKey(spec: CheckSpec | ResolvedSpec): string {
  return resolvedKey(resolveSpec(spec as CheckSpec))
}

/** What a check asks: its URL, or `tcp://ADDRESS:PORT`. */
export function probeUrl(r: ResolvedSpec): string {
  return r.url ?? `tcp://${formatAddress(r.address, r.port)}`
}

/** What a check probes, whatever its path and settings: `http://192.0.2.1` (default port dropped), `tcp://192.0.2.1:443`. */
export function probedOrigin(r: ResolvedSpec): string {
  return r.url ? new URL(r.url).origin : probeUrl(r)
}

/** probedOrigin of the check a key was made for (keys of saved states have no spec beside them). */
export function keyOrigin(key: string): string {
  const where = key.slice(0, key.lastIndexOf('#'))
  return where.startsWith('tcp://') ? where : new URL(where).origin
}

/** checkKey of a spec resolveSpec already returned (without resolving it again). */
export function resolvedKey(r: ResolvedSpec): string {
  const hash = createHash('sha256').update(canonical(r)).digest('hex').slice(0, 8)
  const where = probeUrl(r)
  return `${where}#${hash}`
}
