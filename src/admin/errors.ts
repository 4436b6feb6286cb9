/**
 * The admin API's error body, `{ error: CODE, message, details: [{ path, message }] }`, and the
 * mapping from every error a route can meet (ours, the store's, fastify's) to a status and that body.
 * No stack trace ever reaches a response; unexpected errors are logged once, here, and answered 500.
 */
import { ConfigError, formatIssue, MeridianError, type ConfigIssue, type ErrorCode } from '../errors.js'

export interface ErrorDetail {
  /** Key path inside the body or the zone (`check.timeout`, `regions.eu-west.vips.0`); empty for the whole body. */
  path: string
  message: string
  /** For a problem found in another zone file than the one edited (or by a reload): where it is. */
  file?: string
  line?: number
  col?: number
}

export interface ErrorBody {
  error: ErrorCode
  message: string
  details: ErrorDetail[]
}

/** An error with an HTTP status and details, thrown by routes. */
export class ApiError extends MeridianError {
  constructor(
    code: ErrorCode,
    status: number,
    message: string,
    readonly details: ErrorDetail[] = [],
  ) {
    super(code, message, status)
    this.name = 'ApiError'
  }
}

/** `path: message; path: message` — the one-line summary of some details. */
function summarise(details: readonly ErrorDetail[]): string {
  return details
    .map((d) => {
      // An issue of a file (not of the request's own body): said where, as the log and `check` say it.
      const where = d.file === undefined ? '' : `${d.line ? `${d.file}:${d.line}:${d.col}` : d.file}: `
      return where + (d.path ? `${d.path}: ${d.message}` : d.message)
    })
    .join('; ')
}

export const invalid = (details: ErrorDetail[], code: ErrorCode = 'E_ZONE_SCHEMA'): ApiError => new ApiError(code, 400, summarise(details), details)
export const badRequest = (message: string, path = ''): ApiError => new ApiError('E_API_BODY', 400, path ? `${path}: ${message}` : message, [{ path, message }])
export const notFound = (message: string): ApiError => new ApiError('E_API_NOT_FOUND', 404, message)
export const conflict = (message: string, details: ErrorDetail[] = []): ApiError => new ApiError('E_API_CONFLICT', 409, message, details)

/** Details of a rejected set: the key path of each issue; its file and position when it is not the file being edited. */
export function issueDetails(issues: readonly ConfigIssue[], editedFile?: string): ErrorDetail[] {
  const seen = new Set<string>()
  const out: ErrorDetail[] = []
  for (const i of issues) {
    const d: ErrorDetail = i.file === editedFile ? { path: i.path, message: i.message } : { path: i.path, message: i.message, file: i.file, line: i.line, col: i.col }
    // One issue per check per VIP would repeat itself: say it once.
    const id = `${d.file ?? ''}|${d.path}|${d.message}`
    if (seen.has(id)) continue
    seen.add(id)
    out.push(d)
  }
  return out
}

const FASTIFY: Record<string, { status: number; code: ErrorCode; message: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'E_API_TOO_LARGE', message: 'the request body is larger than the limit' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'E_API_MEDIA_TYPE', message: 'the body must be JSON (Content-Type: application/json or application/merge-patch+json)' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'E_API_BODY', message: 'Content-Length does not match the body' },
  FST_ERR_BAD_URL: { status: 400, code: 'E_API_BODY', message: 'the URL is not valid: a path segment is not valid percent-encoding' },
  FST_ERR_MAX_PARAM_LENGTH: { status: 414, code: 'E_API_BODY', message: 'a name in the URL is longer than any zone, region or service name can be' },
}

/**
 * The Retry-After (seconds) of a 503 E_ZONE_BUSY: the request has already waited 2 s for the
 * writer, and the retry waits as long again, so it may come soon.
 */
export const BUSY_RETRY_AFTER_S = 1

/**
 * Status and body for any error; `unexpected` is true when it should be logged as a fault;
 * `retryAfter` (seconds), when the request may simply be sent again later (a 503).
 */
export function toErrorBody(err: unknown, editedFile?: string): { status: number; body: ErrorBody; unexpected: boolean; retryAfter?: number } {
  if (err instanceof ApiError) return { status: err.status, body: { error: err.code, message: err.message, details: err.details }, unexpected: false }
  if (err instanceof ConfigError && err.code === 'E_ZONE_BUSY') {
    // Another process is still writing a zone file: the server is not broken, and the same request
    // succeeds once the writer closes it. Nothing was changed.
    return { status: 503, body: { error: err.code, message: err.issues.map(formatIssue).join('; '), details: [] }, unexpected: false, retryAfter: BUSY_RETRY_AFTER_S }
  }
  if (err instanceof ConfigError && err.issues.some((i) => i.code === 'E_ZONE_IO' && !i.content)) {
    // The zones directory or a zone file cannot be read (EACCES, EIO): not the request's fault, nor
    // the files' as written. (A link that dangles or loops is the operator's to fix, as a YAML error
    // is: a 400 naming it, below.)
    return { status: 500, body: { error: 'E_ZONE_IO', message: err.issues.map(formatIssue).join('; '), details: [] }, unexpected: true }
  }
  if (err instanceof ConfigError) {
    const details = issueDetails(err.issues, editedFile)
    return { status: 400, body: { error: err.code, message: summarise(details), details }, unexpected: false }
  }
  if (err instanceof MeridianError) {
    return { status: err.status, body: { error: err.code, message: err.message, details: [] }, unexpected: err.status >= 500 }
  }
  const e = err as { code?: string; statusCode?: number; message?: string }
  const known = e.code ? FASTIFY[e.code] : undefined
  if (known) {
    // (An empty or malformed JSON body never gets here: the API's own JSON parser says why, app.ts.)
    return { status: known.status, body: { error: known.code, message: known.message, details: [] }, unexpected: false }
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    // Another client error fastify found: its message names no internals.
    return { status: e.statusCode, body: { error: 'E_API_BODY', message: e.message ?? 'bad request', details: [] }, unexpected: false }
  }
  return { status: 500, body: { error: 'E_API_INTERNAL', message: 'internal error; see the server log', details: [] }, unexpected: true }
}
