/** The complete example of docs/zones.md, served for real and queried with dig: the docs cannot rot. */
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, test, before, after } from 'node:test'
import { dig } from '../helpers/dig.js'
import { docsYaml } from '../helpers/docs.js'
import { startServer, tempDir, type RunningServer } from '../helpers/server.js'

describe('the complete example in docs/zones.md', () => {
  let server: RunningServer
  let cleanup: () => Promise<void>
  before(async () => {
    const yaml = await docsYaml('zones.md', 'Complete example')
    const t = await tempDir()
    cleanup = t.cleanup
    await writeFile(path.join(t.dir, 'shop.example.com.yaml'), yaml)
    server = await startServer({ zonesDirInPlace: t.dir })
  })
  after(async () => {
    await server?.stop()
    await cleanup?.()
  })
  const q = (...args: string[]) => dig('127.0.0.1', server.port, '+norec', ...args)

  test('answers SOA with AA', async () => {
    const r = await q('shop.example.com', 'SOA')
    assert.equal(r.status, 'NOERROR')
    assert.ok(r.flags.includes('aa'))
    assert.match(r.answer[0]!.data, /^ns1\.shop\.example\.com\. hostmaster\.example\.com\. \d+ 3600 600 1209600 60$/)
  })
  test('answers NS with the in-zone glue', async () => {
    const r = await q('shop.example.com', 'NS')
    assert.deepEqual(r.answer.map((a) => a.data).sort(), ['ns.provider.example.net.', 'ns1.shop.example.com.', 'ns2.shop.example.com.'])
    assert.deepEqual(r.additional.map((a) => `${a.name} ${a.type} ${a.data}`).sort(), [
      'ns1.shop.example.com. A 192.0.2.53',
      'ns1.shop.example.com. AAAA 2001:db8::53',
      'ns2.shop.example.com. A 198.51.100.53',
    ])
  })
  test('answers MX with the exchanges addresses', async () => {
    const r = await q('shop.example.com', 'MX')
    assert.deepEqual(r.answer.map((a) => a.data).sort(), ['10 mx1.shop.example.com.', '20 mx2.shop.example.com.'])
    assert.equal(r.additional.length, 2)
  })
  test('answers TXT with single- and multi-string records, and CAA', async () => {
    const txt = await q('shop.example.com', 'TXT')
    assert.deepEqual(txt.answer.map((a) => a.data).sort(), ['"first string" "second string"', '"v=spf1 mx -all"'])
    const caa = await q('shop.example.com', 'CAA')
    assert.deepEqual(caa.answer.map((a) => a.data).sort(), ['0 issue "letsencrypt.org"', '128 iodef "mailto:security@example.com"'])
  })
  test('follows the CNAME and keeps the per-owner TTL', async () => {
    const r = await q('docs.shop.example.com', 'A')
    assert.deepEqual(r.answer.map((a) => `${a.type} ${a.ttl} ${a.data}`), ['CNAME 300 static.shop.example.com.', 'A 60 192.0.2.80', 'A 60 192.0.2.81'])
  })
  test('answers SRV', async () => {
    const r = await q('_https._tcp.shop.example.com', 'SRV')
    assert.deepEqual(r.answer.map((a) => a.data), ['0 5 443 static.shop.example.com.'])
  })
  test('gives NODATA for the empty non-terminal and NXDOMAIN with a 60 s SOA for a missing name', async () => {
    const ent = await q('_tcp.shop.example.com', 'A')
    assert.equal(ent.status, 'NOERROR')
    assert.equal(ent.answer.length, 0)
    assert.equal(ent.authority[0]?.type, 'SOA')
    const nx = await q('nope.shop.example.com', 'A')
    assert.equal(nx.status, 'NXDOMAIN')
    assert.equal(nx.authority[0]?.ttl, 60)
  })
})
