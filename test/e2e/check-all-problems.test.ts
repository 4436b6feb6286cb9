/**
 * A zone file with errors of the schema and errors beyond it: `meridian check` lists them all in
 * one go, each at its line, and a running server's reload log and `POST /v1/reload` list the same.
 */
import assert from 'node:assert/strict'
import { rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { runCli, tempDir } from '../helpers/server.js'
import { serveInPlace, smallZone } from '../helpers/zones.js'

const BROKEN = `origin: a.test
soa: { mname: ns1, rname: hostmaster }
ns: [ns1, ns2]
records:
  ns1: { A: 192.0.2.53 }
  "@": { MX: { preference: 10, exchange: mail } }
  ns3: { A: 192.0.2.999 }
regions:
  eu-west:
    location: { country: IE }
    vips: [192.0.2.10]
    check: { type: http, port: 99999 }
services:
  www: { regions: [eu-west, us-east] }
`

/** The problems of BROKEN in `file`, as `check` and the log print them. */
const expected = (file: string) => [
  `${file}:3:11: ns.1: name server ns2.a.test is inside the zone but has no A or AAAA record under records: (glue is required)`,
  `${file}:6:42: records.@.MX.exchange: MX exchange mail.a.test names nothing in the zone: it must name a host with addresses (RFC 5321 §5.1)`,
  `${file}:7:13: records.ns3.A: must be an IPv4 address such as 192.0.2.1, got "192.0.2.999"`,
  `${file}:12:32: regions.eu-west.check.port: must be a port number 1..65535, got 99999`,
  `${file}:14:29: services.www.regions.1: unknown region "us-east" (regions of this zone: eu-west)`,
]

test('meridian check lists a file\'s schema errors and the errors beyond the schema together, each at its line; the reload log and POST /v1/reload list the same', async (t) => {
  const { dir, cleanup } = await tempDir()
  t.after(cleanup)
  const file = path.join(dir, 'a.test.yaml')
  await writeFile(file, BROKEN)
  const c = await runCli(['check', '--zones', dir])
  assert.equal(c.code, 1, c.stderr)
  assert.equal(c.stderr, [...expected(file), '5 error(s); nothing would be served from these files', ''].join('\n'))

  // A server on the good file; the broken one renamed over it.
  await writeFile(file, smallZone('a.test'))
  const { server, url } = await serveInPlace(t, dir)
  await writeFile(path.join(dir, '.a.test.yaml.new'), BROKEN)
  await rename(path.join(dir, '.a.test.yaml.new'), file)
  const rejected = await server.waitForLog((l) => l.msg === 'zone reload rejected; the last good set keeps serving')
  assert.deepEqual(rejected.errors, expected(file))
  assert.equal(rejected.code, 'E_ZONE_SEMANTIC', "the log's code is the first error's")

  const r = await fetch(`${url}/v1/reload`, { method: 'POST', headers: { authorization: 'Bearer t0ken' } })
  assert.equal(r.status, 400)
  const body = (await r.json()) as { error: string; details: { file: string; line: number; col: number; path: string; message: string }[] }
  assert.equal(body.error, 'E_ZONE_SEMANTIC')
  assert.deepEqual(body.details.map((d) => `${d.file}:${d.line}:${d.col}: ${d.path}: ${d.message}`), expected(file))
})
