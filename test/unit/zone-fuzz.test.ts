/**
 * A zone file the schema refuses in part is still walked by the checks beyond the schema (every
 * problem in one go), so those checks must hold whatever the schema let through or refused: here,
 * seeded random damage to the demo zone and the docs' complete example (values replaced by values
 * of other types, keys removed, unknown keys added) must give issues, never an exception.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, test } from 'node:test'
import YAML from 'yaml'
import { buildZone, buildZoneSet } from '../../src/config/load.js'
import { validateZoneDocument } from '../../src/config/validate.js'
import { ConfigError } from '../../src/errors.js'
import { prng } from '../../src/sim/prng.js'
import { docsYaml } from '../helpers/docs.js'
import { ROOT } from '../helpers/server.js'

const serial = () => 1
const JUNK: unknown[] = [
  null, 0, -1, 1.5, 'x', '', 'a.b.', [], [1, 'y'], {}, { a: 1 }, true, '999.1.1.1', 'http://{vip}/', { country: 'ZZ' }, ['eu-west', 'nope'], 'all', 70000,
  // strings where numbers are expected, huge and negative numbers, NaN-like strings
  '300', 'NaN', '-1', '1e400', Infinity, -Infinity, -1e9, 2 ** 53 + 1, 0.000001,
  // names an object has without being given them, and deep nesting
  'toString', ['toString', '__proto__', 'constructor'], { constructor: 1 }, [[[[[[[[[['x']]]]]]]]]], { a: { b: { c: { d: { e: {} } } } } },
]
/** Keys a map may be given instead of its own: digits (a list index to a key path), names an object has already, case and dots. */
const KEYS = ['1', '123', '0', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'WWW', 'a.b', 'Eu-West', 'null', '']

const pick = <T>(list: readonly T[], rnd: () => number): T => list[Math.floor(rnd() * list.length)]!

/** `doc` with about one value in eight replaced, removed, renamed or given an unknown sibling, at every depth. */
function damage(doc: unknown, rnd: () => number): unknown {
  if (doc === null || typeof doc !== 'object') return doc
  const o = doc as Record<string, unknown>
  for (const k of Object.keys(o)) {
    const r = rnd()
    if (r < 0.08) o[k] = pick(JUNK, rnd)
    else if (r < 0.11) delete o[k]
    else if (r < 0.13) o[`${k}x`] = pick(JUNK, rnd)
    else if (r < 0.15 && !Array.isArray(o)) {
      // Renamed (its content damaged too): defineProperty, since `o['__proto__'] = v` sets the prototype.
      const v = o[k]
      delete o[k]
      Object.defineProperty(o, pick(KEYS, rnd), { value: damage(v, rnd), enumerable: true, configurable: true, writable: true })
    } else damage(o[k], rnd)
  }
  return doc
}

