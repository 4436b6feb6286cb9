/**
 * The RFC conformance fixture (test/fixtures/rfc): its zone files read as the tests expect them,
 * and the IPv6 port of a server started on it. Shared by dns-rfc.test.ts (the rules of an
 * authoritative server) and rfc8906.test.ts (RFC 8906 §8, test by test).
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import YAML from 'yaml'
import { ROOT, type RunningServer } from './server.js'

export const RFC_FIXTURES = path.join(ROOT, 'test', 'fixtures', 'rfc')

export interface FixtureZone {
  origin: string
  ttl: number
  soa: { mname: string; rname: string; serial: number; refresh: number; retry: number; expire: number; minimum: number; ttl?: number }
  ns: string[]
  records: Record<string, Record<string, unknown> & { ttl?: number }>
}

/** A zone file of the fixture (`rfc.test.yaml`), parsed. */
export const readFixtureZone = (file: string): FixtureZone => YAML.parse(readFileSync(path.join(RFC_FIXTURES, file), 'utf8')) as FixtureZone

/** `name` of the zone `origin` made absolute (`@` is the origin, a name ending in a dot is kept). */
export const absName = (name: string, origin: string): string => (name === '@' ? `${origin}.` : name.endsWith('.') ? name : `${name}.${origin}.`)

/** The zone's SOA RDATA as dig prints it (`ns1.rfc.test. hostmaster.rfc.test. 2024010101 3600 ...`). */
export const soaData = (z: FixtureZone): string => `${absName(z.soa.mname, z.origin)} ${z.soa.rname} ${z.soa.serial} ${z.soa.refresh} ${z.soa.retry} ${z.soa.expire} ${z.soa.minimum}`

/** The port of the server's `[::1]` listener (started with `listen: [..., '[::1]:0']`). */
export function ipv6Port(server: RunningServer): number {
  const v6 = server.listen.find((l) => l.startsWith('udp://[::1]:'))
  assert.ok(v6, `an IPv6 listener: ${server.listen.join(' ')}`)
  return Number(/:(\d+)$/.exec(v6)![1])
}
