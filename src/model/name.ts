/**
 * Domain-name helpers. Inside Meridian a name is its canonical text form: ASCII letters lowercased,
 * no trailing dot, the root as ''. Labels holding a '.' or '\' are escaped with '\' so that the
 * text form never confuses two different wire names (such names can never match a zone entry).
 */
import { domainToASCII } from 'node:url'

/** Lowercase A-Z only: DNS case-insensitivity is ASCII-only (RFC 4343). */
export function asciiLower(s: string): string {
  let out = ''
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    out += c >= 65 && c <= 90 ? String.fromCharCode(c + 32) : s[i]
  }
  return out
}

/** Canonical form of a name written by a person in a zone file (already absolute). */
export function canonical(name: string): string {
  let n = asciiLower(name.trim())
  if (n.endsWith('.')) n = n.slice(0, -1)
  return n
}

/**
 * Resolve a name from a zone file against the origin: '@' is the origin, a name ending in '.'
 * is absolute, anything else is relative to the origin (as in RFC 1035 master files).
 */
export function resolveName(name: string, origin: string): string {
  const n = name.trim()
  if (n === '@' || n === '') return origin
  if (n.endsWith('.')) return canonical(n)
  const rel = canonical(n)
  return origin === '' ? rel : `${rel}.${origin}`
}

/** True when `name` is `zone` or below it (both canonical). */
export function isInZone(name: string, zone: string): boolean {
  if (zone === '') return true
  return name === zone || name.endsWith('.' + zone)
}

/** Every proper ancestor of `name` down to and including `origin`, nearest first. */
export function ancestorsWithin(name: string, origin: string): string[] {
  const out: string[] = []
  let n = name
  while (n !== origin) {
    const dot = n.indexOf('.')
    if (dot < 0) break
    n = n.slice(dot + 1)
    out.push(n)
  }
  return out
}

/** A label: letters (lowercase, as names are stored), digits, `-` and `_`, not starting or ending with `-` (RFC 952/1123 host names; `_` for service labels such as `_dmarc`, RFC 8552). */
const LABEL_RE = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/

/** Checks a canonical name's syntax; returns the reason it is bad, or null. */
export function nameProblem(name: string): string | null {
  if (name.length > 253) return `name is ${name.length} characters long; at most 253 fit in 255 wire octets`
  if (name === '') return null
  for (const label of name.split('.')) {
    if (label.length === 0) return 'name has an empty label (two dots in a row)'
    if (label.length > 63) return `label "${label}" is ${label.length} characters long; at most 63 are allowed`
    if (label.includes('*')) return `label "${label}": wildcards are not supported (docs/dns.md); name each owner`
    if (!LABEL_RE.test(label)) {
      const rule = `label "${label}" may hold only letters, digits, '-' and '_' and may not start or end with '-'`
      // An internationalized name is written in its ASCII form (RFC 5890), as it is on the wire.
      // eslint-disable-next-line no-control-regex
      const ascii = /[^\x00-\x7f]/.test(label) ? domainToASCII(label) : ''
      return ascii && LABEL_RE.test(ascii) ? `${rule}; an internationalized label is written in its ASCII form: "${ascii}"` : rule
    }
  }
  return null
}
