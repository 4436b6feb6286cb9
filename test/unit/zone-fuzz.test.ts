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
const JUNK: unknown[] = [null, 0, -1, 1.5, 'x', '', 'a.b.', [], [1, 'y'], {}, { a: 1 }, true, '999.1.1.1', 'http://{vip}/', { country: 'ZZ' }, ['eu-west', 'nope'], 'all', 70000]

/** `doc` with about one value in eight replaced, removed or given an unknown sibling, at every depth. */
function damage(doc: unknown, rnd: () => number): unknown {
  if (doc === null || typeof doc !== 'object') return doc
  const o = doc as Record<string, unknown>
  for (const k of Object.keys(o)) {
    const r = rnd()
    if (r < 0.08) o[k] = JUNK[Math.floor(rnd() * JUNK.length)]
    else if (r < 0.11) delete o[k]
    else if (r < 0.13) o[`${k}x`] = JUNK[Math.floor(rnd() * JUNK.length)]
    else damage(o[k], rnd)
  }
  return doc
}

describe('damaged zone files', () => {
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
