/**
 * Admin API authentication: one bearer token (MERIDIAN_ADMIN_TOKEN or --admin-token-file),
 * compared in constant time. Both sides are hashed first, so neither the comparison's time nor an
 * early length check says anything about the token.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { BlockList, isIPv4, isIPv6 } from 'node:net'
import { MeridianError } from '../errors.js'

const LOOPBACK = new BlockList()
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4')
LOOPBACK.addAddress('::1', 'ipv6')
LOOPBACK.addSubnet('::ffff:127.0.0.0', 104, 'ipv6')

/** 127.0.0.0/8, ::1 and ::ffff:127.x.y.z: addresses only this host can reach. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '')
  if (isIPv4(h)) return LOOPBACK.check(h, 'ipv4')
  if (isIPv6(h)) return LOOPBACK.check(h, 'ipv6')
  return false
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest()

/** Why an Authorization header is refused: absent, not `Bearer <one word>`, or a wrong token. */
export type BearerProblem = 'missing' | 'empty' | 'no-scheme' | 'other-scheme' | 'no-token' | 'not-one-word' | 'wrong'

/**
 * What is wrong with an Authorization header for `token`, or null when it carries `Bearer <token>`.
 * The token is compared (in constant time) whatever the header's shape, so that every header takes
 * the same path through the comparison; the shape itself is the client's own (nothing of the token).
 */
export function bearerProblem(header: string | undefined, token: string): BearerProblem | null {
  const m = header === undefined ? null : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)
  const given = m ? m[1]! : ''
  // Compare even when nothing was given, so that a missing header takes the same path.
  const same = timingSafeEqual(digest(given), digest(token))
  if (m !== null) return same ? null : 'wrong'
  if (header === undefined) return 'missing'
  const h = header.trim()
  if (h === '') return 'empty'
  if (/^Bearer$/i.test(h)) return 'no-token'
  if (/^Bearer[ \t]/i.test(h)) return 'not-one-word'
  // One word: a token (or anything) sent without its scheme. Several: another scheme (Basic...).
  return /[ \t]/.test(h) ? 'other-scheme' : 'no-scheme'
}

/** True when the Authorization header carries `Bearer <token>`. */
export const bearerMatches = (header: string | undefined, token: string): boolean => bearerProblem(header, token) === null

/**
 * What a 401 says about a header's problem; nothing of the header is repeated (a token sent without
 * its scheme would be echoed, into the client's logs). `what`: what needs the token.
 */
export function bearerMessage(problem: BearerProblem, what: string): string {
  switch (problem) {
    case 'missing':
      return `${what} needs Authorization: Bearer TOKEN`
    case 'no-scheme':
      return 'the Authorization header must be "Bearer TOKEN": the Bearer scheme is missing'
    case 'empty':
      return 'the Authorization header is empty; it must be "Bearer TOKEN"'
    case 'other-scheme':
      return 'the Authorization header must be "Bearer TOKEN": only the Bearer scheme is accepted'
    case 'no-token':
      return 'the Authorization header must be "Bearer TOKEN": the token after Bearer is missing'
    case 'not-one-word':
      return 'the Authorization header must be "Bearer TOKEN": the token is one word, with nothing after it'
    case 'wrong':
      return 'wrong bearer token'
  }
}

/**
 * The configured token: the file's content (trimmed) when `file` is given, else the environment's
 * MERIDIAN_ADMIN_TOKEN, else undefined. An unreadable or empty file is an error (E_ADMIN_TOKEN).
 */
export async function loadAdminToken(file: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  if (file !== undefined) {
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (err) {
      throw new MeridianError('E_ADMIN_TOKEN', `cannot read --admin-token-file ${file}: ${(err as Error).message}`)
    }
    const token = text.trim()
    if (token === '') throw new MeridianError('E_ADMIN_TOKEN', `--admin-token-file ${file} is empty`)
    if (/\s/.test(token)) throw new MeridianError('E_ADMIN_TOKEN', `--admin-token-file ${file} holds whitespace inside the token; a bearer token is one word`)
    return token
  }
  const fromEnv = env.MERIDIAN_ADMIN_TOKEN?.trim()
  if (fromEnv === undefined || fromEnv === '') return undefined
  if (/\s/.test(fromEnv)) throw new MeridianError('E_ADMIN_TOKEN', 'MERIDIAN_ADMIN_TOKEN holds whitespace inside the token; a bearer token is one word')
  return fromEnv
}
