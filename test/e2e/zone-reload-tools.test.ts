/**
 * Zone files changed the way operators' tools change them, under a running server: what DNS
 * answers meanwhile, what the log says, and what is served once the tool is done.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { appendFile, open, truncate, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, test, type TestContext } from 'node:test'
import { tempDir, type LogLine } from '../helpers/server.js'
import { dig } from '../helpers/dig.js'
import { serveInPlace as serve, smallZone as zone } from '../helpers/zones.js'

const www = async (port: number, origin = 'a.test') => {
  const r = await dig('127.0.0.1', port, `www.${origin}`, 'A')
  return r.answer[0]?.data ?? r.status
}
const count = (logs: LogLine[], msg: string) => logs.filter((l) => l.msg === msg).length

describe('a zone file written in place is not read until its writer closes it', () => {
  // What `cp new.yaml zones/a.test.yaml` (or curl -o, scp, cat >) does, with a pause after a part
  // that is itself a valid zone: one without www.
  const whole = zone('a.test', '192.0.2.20')
  const cut = whole.indexOf('  www:')

  test('the watcher waits for the write to end: the part written is never served, the whole file is', async (t) => {
    const { dir, cleanup } = await tempDir()
    t.after(cleanup)
    const file = path.join(dir, 'a.test.yaml')
    await writeFile(file, zone('a.test'))
    const { server } = await serve(t, dir)
    const fh = await open(file, 'w') // truncates, as cp does
    t.after(() => fh.close().catch(() => undefined))
    await fh.write(whole.slice(0, cut))
    // Either the watcher has looked at the file and waits, or (as before) it loaded the part.
    const seen = await server.waitForLog((l) => l.msg === 'zone file is being written; it is read once no process holds it open for writing' || (l.msg === 'zones loaded' && count(server.logs, 'zones loaded') >= 2))
    assert.equal(seen.msg, 'zone file is being written; it is read once no process holds it open for writing', 'the half-written file was loaded')
    assert.equal(seen.file, file)
    assert.match(String(seen.writers), new RegExp(`^process ${process.pid} \\(`))
    assert.equal(await www(server.port), '192.0.2.10', 'the last whole file keeps serving')
    await fh.write(whole.slice(cut))
    await fh.close()
    await server.waitForLog((l) => l.msg === 'zones loaded' && count(server.logs, 'zones loaded') >= 2)
    assert.equal(await www(server.port), '192.0.2.20')
    assert.equal(count(server.logs, 'zones loaded'), 2, 'one reload: the whole file')
  })

  /**
   * A server (not watching) on a.test, whose file is then opened as `cp` opens it and written up to
   * `cut` by this process, then held open for writing by another one (a `sleep` given the descriptor
   * as its stdout) while this one closes it: the writer is that process alone. `finish()` writes the
   * rest (opening the file for appending, as a last write of the same copy would) and ends the holder.
   */
  async function midWrite(t: TestContext) {
    const { dir, cleanup } = await tempDir()
    t.after(cleanup)
    const file = path.join(dir, 'a.test.yaml')
    await writeFile(file, zone('a.test'))
    const { server, url } = await serve(t, dir, ['--no-watch'])
    const fh = await open(file, 'w')
    await fh.write(whole.slice(0, cut))
    const holder = spawn('sleep', ['600'], { stdio: ['ignore', fh.fd, 'ignore'] })
    const exited = once(holder, 'exit')
    t.after(() => holder.kill('SIGKILL'))
    await once(holder, 'spawn')
    await fh.close()
    const finish = async () => {
      await appendFile(file, whole.slice(cut))
      holder.kill('SIGKILL')
      await exited
    }
    return { file, server, url, holder, finish }
  }

  test('POST /v1/reload waits for the writer up to 2 s, then is a 503 E_ZONE_BUSY with Retry-After, naming the file and the process; nothing changes', async (t) => {
    const { file, server, url, holder, finish } = await midWrite(t)
    const r = await fetch(`${url}/v1/reload`, { method: 'POST', headers: { authorization: 'Bearer t0ken' } })
    const body = (await r.json()) as { error: string; message: string }
    assert.equal(r.status, 503, JSON.stringify(body))
    assert.equal(r.headers.get('retry-after'), '1')
    assert.equal(body.error, 'E_ZONE_BUSY')
    assert.equal(body.message, `${file}: cannot read the zone file: it has been open for writing by process ${holder.pid} (sleep) for more than 2 s, and a zone file is not read while it is being written (the watcher reloads it when the write ends)`)
    assert.equal(await www(server.port), '192.0.2.10')
    // SIGHUP waits as long and logs the same refusal (a signal has no one to answer).
    server.proc.kill('SIGHUP')
    const logged = await server.waitForLog((l) => l.msg === 'zone reload rejected; the last good set keeps serving' && l.reason === 'SIGHUP')
    assert.equal(logged.code, 'E_ZONE_BUSY')
    assert.deepEqual(logged.errors, [body.message])
    assert.equal(await www(server.port), '192.0.2.10')
    // The write ends while a reload waits (as a client retrying after Retry-After would): it takes the whole file.
    const reloading = fetch(`${url}/v1/reload`, { method: 'POST', headers: { authorization: 'Bearer t0ken' } })
    await finish()
    assert.equal((await reloading).status, 200)
    assert.equal(await www(server.port), '192.0.2.20')
  })

  test('an admin write waits for the writer of another zone file too: a 503 E_ZONE_BUSY with Retry-After, and it never publishes the part written', async (t) => {
    const { server, url, holder, finish } = await midWrite(t)
    // A new zone is made from the files on disk and its own: a.test's part (no www) must not come with it.
    const create = () =>
      fetch(`${url}/v1/zones`, {
        method: 'POST',
        headers: { authorization: 'Bearer t0ken', 'content-type': 'application/json' },
        body: JSON.stringify({ origin: 'b.test', soa: { mname: 'ns1', rname: 'hostmaster' }, ns: ['ns1'], records: { ns1: { A: '192.0.2.53' }, www: { A: '192.0.2.30' } } }),
      })
    const r = await create()
    const body = (await r.json()) as { error: string; message: string }
    assert.equal(r.status, 503, JSON.stringify(body))
    assert.equal(r.headers.get('retry-after'), '1')
    assert.equal(body.error, 'E_ZONE_BUSY')
    assert.match(body.message, new RegExp(`open for writing by process ${holder.pid} \\(sleep\\)`))
    assert.equal(await www(server.port), '192.0.2.10', 'a.test as it was')
    assert.equal(await www(server.port, 'b.test'), 'REFUSED', 'nothing created')
    // An edit of the zone being written is refused the same way.
    const del = await fetch(`${url}/v1/zones/a.test`, { method: 'DELETE', headers: { authorization: 'Bearer t0ken' } })
    assert.equal(del.status, 503)
    assert.equal(((await del.json()) as { error: string }).error, 'E_ZONE_BUSY')
    assert.equal(await www(server.port), '192.0.2.10', 'a.test still served')
    // The write ends while the create waits: it is made with the whole file.
    const creating = create()
    await finish()
    assert.equal((await creating).status, 201)
    assert.equal(await www(server.port), '192.0.2.20')
    assert.equal(await www(server.port, 'b.test'), '192.0.2.30')
  })
})

