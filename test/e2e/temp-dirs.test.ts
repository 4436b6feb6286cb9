/**
 * The test helpers' temporary directories: removing one stops the servers still running in it
 * first, whatever order a test added its after hooks in. A server stopped after its zones directory
 * was removed wrote `.meridian/health.json` into it again while stopping, re-creating it: hundreds
 * of /tmp/meridian-test-* built up.
 */
import assert from 'node:assert/strict'
import { stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { dig } from '../helpers/dig.js'
import { startServer, tempDir, type RunningServer } from '../helpers/server.js'
import { serveInPlace, smallZone } from '../helpers/zones.js'

test('a directory removed by an after hook added before the server it holds stays removed: the server is stopped first', async (t) => {
  const seen: { dir?: string; server?: RunningServer } = {}
  // As the zone-file tests write it: the directory's cleanup first, then the server's stop.
  await t.test('a test serving a directory in place', async (t) => {
    const { dir, cleanup } = await tempDir()
    t.after(cleanup)
    await writeFile(path.join(dir, 'tmp.test.yaml'), smallZone('tmp.test'))
    const { server } = await serveInPlace(t, dir)
    Object.assign(seen, { dir, server })
    const r = await dig('127.0.0.1', server.port, 'www.tmp.test', 'A')
    assert.deepEqual(r.answer.map((a) => a.data), ['192.0.2.10'])
  })
  const { proc } = seen.server!
  assert.ok(proc.exitCode !== null || proc.signalCode !== null, 'the server has stopped')
  await assert.rejects(stat(seen.dir!), { code: 'ENOENT' }, 'nothing re-created the directory (its .meridian/health.json)')
})

test('a server on a copy of the zones removes its copy when stopped, and a removal of a directory a server runs in waits for its exit', async (t) => {
  const server = await startServer()
  t.after(() => server.stop())
  await stat(path.join(server.zonesDir, '.meridian'))
  assert.equal(await server.stop(), 0)
  await assert.rejects(stat(server.zonesDir), { code: 'ENOENT' })

  const { dir, cleanup } = await tempDir()
  await writeFile(path.join(dir, 'tmp.test.yaml'), smallZone('tmp.test'))
  const running = await startServer({ zonesDirInPlace: dir })
  t.after(() => running.stop()) // (a second stop is harmless)
  t.after(cleanup)
  await cleanup()
  assert.ok(running.proc.exitCode !== null || running.proc.signalCode !== null, 'stopped by the removal')
  await assert.rejects(stat(dir), { code: 'ENOENT' })
  assert.equal(await running.stop(), 0, 'its own stop afterwards is harmless: the exit code of the stop it had')
})
