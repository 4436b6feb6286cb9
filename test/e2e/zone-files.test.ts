/**
 * Zone files as an operator edits them under a running server: files that cannot be read, files
 * replaced by editors and deployment tools, and what the server says and keeps serving meanwhile.
 */
import assert from 'node:assert/strict'
import { mkdir, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, test } from 'node:test'
import { runCli, tempDir, type LogLine } from '../helpers/server.js'
import { dig } from '../helpers/dig.js'
import { serveInPlace as serve, smallZone as zone } from '../helpers/zones.js'

const reloadErrors = async (url: string) => Number(/meridian_config_reloads_total\{result="error"\} (\d+)/.exec(await (await fetch(`${url}/metrics`)).text())?.[1])

describe('zone files that cannot be read', () => {
  test('a dangling or looping symbolic link named like a zone file: the reload is rejected with the file and why, logged and counted; the last good set keeps serving', async (t) => {
    const { dir, cleanup } = await tempDir()
    t.after(cleanup)
    await writeFile(path.join(dir, 'a.test.yaml'), zone('a.test'))
    const { server, url } = await serve(t, dir)
    const rejected = (l: LogLine) => l.msg === 'zone reload rejected; the last good set keeps serving'

    const link = path.join(dir, 'b.test.yaml')
    await symlink(path.join(dir, 'checkout', 'b.test.yaml'), link)
    const first = await server.waitForLog(rejected)
    assert.equal(first.code, 'E_ZONE_IO')
    assert.deepEqual(first.errors, [`${link}: cannot read the zone file: it is a symbolic link to ${path.join(dir, 'checkout', 'b.test.yaml')}, which does not exist`])
    assert.equal(await reloadErrors(url), 1)
    assert.equal((await dig('127.0.0.1', server.port, 'www.a.test', 'A')).answer[0]?.data, '192.0.2.10')

    // Counted from here: a second rejection of the dangling link (the watcher reloading twice) is not this one.
    const from = server.logs.length
    await unlink(link)
    const loop = path.join(dir, 'c.test.yaml')
    await symlink('c.test.yaml', loop)
    const second = await server.waitForLog(rejected, undefined, from)
    assert.deepEqual(second.errors, [`${loop}: cannot read the zone file: it is a symbolic link to ${loop}, which loops`])
    assert.equal((await dig('127.0.0.1', server.port, 'www.a.test', 'A')).answer[0]?.data, '192.0.2.10')

    // POST /v1/reload says the same, not an internal error: the operator's file to fix, a 400 naming it.
    const r = await fetch(`${url}/v1/reload`, { method: 'POST', headers: { authorization: 'Bearer t0ken' } })
    const body = (await r.json()) as { error: string; message: string }
    assert.equal(r.status, 400, JSON.stringify(body))
    assert.equal(body.error, 'E_ZONE_IO', JSON.stringify(body))
    assert.match(body.message, /c\.test\.yaml: cannot read the zone file: it is a symbolic link to .*c\.test\.yaml, which loops/)

    // meridian check lists the file and exits 1 (not 2, an unexpected failure).
    const c = await runCli(['check', '--zones', dir])
    assert.equal(c.code, 1, c.stderr)
    assert.ok(c.stderr.includes(`${loop}: cannot read the zone file: it is a symbolic link to ${loop}, which loops\n`), c.stderr)
  })

  test('a directory named like a zone file is no zone file: skipped, with a warning naming it at each reload (admin-unreadable.test.ts for the API)', async (t) => {
    const { dir, cleanup } = await tempDir()
    t.after(cleanup)
    await writeFile(path.join(dir, 'a.test.yaml'), zone('a.test'))
    const { server } = await serve(t, dir)
    const from = server.logs.length
    await mkdir(path.join(dir, 'c.test.yaml'))
    const warned = await server.waitForLog((l) => l.msg.startsWith('directories named like zone files'), undefined, from)
    assert.deepEqual(warned.directories, [path.join(dir, 'c.test.yaml')])
    assert.equal(server.logs.slice(from).filter((l) => l.msg === 'zone reload rejected; the last good set keeps serving').length, 0)
    assert.equal((await dig('127.0.0.1', server.port, 'www.a.test', 'A')).answer[0]?.data, '192.0.2.10')
    // meridian check reads the other files, and finds them valid.
    const c = await runCli(['check', '--zones', dir])
    assert.equal(c.code, 0, c.stderr)
  })
})

