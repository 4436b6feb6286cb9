/** `--health-wait`: the DNS sockets open only once every check has a state, or the wait times out. */
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { startPool } from '../../src/sim/index.js'
import { dig } from '../helpers/dig.js'
import { startServer, tempDir } from '../helpers/server.js'

function zone(port: number, deadPort: number, interval = 0.2): string {
  return `origin: wait.test
soa: { mname: ns1, rname: h }
ns: [ns1]
records: { ns1: { A: 127.0.0.1 } }
regions:
  live:
    location: { lat: 51.5, lon: 0 }
    vips: [127.0.0.1]
    check: { url: "http://{vip}:${port}/healthz", interval: ${interval}, timeout: 0.1, rise: 2, fall: 2 }
  dead:
    location: { lat: 51.5, lon: 0 }
    vips: [127.0.0.2]
    check: { type: tcp, port: ${deadPort}, interval: ${interval}, timeout: 0.1, rise: 2, fall: 2 }
services:
  app: { policy: failover, regions: [dead, live] }
`
}

test('with --health-wait the first answer already reflects measured health', async (t) => {
  const pool = await startPool({ region: 'live', vip: '127.0.0.1', healthIntervalMs: 50 })
  t.after(() => pool.close())
  const { dir, cleanup } = await tempDir()
  t.after(cleanup)
  // A port nothing listens on: take a free one from a stopped pool.
  const gone = await startPool({ region: 'gone', vip: '127.0.0.2' })
  const deadPort = gone.port
  await gone.close()
  await writeFile(path.join(dir, 'wait.test.yaml'), zone(pool.port, deadPort))
  const server = await startServer({ zonesDirInPlace: dir, args: ['--health-wait', '10'] })
  t.after(() => server.stop())
  const waited = server.logs.find((l) => l.msg === 'every health check has a state')
  assert.ok(waited, 'the wait ended on states, not on the timeout')
  assert.ok(server.logs.indexOf(waited) < server.logs.findIndex((l) => String(l.msg).startsWith('meridian serving')), 'sockets opened after the wait')
  const r = await dig('127.0.0.1', server.port, 'app.wait.test', 'A', '+norec')
  assert.deepEqual(r.answer.map((a) => a.data), ['127.0.0.1'], 'the dead first-choice region is already out')
})

test('without --health-wait the same zone answers at once, unknown counting as up', async (t) => {
  const { dir, cleanup } = await tempDir()
  t.after(cleanup)
  await writeFile(path.join(dir, 'wait.test.yaml'), zone(9, 9, 30)) // checks so slow that they cannot have a state before the query
  const server = await startServer({ zonesDirInPlace: dir })
  t.after(() => server.stop())
  assert.ok(!server.logs.some((l) => l.msg === 'every health check has a state'))
  const r = await dig('127.0.0.1', server.port, 'app.wait.test', 'A', '+norec')
  assert.deepEqual(r.answer.map((a) => a.data), ['127.0.0.2'], 'failover picks the first region while its check is unknown')
})
