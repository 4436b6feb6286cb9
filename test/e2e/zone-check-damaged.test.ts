/**
 * `meridian check` on zone files whose refused values sit under keys of digits or name regions an
 * object has without being given them: every error printed at its line, exit 1, never a stack
 * trace (the checks beyond the schema used to walk such a refused value as taken: a TypeError).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { checkZoneText } from '../helpers/zones.js'

const DAMAGED = `origin: a.test
soa: { mname: ns1, rname: hostmaster }
ns: [ns1]
records:
  ns1: { A: 192.0.2.53 }
  123: { MX: { preference: 1 } }
regions:
  1: { location: { lat: 1, lon: 1 }, vips: [bad] }
services:
  www: { regions: [toString] }
`

test('meridian check prints the errors of a file refused under keys of digits, and exits 1 without a stack trace', async (t) => {
  const r = await checkZoneText(t, DAMAGED)
  const file = r.file
  assert.equal(r.code, 1, r.stderr)
  assert.doesNotMatch(r.stderr, /TypeError|\n\s+at /)
  assert.deepEqual(r.stderr.trim().split('\n'), [
    `${file}:6:14: records.123.MX: missing required key "exchange"`,
    `${file}:8:45: regions.1.vips.0: must be an IPv4 or IPv6 address, got "bad"`,
    `${file}:10:20: services.www.regions.0: unknown region "toString" (regions of this zone: 1)`,
    '3 error(s); nothing would be served from these files',
  ])
})