describe('damaged zone files', () => {
  test('a value nested thousands deep is one error that says so, not the YAML reader\'s stack overflow', () => {
    for (const deep of [`[${'['.repeat(20_000)}${']'.repeat(20_000)}]`, `\n${Array.from({ length: 1200 }, (_, i) => `${'  '.repeat(i + 2)}a:`).join('\n')} 1`]) {
      const issues = buildZone({ file: 'd.yaml', text: `origin: d.test\nsoa: { mname: ns1, rname: h }\nns: [ns1]\nrecords:\n  ns1: { A: 192.0.2.1 }\n  x: ${deep}\n` }, serial).issues
      assert.deepEqual(
        issues.map((i) => `${i.code} ${i.message}`),
        ['E_ZONE_YAML values nested too deeply to read (the YAML reader ran out of stack here); a zone file needs a few levels'],
      )
    }
  })

  test('two record sets refused by the same schema are both reported (one anyOf no longer takes the other owner\'s error as its branch\'s)', () => {
    const problems = validateZoneDocument({ origin: 'a.test', soa: { mname: 'ns1', rname: 'h' }, ns: ['ns1'], records: { ns1: { A: '192.0.2.1', AAAA: 'all' }, web: { AAAA: {} } } })
    assert.deepEqual(
      problems.map((p) => p.path.join('.')),
      ['records.ns1.AAAA', 'records.web.AAAA'],
    )
  })

  test('an unknown key beside a CNAME is an unknown key, not other data beside the alias', () => {
    const issues = buildZone({ file: 'z.yaml', text: 'origin: a.test\nsoa: { mname: ns1, rname: h }\nns: [ns1]\nrecords:\n  ns1: { A: 192.0.2.1 }\n  www: { CNAME: ns1, CNAMEx: 1 }\n' }, serial).issues
    assert.deepEqual(issues.map((i) => i.message), ['unknown key "CNAMEx" (allowed: ttl, A, AAAA, CNAME, TXT, MX, SRV, CAA)'])
  })

  const head = 'origin: a.test\nsoa: { mname: ns1, rname: h }\nns: [ns1]\nrecords:\n  ns1: { A: 192.0.2.1 }\n'
  const messages = (text: string) => buildZone({ file: 'z.yaml', text }, serial).issues.map((i) => `${i.path} ${i.message}`)

  test('a value refused under a key of digits (owner 123, region 1) is refused, not walked as taken (the key path took "1" for a list index)', () => {
    assert.deepEqual(messages(`${head}  123: { MX: { preference: 1 } }\n`), ['records.123.MX missing required key "exchange"'])
    assert.deepEqual(messages(`${head}regions:\n  1: { location: { lat: 1, lon: 1 }, vips: [bad] }\n`), ['regions.1.vips.0 must be an IPv4 or IPv6 address, got "bad"'])
    // The refused port alone, not also the health check's own complaint about it.
    assert.deepEqual(messages(`${head}regions:\n  1: { location: { lat: 1, lon: 1 }, vips: [192.0.2.9], check: { type: tcp, port: x } }\n`), ['regions.1.check.port must be a port number 1..65535, got "x"'])
  })

  test('a service naming a region an object has without being given it (toString, __proto__, constructor) names an unknown region', () => {
    const text = `${head}regions:\n  eu: { location: { lat: 1, lon: 1 }, vips: [192.0.2.9] }\nservices:\n  www: { regions: [toString, __proto__, constructor] }\n`
    assert.deepEqual(messages(text), ['toString', '__proto__', 'constructor'].map((n, i) => `services.www.regions.${i} unknown region "${n}" (regions of this zone: eu)`))
  })

  test('a key is the name as written: null, 1e3, 1.50 and 0x10 are owners null, 1e3, 1.50 and 0x10, not the apex, 1000, 1.5 and 16', () => {
    const text = `${head}  null: { A: 192.0.2.2 }\n  1e3: { A: 192.0.2.3 }\n  1.50: { A: 192.0.2.4 }\n  0x10: { A: 192.0.2.5 }\n  "007": { A: 192.0.2.6 }\n`
    const { zone, issues } = buildZone({ file: 'z.yaml', text }, serial)
    assert.deepEqual(issues, [])
    const holders = (address: string) => [...zone!.nodes].filter(([, n]) => n.rrsets.get(1)?.some((rr) => rr.address === address)).map(([name]) => name)
    assert.deepEqual(['192.0.2.2', '192.0.2.3', '192.0.2.4', '192.0.2.5', '192.0.2.6'].map(holders), [['null.a.test'], ['1e3.a.test'], ['1.50.a.test'], ['0x10.a.test'], ['007.a.test']])
    // Written twice as the same name is still a duplicate key.
    assert.deepEqual(messages(`${head}  12: { A: 192.0.2.2 }\n  "12": { A: 192.0.2.3 }\n`), [' key "12" appears twice in the same mapping'])
  })

  for (const [what, read] of [
    ['the demo zone', () => readFile(path.join(ROOT, 'zones', 'gslb.example.test.yaml'), 'utf8')],
    ['the docs complete example', () => docsYaml('zones.md', 'Complete example')],
  ] as const) {
    test(`${what}, damaged 600 ways: issues every time, never an exception (alone, and beside a zone nested in it)`, async () => {
      const text = await read()
      const origin = String((YAML.parse(text) as { origin: string }).origin)
      const rnd = prng(20261207)
      let refused = 0
      for (let i = 0; i < 600; i++) {
        const damaged = YAML.stringify(damage(YAML.parse(text), rnd))
        const one = buildZone({ file: 'f.yaml', text: damaged }, serial)
        if (one.issues.length > 0) refused++
        try {
          buildZoneSet([{ file: 'f.yaml', text: damaged }, { file: 'g.yaml', text: damaged.replace(/^origin: .*$/m, `origin: sub.${origin}`) }], serial, 1)
        } catch (err) {
          assert.ok(err instanceof ConfigError, `case ${i}: ${(err as Error).stack}\n${damaged}`)
        }
      }
      // The damage is real: most cases are refused.
      assert.ok(refused > 400, `${refused} of 600 refused`)
    })
  }
})
