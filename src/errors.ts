/**
 * Every error Meridian raises on purpose carries a stable code from this table.
 * The table is mirrored in docs/errors.md; test/unit/errors.test.ts keeps the two in step.
 */
export const ERROR_CODES = {
  E_ZONE_YAML: 'a zone file is not valid YAML',
  E_ZONE_SCHEMA: 'a zone file does not match the zone schema',
  E_ZONE_SEMANTIC: 'a zone file is well-formed but inconsistent (CNAME beside other data, missing glue, name outside the zone)',
  E_ZONE_DUPLICATE: 'two zone files declare the same origin',
  E_ZONE_IO: 'a zone file or the zones directory cannot be read',
  E_ZONE_BUSY: 'a zone file has been held open for writing by another process for longer than a reload or an admin write waits (retry)',
  E_STATE_IO: 'a state file beside the zones cannot be read or written',
  E_GEODB: 'the GeoIP database is missing, unreadable or not a MaxMind DB with country data',
  E_CLI_USAGE: 'a command-line option is invalid',
  E_LISTEN: 'a listen address cannot be bound',
  E_ZONE_WRITE: 'a zone file cannot be written, or a deleted zone\'s file moved (admin API)',
  E_ZONE_NOT_DURABLE: 'a zone file was replaced and the change is served, but its directory could not be synced (it may not survive a crash)',
  E_ZONE_READ_ONLY: 'a zone file is read-only (no write permission bit), so the admin API does not change it',
  E_ADMIN_TOKEN: 'the admin API token is missing or unreadable where one is required',
  E_API_AUTH: 'an admin API request lacks the bearer token, or carries a wrong one',
  E_API_HOST: 'an admin API request on a loopback address names a host other than an IP address or localhost (DNS rebinding)',
  E_API_BODY: 'an admin API request body or parameter is malformed (not JSON, not an object, a bad query parameter)',
  E_API_NOT_FOUND: 'an admin API request names a zone, region, service or path that does not exist',
  E_API_METHOD: 'an admin API request uses a method its path does not take',
  E_API_CONFLICT: 'an admin API change conflicts with the configuration (exists already, still referenced)',
  E_API_PRECONDITION: 'an admin API change carried an If-Match that is not the zone\'s current ETag',
  E_API_TOO_LARGE: 'an admin API request body is larger than the limit',
  E_API_MEDIA_TYPE: 'an admin API request body is not JSON',
  E_API_INTERNAL: 'the admin API failed unexpectedly (the details are in the server log)',
} as const

export type ErrorCode = keyof typeof ERROR_CODES

export class MeridianError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly status = 500,
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'MeridianError'
  }
}

/** One problem found in a zone file, positioned for a person: `file:line:col: path: reason`. */
export interface ConfigIssue {
  code: ErrorCode
  file: string
  line: number
  col: number
  /** Key path inside the file, dotted (`records.www.A.0`); empty for the whole document. */
  path: string
  message: string
  /**
   * E_ZONE_IO only: the file cannot be read for what it is on disk (a symbolic link that dangles,
   * loops or names a directory), the operator's to fix as a YAML error is; absent for a failure to
   * read (EACCES, EIO).
   */
  content?: true
}

export function formatIssue(i: ConfigIssue): string {
  // Line 0: about the file (or directory) as a whole, not a place in it.
  const where = i.line > 0 ? `${i.file}:${i.line}:${i.col}` : i.file
  return i.path ? `${where}: ${i.path}: ${i.message}` : `${where}: ${i.message}`
}

/** Raised when a set of zone files is rejected; carries every issue found, not just the first. */
export class ConfigError extends MeridianError {
  constructor(readonly issues: ConfigIssue[]) {
    super(issues[0]?.code ?? 'E_ZONE_SCHEMA', `${issues.length} error(s) in zone files:\n` + issues.map(formatIssue).join('\n'), 400)
    this.name = 'ConfigError'
  }
}