describe('the watch follows how zone files are deployed', () => {
  const loaded = (server: { logs: LogLine[] }, n: number) => (l: LogLine) => l.msg === 'zones loaded' && server.logs.filter((x) => x.msg === 'zones loaded').length >= n
  const www = async (port: number, origin = 'a.test') => (await dig('127.0.0.1', port, `www.${origin}`, 'A')).answer[0]?.data

  test('a Kubernetes ConfigMap volume: the ..data link swapped to a new directory is a change', async (t) => {
    const { dir, cleanup } = await tempDir()
    t.after(cleanup)
    // The kubelet's layout: a.test.yaml -> ..data/a.test.yaml, ..data -> ..2026_01; an update writes
    // ..2026_02, points ..data_tmp at it, renames ..data_tmp over ..data and removes ..2026_01.
    await mkdir(path.join(dir, '..2026_01'))
    await writeFile(path.join(dir, '..2026_01', 'a.test.yaml'), zone('a.test'))
    await symlink('..2026_01', path.join(dir, '..data'))
    await symlink('..data/a.test.yaml', path.join(dir, 'a.test.yaml'))
    const { server } = await serve(t, dir)
    assert.equal(await www(server.port), '192.0.2.10')
    await mkdir(path.join(dir, '..2026_02'))
    await writeFile(path.join(dir, '..2026_02', 'a.test.yaml'), zone('a.test', '192.0.2.20'))
    await symlink('..2026_02', path.join(dir, '..data_tmp'))
    await rename(path.join(dir, '..data_tmp'), path.join(dir, '..data'))
    await rm(path.join(dir, '..2026_01'), { recursive: true })
    await server.waitForLog(loaded(server, 2))
    assert.equal(await www(server.port), '192.0.2.20')
  })

  test('a zone file linked from a configuration checkout elsewhere: editing it there is a change', async (t) => {
    const { dir: root, cleanup } = await tempDir()
    t.after(cleanup)
    const [zones, checkout] = [path.join(root, 'zones'), path.join(root, 'checkout')]
    await Promise.all([mkdir(zones), mkdir(checkout)])
    await writeFile(path.join(checkout, 'a.test.yaml'), zone('a.test'))
    await symlink(path.join(checkout, 'a.test.yaml'), path.join(zones, 'a.test.yaml'))
    const { server } = await serve(t, zones)
    // As git checks a file out: written beside it, renamed over it.
    await writeFile(path.join(checkout, 'a.test.yaml.lock'), zone('a.test', '192.0.2.30'))
    await rename(path.join(checkout, 'a.test.yaml.lock'), path.join(checkout, 'a.test.yaml'))
    await server.waitForLog(loaded(server, 2))
    assert.equal(await www(server.port), '192.0.2.30')
    // And again: the watch follows the file past the rename.
    await writeFile(path.join(checkout, 'a.test.yaml'), zone('a.test', '192.0.2.31'))
    await server.waitForLog(loaded(server, 3))
    assert.equal(await www(server.port), '192.0.2.31')
  })

  test('the zones directory replaced by another (renamed over it): later edits are still picked up', async (t) => {
    const { dir: root, cleanup } = await tempDir()
    t.after(cleanup)
    const zones = path.join(root, 'zones')
    await mkdir(zones)
    await writeFile(path.join(zones, 'a.test.yaml'), zone('a.test'))
    const { server } = await serve(t, zones)
    // A deployment: the new tree written beside the old, then renamed into place.
    await mkdir(path.join(root, 'zones.new'))
    await writeFile(path.join(root, 'zones.new', 'a.test.yaml'), zone('a.test', '192.0.2.40'))
    await rename(zones, path.join(root, 'zones.old'))
    await rename(path.join(root, 'zones.new'), zones)
    await server.waitForLog(loaded(server, 2))
    assert.equal(await www(server.port), '192.0.2.40')
    await writeFile(path.join(zones, 'a.test.yaml'), zone('a.test', '192.0.2.41'))
    await server.waitForLog(loaded(server, 3))
    assert.equal(await www(server.port), '192.0.2.41')
  })
})
