/** `--health-wait`: the DNS sockets open only once every check has a state, or the wait times out. */
import assert from 'node:assert/strict'
import { rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { startPool } from '../../src/sim/index.js'
import { dig } from '../helpers/dig.js'
import { spawnServer, startServer, tempDir, type RunningServer, type SpawnedServer } from '../helpers/server.js'

/**
 * Checks of 1 s timeouts: the live pool answers from this test process, and with 0.1 s a loaded
 * host could take it down (the answer then goes to the dead region, as all are down). The dead
 * region's port refuses at once: its timeout does not matter.
 */
function zone(port: number, deadPort: number, interval = 1.2): string {
  return `origin: wait.test
soa: { mname: ns1, rname: h }
ns: [ns1]
records: { ns1: { A: 127.0.0.1 } }
regions:
  live:
    location: { lat: 51.5, lon: 0 }
    vips: [127.0.0.1]
    check: { url: "http://{vip}:${port}/healthz", interval: ${interval}, timeout: 1, rise: 2, fall: 2 }
  dead:
    location: { lat: 51.5, lon: 0 }
    vips: [127.0.0.2]
    check: { type: tcp, port: ${deadPort}, interval: ${interval}, timeout: 1, rise: 2, fall: 2 }
services:
  app: { policy: failover, regions: [dead, live] }
`
}

/**
 * Stops the server before its zones directory is removed: a server still running writes its health
 * state there, and removing the directory under it fails (ENOTEMPTY), after which the server was
 * never stopped and the test file hung (node:test runs a test's after hooks in the order they were
 * added).
 */
async function stopThenRemove(server: RunningServer | undefined, cleanup: () => Promise<void>): Promise<void> {
  await server?.stop()
  await cleanup()
}

test('with --health-wait the first answer already reflects measured health', async (t) => {
  // Probing its backends with a 1 s timeout (startPools in helpers/gslb.ts says why).
  const pool = await startPool({ region: 'live', vip: '127.0.0.1', healthIntervalMs: 1000 })
  t.after(() => pool.close())
  const { dir, cleanup } = await tempDir()
  const started: { server?: RunningServer } = {}
  t.after(() => stopThenRemove(started.server, cleanup))
  // A port nothing listens on: take a free one from a stopped pool.
  const gone = await startPool({ region: 'gone', vip: '127.0.0.2' })
  const deadPort = gone.port
  await gone.close()
  await writeFile(path.join(dir, 'wait.test.yaml'), zone(pool.port, deadPort))
  const server = (started.server = await startServer({ zonesDirInPlace: dir, args: ['--health-wait', '25'] }))
  const waited = server.logs.find((l) => l.msg === 'every health check has a state')
  assert.ok(waited, 'the wait ended on states, not on the timeout')
  assert.ok(server.logs.indexOf(waited) < server.logs.findIndex((l) => String(l.msg).startsWith('meridian serving')), 'sockets opened after the wait')
  const r = await dig('127.0.0.1', server.port, 'app.wait.test', 'A', '+norec')
  assert.deepEqual(r.answer.map((a) => a.data), ['127.0.0.1'], 'the dead first-choice region is already out')
})

test('without --health-wait the same zone answers at once, unknown counting as up', async (t) => {
  const { dir, cleanup } = await tempDir()
  const started: { server?: RunningServer } = {}
  t.after(() => stopThenRemove(started.server, cleanup))
  await writeFile(path.join(dir, 'wait.test.yaml'), zone(9, 9, 30)) // checks so slow that they cannot have a state before the query
  const server = (started.server = await startServer({ zonesDirInPlace: dir }))
  assert.ok(!server.logs.some((l) => l.msg === 'every health check has a state'))
  const r = await dig('127.0.0.1', server.port, 'app.wait.test', 'A', '+norec')
  assert.deepEqual(r.answer.map((a) => a.data), ['127.0.0.2'], 'failover picks the first region while its check is unknown')
})

test('a reload during --health-wait that removes the last check without a state ends the wait at once', async (t) => {
  const pool = await startPool({ region: 'live', vip: '127.0.0.1', healthIntervalMs: 1000 })
  t.after(() => pool.close())
  const { dir, cleanup } = await tempDir()
  const spawned: { server?: SpawnedServer } = {}
  t.after(async () => {
    spawned.server?.proc.kill('SIGTERM')
    await spawned.server?.exited
    await cleanup()
  })
  const gone = await startPool({ region: 'gone', vip: '127.0.0.2' })
  const deadPort = gone.port
  await gone.close()
  // The dead region's check every 60 s: it cannot have a state (two rounds) within the wait.
  const slow = zone(pool.port, deadPort).replace(`check: { type: tcp, port: ${deadPort}, interval: 1.2,`, `check: { type: tcp, port: ${deadPort}, interval: 60,`)
  assert.notEqual(slow, zone(pool.port, deadPort))
  const file = path.join(dir, 'wait.test.yaml')
  await writeFile(file, slow)
  const tokenFile = path.join(dir, '..', `${path.basename(dir)}.token`)
  await writeFile(tokenFile, 'health-wait-test-token\n')
  t.after(() => rm(tokenFile, { force: true }))
  const server = (spawned.server = spawnServer(['serve', '--zones', dir, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--admin-token-file', tokenFile, '--workers', '1', '--health-wait', '60']))
  // The live check has its state: the wait is now on the dead region's alone.
  await server.waitForLog((l) => typeof l.msg === 'string' && l.msg.includes('is up'), 30_000)
  assert.ok(!server.logs.some((l) => l.msg === 'every health check has a state'))
  // The operator takes the dead region out and reloads (the admin API is up during the wait; SIGHUP
  // and the file watch take effect once serving).
  await writeFile(file, slow.replace(/ {2}dead:\n(?: {4}.*\n)+/, '').replace('regions: [dead, live]', 'regions: [live]'))
  const admin = String((await server.waitForLog((l) => l.msg === 'admin API listening')).url)
  const reload = await fetch(`${admin}/v1/reload`, { method: 'POST', headers: { authorization: 'Bearer health-wait-test-token' } })
  assert.equal(reload.status, 200, await reload.text())
  const waited = await server.waitForLog((l) => l.msg === 'every health check has a state' || l.msg === 'health wait timed out; unknown checks count as their services say', 20_000)
  assert.equal(waited.msg, 'every health check has a state')
  const serving = await server.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('meridian serving'))
  const port = Number(/:(\d+)$/.exec((serving.listen as string[])[0]!)![1])
  const r = await dig('127.0.0.1', port, 'app.wait.test', 'A', '+norec')
  assert.deepEqual(r.answer.map((a) => a.data), ['127.0.0.1'])
})
