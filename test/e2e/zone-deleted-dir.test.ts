/**
 * `<zones>/.meridian/deleted/`, where a zone deleted through the admin API is kept: never read as
 * zones (by `meridian check`, a reload or the watcher), never cleaned by Meridian, and pruned by the
 * lines docs/api.md and docs/zones.md give, run here as written.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdir, readdir, readFile, utimes, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'
import { dig } from '../helpers/dig.js'
import { ROOT, runCli, tempDir } from '../helpers/server.js'
import { serveInPlace, smallZone } from '../helpers/zones.js'

const run = promisify(execFile)
const www = async (port: number, origin: string) => {
  const r = await dig('127.0.0.1', port, `www.${origin}`, 'A')
  return r.answer[0]?.data ?? r.status
}

/**
 * `<tmp>/zones` holding a.test, and what removes it: for the test to add as an after hook once its
 * server's stop is added (node:test runs them in the order added; a server stopping writes its state).
 */
async function zonesDir(): Promise<{ parent: string; zones: string; deleted: string; cleanup: () => Promise<void> }> {
  const { dir, cleanup } = await tempDir()
  const zones = path.join(dir, 'zones')
  const deleted = path.join(zones, '.meridian', 'deleted')
  await mkdir(deleted, { recursive: true })
  await writeFile(path.join(zones, 'a.test.yaml'), smallZone('a.test'))
  return { parent: dir, zones, deleted, cleanup }
}

test('meridian check, a reload and the watcher never read .meridian/deleted/: an old copy of a served zone and a broken file there change nothing', async (t) => {
  const { zones, deleted, cleanup } = await zonesDir()
  // Read as a zone, the copy would clash with a.test (E_ZONE_DUPLICATE) and the broken file be rejected.
  await writeFile(path.join(deleted, 'a.test.2026-01-01T00-00-00.000Z.yaml'), smallZone('a.test', '192.0.2.99'))
  await writeFile(path.join(deleted, 'junk.yaml'), 'origin: [\n')
  const check = await runCli(['check', '--zones', zones])
  assert.equal(check.code, 0, check.stderr)
  assert.equal(check.stdout, `${path.join(zones, 'a.test.yaml')}: zone a.test OK (3 names)\n`)

  const { server } = await serveInPlace(t, zones)
  t.after(cleanup)
  assert.equal(await www(server.port, 'a.test'), '192.0.2.10')
  // Files coming and going there while it watches, then a change of the zones that must load.
  await writeFile(path.join(deleted, 'b.test.2026-01-02T00-00-00.000Z.yaml'), 'records: {\n')
  await run('sh', ['-c', `rm ${JSON.stringify(path.join(deleted, 'junk.yaml'))}`])
  await writeFile(path.join(zones, 'b.test.yaml'), smallZone('b.test', '192.0.2.30'))
  await server.waitForLog((l) => l.msg === 'zones loaded' && (l.zones as { origin: string }[]).some((z) => z.origin === 'b.test'))
  assert.deepEqual(server.logs.filter((l) => l.level >= 50).map((l) => l.msg), [], 'nothing rejected or failed')
  assert.equal(await www(server.port, 'a.test'), '192.0.2.10')
  assert.equal(await www(server.port, 'b.test'), '192.0.2.30')
})

/** The prune lines of docs/api.md's "Delete a zone", which docs/zones.md repeats: `[print, delete]`. */
async function pruneLines(): Promise<[string, string]> {
  const lines = async (file: string) =>
    (await readFile(path.join(ROOT, 'docs', file), 'utf8'))
      .split('\n')
      .filter((l) => l.startsWith('find zones/.meridian/deleted'))
      .map((l) => l.replace(/\s+#.*$/, ''))
  const api = await lines('api.md')
  assert.equal(api.length, 2, 'docs/api.md lists then prunes')
  assert.deepEqual(await lines('zones.md'), api, 'docs/zones.md gives the same lines')
  assert.match(api[0]!, / -print$/)
  assert.match(api[1]!, / -delete$/)
  return [api[0]!, api[1]!]
}

const hasFaketime = await run('sh', ['-c', 'command -v faketime']).then(
  () => true,
  () => false,
)

test('the documented prune keeps a zone deleted today, even from a file last edited 40 days ago, and removes it once 30 days have passed', async (t) => {
  const [list, prune] = await pruneLines()
  const { parent, zones, deleted, cleanup } = await zonesDir()
  const b = path.join(zones, 'b.test.yaml')
  await writeFile(b, smallZone('b.test'))
  const longAgo = new Date(Date.now() - 40 * 86_400_000)
  await utimes(b, longAgo, longAgo)
  const { server, url } = await serveInPlace(t, zones)
  t.after(cleanup)
  const r = await fetch(`${url}/v1/zones/b.test`, { method: 'DELETE', headers: { authorization: 'Bearer t0ken' } })
  assert.equal(r.status, 200)
  const movedTo = ((await r.json()) as { movedTo: string }).movedTo
  const name = path.relative(parent, movedTo)
  assert.deepEqual(await readdir(deleted), [path.basename(movedTo)])

  // Run from the directory holding zones/, as the docs say; -mtime would list (and remove) it now.
  const sh = (line: string, faked?: string) => run(faked ? 'faketime' : 'sh', faked ? [faked, 'sh', '-c', line] : ['-c', line], { cwd: parent })
  assert.equal((await sh(list.replace('-ctime', '-mtime'))).stdout, `${name}\n`, 'the pitfall the docs warn of')
  assert.equal((await sh(list)).stdout, '')
  await sh(prune)
  assert.deepEqual(await readdir(deleted), [path.basename(movedTo)], 'kept')

  if (!hasFaketime) return t.skip('faketime (Debian package faketime) is not installed: the prune 30 days on is not run')
  // 31 days on (faketime moves the clock of find alone), the same lines list it, then remove it.
  assert.equal((await sh(list, '+31 days')).stdout, `${name}\n`)
  await sh(prune, '+31 days')
  assert.deepEqual(await readdir(deleted), [])
  assert.equal(await www(server.port, 'a.test'), '192.0.2.10', 'the server serves on')
})