describe('files that are not zones', () => {
  test('a 50 MB file dropped in the directory is refused unread, named with its size; the last good set keeps serving', async (t) => {
    const { dir, cleanup } = await tempDir()
    t.after(cleanup)
    await writeFile(path.join(dir, 'a.test.yaml'), zone('a.test'))
    const { server, url } = await serve(t, dir)
    const big = path.join(dir, 'dump.yaml')
    await writeFile(big, zone('b.test'))
    await truncate(big, 50_000_000)
    const rejected = await server.waitForLog((l) => l.msg === 'zone reload rejected; the last good set keeps serving')
    assert.deepEqual(rejected.errors, [`${big}: the file is 47.7 MiB: a zone file may hold at most 4 MiB (it is not read; --max-zone-file-bytes sets the limit)`])
    assert.equal(await www(server.port), '192.0.2.10')
    const r = await fetch(`${url}/v1/reload`, { method: 'POST', headers: { authorization: 'Bearer t0ken' } })
    assert.equal(r.status, 400)
    assert.deepEqual(await r.json(), {
      error: 'E_ZONE_SCHEMA',
      message: `${big}: the file is 47.7 MiB: a zone file may hold at most 4 MiB (it is not read; --max-zone-file-bytes sets the limit)`,
      details: [{ path: '', message: 'the file is 47.7 MiB: a zone file may hold at most 4 MiB (it is not read; --max-zone-file-bytes sets the limit)', file: big, line: 0, col: 0 }],
    })
  })
})

describe('a rejected edit undone', () => {
  test('putting the file back as it was is logged as the end of the rejection, and meridian_config_last_reload_successful says 0 then 1', async (t) => {
    const { dir, cleanup } = await tempDir()
    t.after(cleanup)
    const file = path.join(dir, 'a.test.yaml')
    await writeFile(file, zone('a.test'))
    const { server, url } = await serve(t, dir)
    const good = async () => Number(/^meridian_config_last_reload_successful (\d+)$/m.exec(await (await fetch(`${url}/metrics`)).text())?.[1])
    assert.equal(await good(), 1)
    await writeFile(file, zone('a.test', '192.0.2.300'))
    const rejected = await server.waitForLog((l) => l.msg === 'zone reload rejected; the last good set keeps serving')
    assert.deepEqual(rejected.errors, [`${file}:6:13: records.www.A: must be an IPv4 address such as 192.0.2.1, got "192.0.2.300"`])
    assert.equal(await good(), 0, 'a bad file on disk')
    await writeFile(file, zone('a.test'))
    const resolved = await server.waitForLog((l) => l.level === 30 && l.msg === 'zone files are again those of the set serving; the earlier rejection is resolved, nothing to reload', 5000)
    assert.equal(resolved.generation, 1)
    assert.equal(await www(server.port), '192.0.2.10')
    assert.equal(await good(), 1, 'the file put back')
    // Rejected again, then a good change loads. Counted from here: the first bad write, seen twice
    // by the watcher, would have logged a second rejection before this write.
    const from = server.logs.length
    await writeFile(file, zone('a.test', '192.0.2.300'))
    await server.waitForLog((l) => l.msg === 'zone reload rejected; the last good set keeps serving', undefined, from)
    assert.equal(await good(), 0)
    await writeFile(file, zone('a.test', '192.0.2.20'))
    await server.waitForLog((l) => l.msg === 'zones loaded' && l.generation === 2)
    assert.equal(await good(), 1, 'a good change loaded')
  })
})
